/**
 * Microsoft Graph for Microsoft To Do: list resolution, the tasks/delta pager, the marked-item listing, and the
 * requests for single-task writes (sent in JSON batches by the cycle).
 *
 * A task cxsync creates carries one linked resource: `externalId` = the operation's sync id (a lookup after a
 * lost answer finds the first attempt by it), `webUrl` = the CRM task's link (`urn:cxsync:crm-task:<id>`,
 * which relinks a task whose mapping was lost). Graph documents no $filter on a task's linkedResources
 * (todotasklist-list-tasks.md, linkedresource.md), todoTask takes no extended properties
 * (extended-properties-overview.md), and its open extensions can be filtered by name only, not by value
 * (opentypeextension-get.md). So the lookup reads the list with its linked resources page by page, following
 * each @odata.nextLink (paging.md), and searches every page until the sync id turns up or the pages end.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { GraphTask } from '../../domain/task';
import { gated, versionRelativeUrl, type GraphSubRequest } from './batch';
import { ifMatch } from './contacts-api';
import { classifyGraphError } from './errors';

const enc = encodeURIComponent;
const q = (s: string) => s.replace(/'/g, "''");

/** Times in UTC, the one form every task read is asked in. */
export const TODO_READ_PREFER = 'outlook.timezone="UTC"';
const READ = { Prefer: TODO_READ_PREFER };
const LIST_PAGE = 1000;
export const LINK_APPLICATION = 'cxsync';
const CRM_LINK = 'urn:cxsync:crm-task:';

export type DeltaTask = GraphTask & { '@removed'?: { reason: string } };

export interface TasksDeltaPage {
  items: DeltaTask[];
  nextLink?: string;
  deltaLink?: string;
}

type Linked = NonNullable<GraphTask['linkedResources']>[number];

/** cxsync's marker on a task, from its linked resources. */
export function taskMarker(t: GraphTask): { syncId?: string; crmId?: string } {
  const l = (t.linkedResources ?? []).find((r: Linked) => r.applicationName === LINK_APPLICATION || (r.webUrl ?? '').startsWith(CRM_LINK));
  if (!l) return {};
  const crmId = l.webUrl?.startsWith(CRM_LINK) ? l.webUrl.slice(CRM_LINK.length) : undefined;
  return { ...(l.externalId ? { syncId: l.externalId } : {}), ...(crmId ? { crmId } : {}) };
}

export class TodoApi {
  constructor(readonly client: Client, readonly pageSize = 100) {}

  async ensureList(upn: string, displayName: string): Promise<string> {
    const path = `/users/${enc(upn)}/todo/lists`;
    const found = await gated(upn, () => this.client.api(path).filter(`displayName eq '${q(displayName)}'`).get());
    if (found.value?.length) return found.value[0].id as string;
    try {
      const created = await gated(upn, () => this.client.api(path).post({ displayName }));
      return created.id as string;
    } catch (err) {
      if (classifyGraphError(err).status === 409) return this.ensureList(upn, displayName);
      throw err;
    }
  }

  async defaultList(upn: string): Promise<string> {
    const found = await gated(upn, () => this.client.api(`/users/${enc(upn)}/todo/lists`).filter(`wellknownListName eq 'defaultList'`).get());
    const id = found.value?.[0]?.id as string | undefined;
    if (!id) throw Object.assign(new Error(`the mailbox ${upn} has no default To Do list`), { statusCode: 404, code: 'ErrorItemNotFound' });
    return id;
  }

  async deltaPage(upn: string, listId: string, link: string | undefined, pageSize = this.pageSize): Promise<TasksDeltaPage> {
    const url = link ?? `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks/delta`;
    const res = await gated(upn, () => this.client.api(url).header('Prefer', `odata.maxpagesize=${pageSize}, ${TODO_READ_PREFER}`).get());
    return { items: res.value ?? [], nextLink: res['@odata.nextLink'], deltaLink: res['@odata.deltaLink'] };
  }

  /** Ids and cxsync markers of every task in the list. */
  async markedItems(upn: string, listId: string): Promise<Array<{ id: string; syncId?: string; crmId?: string }>> {
    const out: Array<{ id: string; syncId?: string; crmId?: string }> = [];
    let url: string | undefined = this.listRequest(upn, listId).url;
    while (url) {
      const page: { value?: GraphTask[]; '@odata.nextLink'?: string } = await gated(upn, () => this.client.api(url!).header('Prefer', TODO_READ_PREFER).get());
      for (const t of page.value ?? []) {
        const m = taskMarker(t);
        if (m.syncId || m.crmId) out.push({ id: String(t.id), ...m });
      }
      url = page['@odata.nextLink'];
    }
    return out;
  }

  // ---- single-task requests, sent in JSON batches -------------------------------------------------

  createRequest(upn: string, listId: string, body: GraphTask, marker: { syncId: string; crmId: string }): GraphSubRequest {
    return {
      method: 'POST',
      url: `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks`,
      headers: READ,
      body: {
        ...body,
        linkedResources: [{ applicationName: LINK_APPLICATION, displayName: 'CRM task', externalId: marker.syncId, webUrl: `${CRM_LINK}${marker.crmId}` }],
      },
    };
  }

  /**
   * The first page of the list's tasks with their linked resources: the caller searches it for the sync id and
   * goes on with `nextPageRequest` while the answer has a nextLink (a page may hold fewer tasks than asked, even none).
   */
  listRequest(upn: string, listId: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks?$top=${LIST_PAGE}&$expand=linkedResources`, headers: READ };
  }

  /** The page an answer's @odata.nextLink names, as a batch operation; the link already carries $top and $expand. */
  nextPageRequest(nextLink: string): GraphSubRequest {
    // A nextLink carries the query options, not the request's headers: times must still come in UTC.
    return { method: 'GET', url: versionRelativeUrl(nextLink), headers: READ };
  }

  updateRequest(upn: string, listId: string, id: string, body: GraphTask, changeKey: string | null): GraphSubRequest {
    return { method: 'PATCH', url: `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks/${enc(id)}`, headers: { ...READ, ...ifMatch(changeKey) }, body };
  }

  deleteRequest(upn: string, listId: string, id: string, changeKey: string | null): GraphSubRequest {
    return { method: 'DELETE', url: `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks/${enc(id)}`, headers: ifMatch(changeKey) };
  }

  getRequest(upn: string, listId: string, id: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/todo/lists/${enc(listId)}/tasks/${enc(id)}`, headers: READ };
  }
}
