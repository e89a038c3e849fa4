/**
 * The activities of one sync cycle (DESIGN.md, "One sync cycle"): thin I/O around the pure domain. Each is
 * idempotent, so Temporal can retry any of them after a crash: pulls resume from the saved page, the plan is
 * made once per cycle, applied operations are marked done in the same transaction as their mapping change.
 */
import { randomUUID } from 'node:crypto';
import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Transaction } from 'kysely';
import type { Db } from '../db/connection';
import type { Database } from '../db/schema';
import { SyncStore, type NewOperation, type OperationRow } from '../db/sync-store';
import { PolicyStore } from '../db/policy-store';
import { planCycle } from '../domain/planning';
import { BUILTIN_POLICY, crmScopeFor, markingCategory, typePolicy, type CrmScope, type Policy } from '../domain/policy';
import type { MappingState } from '../domain/reconcile';
import { activeWindows, isValidTimeZone } from '../domain/schedule';
import { emptyTypeSummary, MAILBOX_NEEDS_ATTENTION, RECORD_TYPES, type CycleSummary, type RecordType, type TypeSummary } from '../domain/status';
import type { ApplyResult, CycleRef, MailboxActivities, MailboxConfig, TypeStep } from '../workflows/activities-contract';
import { PostgresCrmStore } from './crm/postgres-crm';
import { ExchangeStateStore } from '../db/exchange-state';
import { toActivityFailure } from './exchange/errors';
import { applyExchangeOps, keepAlive, pullExchangeStep, type ExchangeStepContext } from './exchange/exchange-cycle';
import type { RecordTypeAdapter } from './record-types/adapter';

export interface ActivitySettings {
  intervalSeconds: number;
  batchSize: number;
  /** Dedicated folder / calendar / list per record type. */
  containerNames: Record<RecordType, string>;
  /** Graph requests in flight per mailbox; Outlook allows 4. */
  maxConcurrency: number;
}

export interface TypeSyncSettings {
  /** Dedicated folder / calendar / list the type syncs with. */
  containerName: string;
  /** Category (with its master-category colour) marking items cxsync exported; null for none. */
  category: { name: string; color: string } | null;
  /** Items pulled and written per cycle and type. */
  batchSize: number;
  /** The policy chose the mailbox's default folder / calendar / list instead of the dedicated `containerName`. */
  defaultContainer?: boolean;
  /** Contacts only: the contact class given to contacts created in the CRM (null: none). */
  contactClass?: string | null;
  /** Which CRM records the type's feed reads (the policy's filter "all" / "workgroup", else the user's own). */
  crmScope: CrmScope;
}

export interface ActivityDeps {
  db: Db;
  adapters: { [T in RecordType]: RecordTypeAdapter<unknown> };
  settings: ActivitySettings;
}

function beat(details?: unknown): void {
  // Activities are also called directly from unit tests, outside an activity context.
  try {
    Context.current();
  } catch {
    return;
  }
  heartbeat(details);
}

export function createMailboxActivities(deps: ActivityDeps): MailboxActivities {
  const store = new SyncStore(deps.db);
  const exState = new ExchangeStateStore(deps.db);
  const policies = new PolicyStore(deps.db);
  const crmStore = new PostgresCrmStore(deps.db);
  const { settings } = deps;
  const adapterFor = (t: RecordType) => deps.adapters[t];

  /**
   * The settings of one record type for one mailbox: the single seam through which the mailbox's policy
   * reaches pull, plan and apply.
   */
  async function typeSettings(mailboxId: string, recordType: RecordType): Promise<TypeSyncSettings> {
    const policy = await policyOrFail(mailboxId);
    const t = typePolicy(policy, recordType);
    return {
      containerName: t.folder ?? settings.containerNames[recordType],
      category: markingCategory(policy, recordType),
      batchSize: policy.batchSize ?? settings.batchSize,
      defaultContainer: t.folder === null,
      ...('contactClass' in t ? { contactClass: t.contactClass } : {}),
      crmScope: crmScopeFor(policy, recordType),
    };
  }

  /** The mailbox's policy; one that does not validate puts the mailbox in needs-attention (retrying cannot fix it). */
  async function policyOrFail(mailboxId: string): Promise<Policy> {
    const eff = await policies.effective(mailboxId);
    if (!eff.policy.ok) {
      throw ApplicationFailure.create({ message: `${eff.policy.error}: fix it with cxsync policy update ${eff.name} --file <policy.json>, then cxsync resume ${mailboxId}`, type: MAILBOX_NEEDS_ATTENTION, nonRetryable: true });
    }
    return eff.policy.value;
  }

  async function mailboxOrFail(mailboxId: string) {
    const m = await store.getMailbox(mailboxId);
    if (!m) throw ApplicationFailure.create({ message: `mailbox ${mailboxId} is not enrolled`, type: MAILBOX_NEEDS_ATTENTION, nonRetryable: true });
    return m;
  }

  async function folderId(mailboxId: string, upn: string, recordType: RecordType): Promise<string> {
    const cursor = await store.getCursor(mailboxId, recordType);
    if (cursor.exchange_folder_id) return cursor.exchange_folder_id;
    let id: string;
    const ts = await typeSettings(mailboxId, recordType);
    const name = ts.defaultContainer ? '(default)' : ts.containerName;
    try {
      id = await adapterFor(recordType).ensureContainer(upn, { name: ts.containerName, useDefault: !!ts.defaultContainer });
    } catch (err) {
      throw toActivityFailure(err, `resolving the ${recordType} container ${name} of ${upn}`);
    }
    await store.updateCursor(deps.db, mailboxId, recordType, { exchange_folder_id: id });
    return id;
  }

  /** What the Exchange half of a cycle (exchange/exchange-cycle.ts) works with. */
  async function exchangeStep(m: { id: string }, cycleId: string, recordType: RecordType): Promise<ExchangeStepContext> {
    const mailboxId = m.id;
    return {
      db: deps.db, store, state: exState, adapter: adapterFor(recordType), mailboxId, upn: m.id, cycleId, recordType,
      containerId: await folderId(mailboxId, m.id, recordType),
      log: (level, message, extra) => store.log(deps.db, { mailboxId, cycleId, level, recordType, side: extra?.side, itemId: extra?.itemId, message }),
      beat,
    };
  }

  return {
    async loadMailbox(mailboxId: string): Promise<MailboxConfig> {
      const m = await store.getMailbox(mailboxId);
      if (!m) return { exists: false, intervalSeconds: settings.intervalSeconds, batchSize: settings.batchSize, recordTypes: [...RECORD_TYPES] };
      // An invalid policy does not stop the schedule: the cycle reports it (needs-attention) at its first step.
      const eff = await policies.effective(mailboxId);
      const policy = eff.policy.ok ? eff.policy.value : BUILTIN_POLICY;
      const config: MailboxConfig = {
        exists: true,
        intervalSeconds: policy.schedule.intervalSeconds ?? settings.intervalSeconds,
        batchSize: policy.batchSize ?? settings.batchSize,
        recordTypes: RECORD_TYPES.filter((t) => typePolicy(policy, t).enabled),
      };
      const hours = policy.schedule.activeHours;
      if (hours) {
        // Active hours are in the user's time zone unless the policy names one; the workflow gets UTC windows.
        const userTz = (await crmStore.getUser(m.crm_user_id))?.timeZone;
        const tz = hours.timeZone ?? (userTz && isValidTimeZone(userTz) ? userTz : 'UTC');
        config.activeWindows = activeWindows(hours, tz, new Date());
      }
      return config;
    },

    async startCycle(mailboxId: string) {
      await mailboxOrFail(mailboxId);
      const c = await store.openCycle(mailboxId);
      return { cycleId: c.id, startedAt: c.startedAt.toISOString(), resumed: c.resumed };
    },

    async pullExchange({ mailboxId, cycleId, recordType }: TypeStep) {
      const m = await mailboxOrFail(mailboxId);
      const ctx = await exchangeStep(m, cycleId, recordType);
      // At most batchSize items per cycle (whole pages); the round goes on next cycle from its saved nextLink.
      const { batchSize } = await typeSettings(mailboxId, recordType);
      const r = await keepAlive(beat, () => pullExchangeStep(ctx, batchSize));
      return { pulled: r.pulled };
    },

    async pullCrm({ mailboxId, cycleId, recordType }: TypeStep) {
      const m = await mailboxOrFail(mailboxId);
      const cursor = await store.getCursor(mailboxId, recordType);
      if (cursor.pending_crm_watermark) return { pulled: 0 };
      const { crmScope } = await typeSettings(mailboxId, recordType);
      const page = await adapterFor(recordType).crmChanges({ ownerId: m.crm_user_id, mailboxId, after: cursor.crm_watermark, scope: crmScope });
      await deps.db.transaction().execute(async (tx) => {
        await store.stage(
          tx,
          mailboxId,
          recordType,
          'crm',
          page.changes.map((c) => ({ externalId: c.id, removed: c.removed, changeKey: null, payload: c.payload ? { ...c.payload, updatedAt: c.updatedAt } : null })),
        );
        await store.updateCursor(tx, mailboxId, recordType, { pending_crm_watermark: page.watermark });
      });
      await store.addPulled(cycleId, recordType, 'crm', page.changes.length);
      return { pulled: page.changes.length };
    },

    async plan({ mailboxId, cycleId, recordType }: TypeStep) {
      if (await store.hasOperations(cycleId, recordType)) return { operations: -1, conflicts: -1 }; // planned before a retry or pause
      await mailboxOrFail(mailboxId);
      const policy = await policyOrFail(mailboxId);
      const exStaged = await store.staged(mailboxId, recordType, 'exchange');
      const crmStaged = await store.staged(mailboxId, recordType, 'crm');
      const adapter = adapterFor(recordType);
      const mappingRows = await store.mappingsFor(mailboxId, recordType, crmStaged.map((r) => r.external_id), exStaged.map((r) => r.external_id));
      const mappings: MappingState[] = mappingRows.map((r) => ({
        crmId: r.crm_id,
        exchangeId: r.exchange_id,
        crmFingerprint: r.crm_fingerprint,
        exchangeFingerprint: r.exchange_fingerprint,
        exchangeChangeKey: r.exchange_change_key,
      }));
      const cursor = await store.getCursor(mailboxId, recordType);
      const staged = (r: (typeof exStaged)[number]) => ({ id: r.external_id, removed: r.removed, changeKey: r.change_key, payload: r.payload });
      const result = planCycle({
        recordType,
        exchange: exStaged.map(staged),
        crm: crmStaged.map(staged),
        mappings,
        mappedTotal: Number((await store.countMappings(mailboxId, recordType)).n),
        policy,
        parser: adapter,
        firstSync: !cursor.delta_link && !cursor.crm_watermark,
        now: new Date(),
        massDeleteDecision: await policies.decision(mailboxId, recordType),
        // The Exchange pull stops at the batch size and goes on next cycle: this cycle sees a slice of the round.
        partialRound: cursor.next_link && !cursor.pending_delta_link ? ['exchange'] : [],
      });

      if (result.held.length > 0) {
        // Emptied-side guard: plan nothing, keep the staged round, and ask an operator (needs-attention).
        for (const h of result.held) {
          await policies.holdDeletes(mailboxId, recordType, { side: h.side, deleted: h.deleted, mapped: h.mapped, reason: h.reason, cycleId, at: new Date().toISOString() });
        }
        for (const n of result.notes) {
          if (n.level !== 'verbose') await store.log(deps.db, { mailboxId, cycleId, level: n.level, recordType, side: n.side, itemId: n.itemId, message: n.message });
        }
        throw ApplicationFailure.create({
          message: `${recordType}: ${result.held.map((h) => h.reason).join('; ')}; no deletes were mirrored. ` +
            `Check the mailbox, then run cxsync resume ${mailboxId} --confirm-mass-delete to mirror them, or --discard-mass-delete to keep the other side's copies`,
          type: MAILBOX_NEEDS_ATTENTION,
          nonRetryable: true,
        });
      }

      const exById = result.exchangeChanges;
      const crmById = result.crmChanges;
      const rows: NewOperation[] = result.operations.map((op, seq) => {
        const base = { seq, syncId: randomUUID(), reason: op.reason };
        switch (op.kind) {
          case 'create':
            return op.side === 'exchange'
              ? { ...base, side: 'exchange' as const, kind: 'create', crmId: op.sourceId, exchangeId: null, payload: { record: op.record, fingerprint: op.fingerprint } }
              : { ...base, side: 'crm' as const, kind: 'create', crmId: null, exchangeId: op.sourceId, payload: { record: op.record, fingerprint: op.fingerprint, exchangeChangeKey: exById.get(op.sourceId)?.changeKey ?? null } };
          case 'update':
            return { ...base, side: op.side, kind: 'update', crmId: op.crmId, exchangeId: op.exchangeId, payload: { record: op.record, fingerprint: op.fingerprint, exchangeChangeKey: exById.get(op.exchangeId)?.changeKey ?? null } };
          case 'delete':
            return { ...base, side: op.side, kind: 'delete', crmId: op.crmId, exchangeId: op.exchangeId, payload: null };
          case 'unlink':
            return { ...base, side: 'mapping' as const, kind: 'unlink', crmId: op.crmId, exchangeId: op.exchangeId, payload: null };
          case 'refresh':
            return { ...base, side: 'mapping' as const, kind: 'refresh', crmId: op.crmId, exchangeId: op.exchangeId, payload: { crmFingerprint: op.crmFingerprint, exchangeFingerprint: op.exchangeFingerprint, exchangeChangeKey: op.exchangeChangeKey } };
          case 'link':
            return { ...base, side: 'mapping' as const, kind: 'link', crmId: op.crmId, exchangeId: op.exchangeId, payload: { crmFingerprint: op.crmFingerprint, exchangeFingerprint: op.exchangeFingerprint, exchangeChangeKey: op.exchangeChangeKey ?? null } };
        }
      });
      await deps.db.transaction().execute(async (tx) => {
        await store.insertOperations(tx, cycleId, mailboxId, recordType, rows);
        await store.insertConflicts(tx, result.conflicts.map((c) => ({
          cycleId, mailboxId, recordType, crmId: c.crmId, exchangeId: c.exchangeId, rule: c.rule, outcome: c.outcome,
          crmVersion: crmById.get(c.crmId)?.record ?? null, exchangeVersion: exById.get(c.exchangeId)?.record ?? null,
        })));
        for (const n of result.notes) {
          await store.log(tx, { mailboxId, cycleId, level: n.level, recordType, side: n.side, itemId: n.itemId, message: n.message });
        }
        await policies.clearHold(tx, mailboxId, recordType);
      });
      return { operations: rows.length, conflicts: result.conflicts.length };
    },

    async applyBatch({ mailboxId, cycleId, recordType, limit }: TypeStep & { limit: number }): Promise<ApplyResult> {
      const m = await mailboxOrFail(mailboxId);
      const ts = await typeSettings(mailboxId, recordType);
      // The batch size caps each side's writes per cycle; operations beyond it are carried to the next cycle.
      const written = await exState.writtenThisCycle(cycleId, recordType);
      const left = { exchange: ts.batchSize - written.exchange, crm: ts.batchSize - written.crm };
      const open = (l: typeof left) => ['mapping', ...(['exchange', 'crm'] as const).filter((side) => l[side] > 0)];
      const ops: OperationRow[] = [];
      for (const op of await exState.pendingOn(cycleId, recordType, open(left), limit)) {
        if (op.side === 'mapping') ops.push(op);
        else if (left[op.side] > 0) {
          left[op.side]--;
          ops.push(op);
        }
      }
      let applied = 0;
      let failed = 0;
      const adapter = adapterFor(recordType);

      /** A CRM or mapping operation, inside the caller's transaction with its `done` mark. */
      const applyLocal = async (tx: Transaction<Database>, op: OperationRow): Promise<void> => {
        const p = (op.payload ?? {}) as { record?: unknown; fingerprint?: string; exchangeChangeKey?: string | null; crmFingerprint?: string; exchangeFingerprint?: string };
        if (op.side === 'crm') {
          if (op.kind === 'create') {
            // The sync id doubles as the CRM id, so a retried create is a no-op.
            // Created from Exchange: owned by the mailbox's user whatever the feed's scope; contacts get the policy's class.
            await adapter.createInCrm(tx, mailboxId, op.sync_id, m.crm_user_id, p.record, ts.contactClass !== undefined ? { contactClass: ts.contactClass } : undefined);
            await store.upsertMapping(tx, {
              mailbox_id: mailboxId, record_type: recordType, crm_id: op.sync_id, exchange_id: op.exchange_id!, sync_id: op.sync_id,
              crm_fingerprint: p.fingerprint!, exchange_fingerprint: p.fingerprint!, exchange_change_key: p.exchangeChangeKey ?? null,
            });
          } else if (op.kind === 'update') {
            const found = await adapter.updateInCrm(tx, mailboxId, op.crm_id!, p.record);
            if (!found) {
              await store.log(tx, { mailboxId, cycleId, level: 'warn', recordType, side: 'crm', itemId: op.crm_id!, message: `update skipped: CRM ${recordType} ${adapter.label(p.record)} no longer exists` });
            }
            await store.updateMapping(tx, mailboxId, recordType, op.crm_id!, { crm_fingerprint: p.fingerprint, exchange_fingerprint: p.fingerprint, exchange_change_key: p.exchangeChangeKey ?? undefined });
          } else if (op.kind === 'delete') {
            await adapter.deleteInCrm(tx, mailboxId, op.crm_id!);
            await store.deleteMapping(tx, mailboxId, recordType, op.crm_id!);
          }
        } else if (op.kind === 'unlink') await store.deleteMapping(tx, mailboxId, recordType, op.crm_id!);
        else if (op.kind === 'link') {
          // Merge by email: two existing items are one record; only the mapping is created.
          await store.upsertMapping(tx, {
            mailbox_id: mailboxId, record_type: recordType, crm_id: op.crm_id!, exchange_id: op.exchange_id!, sync_id: op.sync_id,
            crm_fingerprint: p.crmFingerprint ?? null, exchange_fingerprint: p.exchangeFingerprint ?? null, exchange_change_key: p.exchangeChangeKey ?? null,
          });
        } else await store.updateMapping(tx, mailboxId, recordType, op.crm_id!, { crm_fingerprint: p.crmFingerprint, exchange_fingerprint: p.exchangeFingerprint, exchange_change_key: p.exchangeChangeKey ?? undefined });
        await store.finishOperation(tx, op.id, 'done');
      };

      // CRM and mapping operations are local and fast; Exchange ones go out in JSON batches within the
      // mailbox's limits (4 in flight, 10,000 per 10 minutes), see exchange/exchange-cycle.ts.
      // Local operations commit a hundred at a time (an echo round refreshes thousands of mappings).
      const local = ops.filter((o) => o.side !== 'exchange');
      for (let i = 0; i < local.length; i += 100) {
        const chunk = local.slice(i, i + 100);
        await deps.db.transaction().execute(async (tx) => {
          for (const op of chunk) await applyLocal(tx, op);
        });
        applied += chunk.length;
        beat({ applied, failed });
      }
      const exchangeOps = ops.filter((o) => o.side === 'exchange');
      if (exchangeOps.length) {
        const ctx = await exchangeStep(m, cycleId, recordType);
        const r = await keepAlive(beat, () => applyExchangeOps(ctx, exchangeOps, ts.category));
        applied += r.applied;
        failed += r.failed;
      }
      const remaining = await exState.countPendingOn(cycleId, recordType, open(left));
      const workRemaining = (await store.countPending(cycleId, recordType)) > remaining;
      return { applied, failed, remaining, workRemaining };
    },

    async commitType({ mailboxId, cycleId, recordType }: TypeStep) {
      // Operations carried to the next cycle by the batch size: nothing is promoted or cleared until they are applied.
      if ((await exState.pendingAnywhere(mailboxId, recordType)) > 0) return { workRemaining: true };
      const cursor = await store.getCursor(mailboxId, recordType);
      // A round cut short by the batch size keeps its nextLink: the next cycle pulls on from there.
      const roundOpen = !cursor.pending_delta_link && !!cursor.next_link;
      let kept = 0;
      await deps.db.transaction().execute(async (tx) => {
        await store.updateCursor(tx, mailboxId, recordType, {
          delta_link: cursor.pending_delta_link ?? cursor.delta_link,
          pending_delta_link: null,
          next_link: roundOpen ? cursor.next_link : null,
          crm_watermark: cursor.pending_crm_watermark ?? cursor.crm_watermark,
          pending_crm_watermark: null,
        });
        // CRM changes whose Exchange write met a newer version (412) stay staged for the next cycle's plan.
        kept = await exState.clearStagedKeepingReplans(tx, mailboxId, recordType, cycleId);
      });
      return { workRemaining: roundOpen || kept > 0 };
    },

    async finishCycle({ mailboxId, cycleId, outcome, detail }: CycleRef & { outcome: CycleSummary['outcome']; detail?: string }): Promise<CycleSummary> {
      const cycle = await store.getCycle(cycleId);
      const types: Partial<Record<RecordType, TypeSummary>> = {};
      const t = (rt: string): TypeSummary => (types[rt as RecordType] ??= emptyTypeSummary());
      const raw = (cycle?.summary ?? {}) as Record<string, unknown>;
      for (const [k, v] of Object.entries(raw)) {
        const [tag, rt, side] = k.split(':');
        if (tag === 'pulled' && (side === 'exchange' || side === 'crm')) t(rt).pulled[side] = Number(v);
      }
      for (const r of await store.operationCounts(cycleId)) {
        const n = Number(r.n);
        if (r.status === 'failed') t(r.record_type).errors += n;
        if (r.status !== 'done' || (r.side !== 'exchange' && r.side !== 'crm')) continue;
        const key = r.kind === 'create' ? 'created' : r.kind === 'update' ? 'updated' : r.kind === 'delete' ? 'deleted' : undefined;
        if (key) t(r.record_type)[r.side][key] += n;
      }
      for (const r of await store.conflictCounts(cycleId)) t(r.record_type).conflicts += Number(r.n);
      for (const r of await store.logCounts(cycleId)) {
        if (r.level === 'error' && r.message.startsWith('skipped:') && r.record_type) t(r.record_type).errors += Number(r.n);
      }
      const status = outcome === 'completed' ? 'done' : 'running';
      const end = await store.closeCycle(cycleId, status, { ...raw, outcome, detail: detail ?? null });
      if (outcome !== 'completed') {
        await store.log(deps.db, { mailboxId, cycleId, level: outcome === 'failed' ? 'error' : 'info', message: `cycle ${outcome}${detail ? `: ${detail}` : ''}` });
      }
      return {
        cycleId,
        start: (cycle?.started_at ?? new Date()).toISOString(),
        end: end.toISOString(),
        outcome,
        ...(detail ? { detail } : {}),
        types,
      };
    },
  };
}
