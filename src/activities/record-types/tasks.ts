/**
 * Tasks: CRM tasks (the CRM's Todo activities) owned by the user ⇄ Microsoft To Do tasks in the mailbox's
 * VTasks list (or the default list). Statuses go through the policy's status map (Acumatica's table by
 * default): a task whose status has no counterpart is not synced while it has it — the CRM feed leaves it out,
 * and so does this adapter's delta reader for To Do's side (Deferred).
 */
import { changedProperties } from '../../domain/patch';
import { crmPrecondition, rewindWatermark, txVersion, undeleteRow } from '../crm/postgres-crm';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema';
import { PolicyStore } from '../../db/policy-store';
// Bodies staged as text with their links kept (HTML converted): To Do may answer in either form.
import { bodyText } from '../../domain/body';
import { BUILTIN_POLICY, type Policy } from '../../domain/policy';
import {
  ACUMATICA_TASK_STATUS_MAP,
  fromCrmTask,
  fromGraphTask,
  taskLabel,
  toGraphTask,
  type CrmTaskPayload,
  type GraphTask,
  type TaskRecord,
  type TaskStatusMap,
} from '../../domain/task';
import { PostgresCrmTasks, crmTaskWrites } from '../crm/postgres-crm-tasks';
import { TodoApi, taskMarker } from '../exchange/todo-api';
import type { ExchangeItem, RecordTypeAdapter } from './adapter';
import { graphPayload } from './contacts';

/** The policy's task status map; Acumatica's table when the policy has none. */
export function statusMapOf(policy: Policy): TaskStatusMap {
  const configured = (policy.task as { statusMap?: TaskStatusMap }).statusMap;
  return configured ?? ACUMATICA_TASK_STATUS_MAP;
}

/** To Do has no changeKey property: the etag (W/"…") is the version. */
function changeKeyOf(t: Record<string, unknown>): string | null {
  const etag = t['@odata.etag'];
  if (typeof etag === 'string') {
    const m = /^W\/"(.*)"$/.exec(etag);
    return m ? m[1] : etag;
  }
  return typeof t.changeKey === 'string' ? t.changeKey : null;
}

function item(body: unknown): ExchangeItem {
  const b = (body ?? {}) as GraphTask;
  const payload = graphPayload(b);
  delete payload.linkedResources;
  return { id: String(b.id), changeKey: changeKeyOf(b), payload };
}

/** The task carrying this sync id in one page of the list, if it is on that page. */
function found(body: unknown, syncId: string): ExchangeItem | undefined {
  const hit = ((body as { value?: GraphTask[] } | undefined)?.value ?? []).find((t) => taskMarker(t).syncId === syncId);
  return hit ? item(hit) : undefined;
}

export function tasksAdapter(db: Kysely<Database>, api: TodoApi): RecordTypeAdapter<TaskRecord> {
  const crm = new PostgresCrmTasks(db);
  const policies = new PolicyStore(db);
  const zones = new Map<string, string | undefined>();

  async function statusMap(mailboxId: string): Promise<TaskStatusMap> {
    const eff = await policies.effective(mailboxId).catch(() => undefined);
    return statusMapOf(eff?.policy.ok ? eff.policy.value : BUILTIN_POLICY);
  }
  async function userZone(upn: string): Promise<string | undefined> {
    const key = upn.toLowerCase();
    if (!zones.has(key)) zones.set(key, await crm.userZone(key));
    return zones.get(key);
  }

  return {
    recordType: 'task',
    graph: api.client,
    ensureContainer: (upn, c) => (c.useDefault ? api.defaultList(upn) : api.ensureList(upn, c.name)),

    async deltaPage(upn, listId, link, pageSize) {
      const page = await api.deltaPage(upn, listId, link, pageSize);
      const map = await statusMap(upn.toLowerCase());
      const zone = await userZone(upn);
      const items = [];
      for (const it of page.items) {
        if (it['@removed']) {
          items.push({ id: String(it.id), removed: true, changeKey: null, payload: null });
          continue;
        }
        // No counterpart status (Deferred): not synced while it has it.
        if (typeof it.status === 'string' && !map.exchangeToCrm[it.status as keyof TaskStatusMap['exchangeToCrm']]) continue;
        const payload = graphPayload(it);
        delete payload.linkedResources;
        items.push({
          id: String(it.id),
          removed: false,
          changeKey: changeKeyOf(it),
          payload: { ...payload, ...(it.body ? { bodyText: bodyText(it.body) ?? '' } : {}), ...(zone ? { cxsyncUserZone: zone } : {}) },
        });
      }
      return { items, nextLink: page.nextLink, deltaLink: page.deltaLink };
    },
    isComplete: (payload) => ['title', 'status'].every((p) => p in payload),

    async markedItems(upn, listId) {
      return (await api.markedItems(upn, listId)).map((m) => ({ id: m.id, marker: { syncId: m.syncId, crmId: m.crmId } }));
    },

    exchangeRequests: {
      create: (upn, listId, record, marker, category) => api.createRequest(upn, listId, { ...toGraphTask(record), categories: category ? [category] : [] }, marker),
      findBySyncId: (upn, listId) => api.listRequest(upn, listId),
      // Categories are left as they are: the user's own and the marking one stay.
      update: (upn, listId, id, record, changeKey, previous) => api.updateRequest(upn, listId, id, previous ? changedProperties(toGraphTask(record), toGraphTask(previous)) : toGraphTask(record), changeKey),
      delete: (upn, listId, id, changeKey) => api.deleteRequest(upn, listId, id, changeKey),
      get: (upn, listId, id) => api.getRequest(upn, listId, id),
    },
    itemOf: item,
    foundOf: found,
    // The lookup is a list read (no filter on linked resources): a task beyond the first page is still found.
    findNextPage(body, syncId) {
      const next = (body as { '@odata.nextLink'?: unknown } | undefined)?.['@odata.nextLink'];
      if (typeof next !== 'string' || !next) return undefined;
      return found(body, syncId) ? undefined : api.nextPageRequest(next);
    },

    fromExchange: (payload) => fromGraphTask(payload as GraphTask, { userZone: (payload.cxsyncUserZone as string | undefined) ?? undefined }),
    exchangeModifiedAt: (payload) => payload.lastModifiedDateTime as string | undefined,

    async crmChanges({ ownerId, mailboxId, after, scope }) {
      if (scope && scope !== 'owned') throw new Error(`the CRM task feed serves the user's own tasks only (scope ${scope})`);
      const page = await crm.changes({ ownerId, mailboxId, after, statusMap: await statusMap(mailboxId) });
      return { changes: page.changes.map((c) => ({ id: c.id, removed: c.removed, leftScope: c.leftScope, hardDeleted: c.hardDeleted, version: c.version, payload: c.payload, updatedAt: c.updatedAt })), watermark: page.watermark };
    },
    crmExisting: (ids) => crm.existing(ids),
    fromCrm(payload) {
      // The feed read the status through the mailbox's map; a payload without it (older staging) uses Acumatica's.
      const p = payload as CrmTaskPayload & { exchange_status?: string };
      if (p.exchange_status) {
        const map: TaskStatusMap = { crmToExchange: { [String(p.status)]: p.exchange_status } as TaskStatusMap['crmToExchange'], exchangeToCrm: {} };
        return fromCrmTask(p, map);
      }
      return fromCrmTask(p, ACUMATICA_TASK_STATUS_MAP);
    },
    async createInCrm(tx, mailboxId, id, ownerId, record) {
      const r = await crmTaskWrites.create(tx, mailboxId, id, ownerId, record, await statusMap(mailboxId));
      // Ids only: this message becomes a Temporal failure (no subjects in histories).
      if (!r.ok) throw new Error(`creating CRM task ${id}: ${r.error}`);
    },
    crmPrecondition: (tx, id, guard) => crmPrecondition(tx, 'task', id, guard),
    crmUndelete: (tx, mailboxId, id) => undeleteRow(tx, 'task', mailboxId, id),
    crmVersion: txVersion,
    crmRewind: rewindWatermark,
    async updateInCrm(tx, mailboxId, id, record) {
      const r = await crmTaskWrites.update(tx, mailboxId, id, record, await statusMap(mailboxId));
      if (!r.ok) throw new Error(`updating CRM task ${id}: ${r.error}`);
      return r.value;
    },
    deleteInCrm: (tx, mailboxId, id) => crmTaskWrites.delete(tx, mailboxId, id),
    label: taskLabel,
  };
}
