/**
 * The activities of one sync cycle (DESIGN.md, "One sync cycle"): thin I/O around the pure domain. Each is
 * idempotent, so Temporal can retry any of them after a crash: pulls resume from the saved page, the plan is
 * made once per cycle, applied operations are marked done in the same transaction as their mapping change.
 */
import { randomUUID } from 'node:crypto';
import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MailboxHealth } from './health';
import type { Transaction } from 'kysely';
import type { Db } from '../db/connection';
import type { Database } from '../db/schema';
import { SyncStore, toMappingState, toStagedItem, type NewOperation, type OperationRow } from '../db/sync-store';
import { PolicyStore } from '../db/policy-store';
import { planCycleSteps } from '../domain/planning';
import { runStepsYielding } from './yielding';
import { BUILTIN_POLICY, crmScopeFor, markingCategory, typePolicy, type CrmScope, type Policy } from '../domain/policy';
import { activeWindows, isValidTimeZone } from '../domain/schedule';
import { emptyTypeSummary, MAILBOX_NEEDS_ATTENTION, RECORD_TYPES, type CycleSummary, type RecordType, type TypeSummary } from '../domain/status';
import type { ApplyResult, CycleRef, MailboxActivities, MailboxConfig, TypeStep } from '../workflows/activities-contract';
import { PostgresCrmStore } from './crm/postgres-crm';
import { applyLocalChunk, pullCrmStep, type CrmStepContext } from './crm/crm-cycle';
import { assertLeaseHeld, withMailboxLock } from './mailbox-lock';
import { ExchangeStateStore } from '../db/exchange-state';
import { toActivityFailure } from './exchange/errors';
import { PostgresCrmEmail } from './crm/postgres-crm-email';
import { EmailFilingStore } from '../db/email-filing-store';
import { fileDroppedMail } from './email-filing';
import { syncEmailFolder } from './email-sync';
import { EmailSyncStore } from '../db/email-sync-store';
import type { MailApi } from './exchange/mail-api';
import { applyExchangeOps, keepAlive, pullExchangeStep, type ExchangeStepContext } from './exchange/exchange-cycle';
import type { RecordTypeAdapter } from './record-types/adapter';
import { countApplied, recordCycle, recordPlan, reopenCycle } from './metrics';

export interface ActivitySettings {
  intervalSeconds: number;
  batchSize: number;
  /** Dedicated folder / calendar / list per record type. */
  containerNames: Record<RecordType, string>;
  /** Graph requests in flight per mailbox; Outlook allows 4. */
  maxConcurrency: number;
  /** A mailbox failing every attempt this long goes to needs-attention (CXSYNC_RETRY_BUDGET_SECONDS). */
  retryBudgetSeconds: number;
  /** Attempts of an operation whose errors are about it before it is marked failed (CXSYNC_OPERATION_ATTEMPTS). */
  operationAttempts: number;
  /** Seconds between id-only re-scans of a drop folder (the backstop for moves delta stops reporting). */
  mailRescanSeconds?: number;
}

/** Six hours: a message moved away and back between two delta rounds is filed within this long. */
export const DEFAULT_MAIL_RESCAN_SECONDS = 6 * 3600;

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
  /** Mail for email filing; a worker without one fails a cycle whose policy turns filing on. */
  mail?: MailApi;
  settings: ActivitySettings;
}

/** A delta round cut short by the batch size: its pages so far are staged, the rest comes next cycle. */
const roundOpen = (c: { next_link: string | null; pending_delta_link: string | null }) => !!c.next_link && !c.pending_delta_link;

function beat(details?: unknown): void {
  assertLeaseHeld();
  // Activities are also called directly from unit tests, outside an activity context.
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  heartbeat(details);
  // A pause cancels the cycle's activities (the heartbeat answer carries it): stop at this safe point, between
  // two committed steps, instead of finishing the batch.
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled: the mailbox was paused or removed');
}

export function createMailboxActivities(deps: ActivityDeps): MailboxActivities {
  const store = new SyncStore(deps.db);
  const exState = new ExchangeStateStore(deps.db);
  const policies = new PolicyStore(deps.db);
  const crmStore = new PostgresCrmStore(deps.db);
  const crmEmail = new PostgresCrmEmail(deps.db);
  const filingStore = new EmailFilingStore(deps.db);
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
      throw toActivityFailure(err, `resolving the ${recordType} container ${name} of ${upn}`, { recordType });
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
      operationAttempts: settings.operationAttempts,
    };
  }

  /** A committed type is done for this cycle: a cycle resumed after a pause or needs-attention skips it. */
  async function committed(mailboxId: string, cycleId: string, recordType: RecordType): Promise<boolean> {
    return String((await store.getCursor(mailboxId, recordType)).committed_cycle) === String(cycleId);
  }

  /** What the CRM half of a cycle (crm/crm-cycle.ts) works with. */
  async function crmStep(m: { id: string; crm_user_id: string }, cycleId: string, recordType: RecordType, settings?: TypeSyncSettings): Promise<CrmStepContext> {
    const ts = settings ?? (await typeSettings(m.id, recordType));
    return {
      db: deps.db, store, adapter: adapterFor(recordType), mailboxId: m.id, cycleId, recordType, ownerId: m.crm_user_id, scope: ts.crmScope,
      ...(ts.contactClass !== undefined ? { contactClass: ts.contactClass } : {}), beat,
    };
  }

  /** One writer per mailbox (see mailbox-lock.ts): a second attempt waits until the first has stopped writing. */
  const writer = <T>(mailboxId: string, fn: () => Promise<T>) => withMailboxLock(deps.db, mailboxId, fn, beat);

  async function planType(mailboxId: string, cycleId: string, recordType: RecordType, policy: Policy): Promise<{ operations: number; conflicts: number }> {
    const exStaged = await store.staged(mailboxId, recordType, 'exchange');
    const crmStaged = await store.staged(mailboxId, recordType, 'crm');
    const adapter = adapterFor(recordType);
    const mappingRows = await store.mappingsFor(mailboxId, recordType, crmStaged.map((r) => r.external_id), exStaged.map((r) => r.external_id));
    const mappings = mappingRows.map(toMappingState);
    const crmVersionOf = new Map(mappingRows.map((r) => [r.crm_id, r.crm_version]));
    const cursor = await store.getCursor(mailboxId, recordType);
    // Planning is CPU work (seconds for 100,000 items): it runs in slices with the event loop given back between
    // them, so this worker's heartbeats and other mailboxes' activities go on (bench/plan-100k.ts).
    const result = await runStepsYielding(planCycleSteps({
      recordType,
      exchange: exStaged.map(toStagedItem),
      crm: crmStaged.map(toStagedItem),
      mappings,
      mappedTotal: Number((await store.countMappings(mailboxId, recordType)).n),
      policy,
      parser: adapter,
      firstSync: !cursor.delta_link && !cursor.crm_watermark,
      now: new Date(),
      massDeleteDecision: await policies.decision(mailboxId, recordType),
    }), beat);
    beat();

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
    // The CRM version a write is conditional on: the one the feed read, else the one the mapping last saw.
    const crmVersion = (crmId: string | null) => (crmId ? crmById.get(crmId)?.version ?? crmVersionOf.get(crmId) ?? null : null);
    const rows: NewOperation[] = result.operations.map((op, seq) => {
      const base = { seq, syncId: randomUUID(), reason: op.reason };
      switch (op.kind) {
        case 'create':
          return op.side === 'exchange'
            ? { ...base, side: 'exchange' as const, kind: 'create', crmId: op.sourceId, exchangeId: null, payload: { record: op.record, fingerprint: op.fingerprint, crmVersion: crmVersion(op.sourceId) } }
            : { ...base, side: 'crm' as const, kind: 'create', crmId: null, exchangeId: op.sourceId, payload: { record: op.record, fingerprint: op.fingerprint, exchangeChangeKey: exById.get(op.sourceId)?.changeKey ?? null } };
        case 'update':
          return { ...base, side: op.side, kind: 'update', crmId: op.crmId, exchangeId: op.exchangeId, payload: { record: op.record, previous: op.previous ?? null, base: op.base ?? op.record, fingerprint: op.fingerprint, exchangeChangeKey: exById.get(op.exchangeId)?.changeKey ?? null, crmVersion: crmVersion(op.crmId), ...(op.restore ? { restore: true } : {}) } };
        case 'delete':
          return { ...base, side: op.side, kind: 'delete', crmId: op.crmId, exchangeId: op.exchangeId, payload: { crmVersion: crmVersion(op.crmId), exchangeChangeKey: exById.get(op.exchangeId)?.changeKey ?? null } };
        case 'unlink':
          return { ...base, side: 'mapping' as const, kind: 'unlink', crmId: op.crmId, exchangeId: op.exchangeId, payload: null };
        case 'refresh':
          return { ...base, side: 'mapping' as const, kind: 'refresh', crmId: op.crmId, exchangeId: op.exchangeId, payload: { crmFingerprint: op.crmFingerprint, exchangeFingerprint: op.exchangeFingerprint, exchangeChangeKey: op.exchangeChangeKey, base: op.base, crmVersion: crmById.get(op.crmId)?.version } };
        case 'link':
          return { ...base, side: 'mapping' as const, kind: 'link', crmId: op.crmId, exchangeId: op.exchangeId, payload: { crmFingerprint: op.crmFingerprint, exchangeFingerprint: op.exchangeFingerprint, exchangeChangeKey: op.exchangeChangeKey ?? null, base: exById.get(op.exchangeId)?.record ?? null, crmVersion: crmVersion(op.crmId) } };
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
      // Everything read was planned (or logged and skipped): commit may clear it once the operations are applied.
      await store.markPlanned(tx, mailboxId, recordType, cycleId, [
        ...exStaged.map((r) => ({ side: 'exchange' as const, id: r.external_id })),
        ...crmStaged.map((r) => ({ side: 'crm' as const, id: r.external_id })),
      ]);
      await policies.clearHold(tx, mailboxId, recordType);
    });
    recordPlan(recordType, result);
    return { operations: rows.length, conflicts: result.conflicts.length };
  }

  const health = new MailboxHealth(deps.db, settings.retryBudgetSeconds ?? 1800);
  return guarded(health, {
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
        ...(policy.email.enabled ? { email: true } : {}),
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
      if (c.resumed) await reopenCycle(deps.db, c.id);
      return { cycleId: c.id, startedAt: c.startedAt.toISOString(), resumed: c.resumed };
    },

    async pullExchange({ mailboxId, cycleId, recordType }: TypeStep) {
      if (await committed(mailboxId, cycleId, recordType)) return { pulled: 0 };
      const m = await mailboxOrFail(mailboxId);
      const ctx = await exchangeStep(m, cycleId, recordType);
      // At most batchSize items per cycle (whole pages); the round goes on next cycle from its saved nextLink.
      const { batchSize } = await typeSettings(mailboxId, recordType);
      const r = await writer(mailboxId, () => keepAlive(beat, () => pullExchangeStep(ctx, batchSize)));
      return { pulled: r.pulled };
    },

    async pullCrm({ mailboxId, cycleId, recordType }: TypeStep) {
      if (await committed(mailboxId, cycleId, recordType)) return { pulled: 0 };
      const m = await mailboxOrFail(mailboxId);
      const cursor = await store.getCursor(mailboxId, recordType);
      // Read once per plan: a pending watermark is this plan's read; an open Exchange round is planned only when
      // complete, and the CRM is read just before that plan so both sides are as fresh as can be.
      if (cursor.pending_crm_watermark || roundOpen(cursor) || (await exState.pendingAnywhere(mailboxId, recordType)) > 0) return { pulled: 0 };
      const ctx = await crmStep(m, cycleId, recordType);
      const pulled = await writer(mailboxId, () => keepAlive(beat, () => pullCrmStep(ctx, { watermark: cursor.crm_watermark, origin: cursor.crm_watermark_origin })));
      await store.addPulled(cycleId, recordType, 'crm', pulled);
      return { pulled };
    },

    async plan({ mailboxId, cycleId, recordType }: TypeStep) {
      if (await committed(mailboxId, cycleId, recordType)) return { operations: 0, conflicts: 0 };
      // Operations not yet applied (this cycle's, after a retry or pause, or carried over by the batch size)
      // belong to a plan still being carried out: nothing new is planned on top of them.
      if ((await exState.pendingAnywhere(mailboxId, recordType)) > 0) return { operations: -1, conflicts: -1 };
      // A delta round longer than the batch size is planned once complete, so first-round decisions (merge by
      // email, first-sync windows, the emptied-side guard) see all of it, as in one uninterrupted cycle.
      if (roundOpen(await store.getCursor(mailboxId, recordType))) return { operations: 0, conflicts: 0 };
      await mailboxOrFail(mailboxId);
      const policy = await policyOrFail(mailboxId);
      return writer(mailboxId, () => keepAlive(beat, () => planType(mailboxId, cycleId, recordType, policy)));
    },

    async applyBatch({ mailboxId, cycleId, recordType, limit }: TypeStep & { limit: number }): Promise<ApplyResult> {
      if (await committed(mailboxId, cycleId, recordType)) return { applied: 0, failed: 0, remaining: 0 };
      const m = await mailboxOrFail(mailboxId);
      const ts = await typeSettings(mailboxId, recordType);
      const since = new Date();
      return writer(mailboxId, async () => {
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
        // Mapping operations, then Exchange writes (JSON batches within the mailbox's limits, 4 in flight, 10,000
        // per 10 minutes, see exchange/exchange-cycle.ts), then CRM writes: a CRM write whose Exchange sibling of
        // the same plan was given back is given back too (crm/crm-cycle.ts). Local operations commit a hundred at
        // a time (an echo round refreshes thousands of mappings).
        const ctx = await crmStep(m, cycleId, recordType, ts);
        const applyLocal = async (local: OperationRow[]) => {
          for (let i = 0; i < local.length; i += 100) {
            const r = await applyLocalChunk(ctx, deps.db, local.slice(i, i + 100), settings.operationAttempts ?? 5);
            applied += r.applied;
            failed += r.failed;
            beat({ applied, failed });
          }
        };
        await applyLocal(ops.filter((o) => o.side === 'mapping'));
        const exchangeOps = ops.filter((o) => o.side === 'exchange');
        if (exchangeOps.length) {
          const ex = await exchangeStep(m, cycleId, recordType);
          const r = await keepAlive(beat, () => applyExchangeOps(ex, exchangeOps, ts.category));
          applied += r.applied;
          failed += r.failed;
        }
        const waiting = await exState.crmWaitingForSibling(cycleId, recordType);
        await applyLocal(ops.filter((o) => o.side === 'crm' && !waiting.has(String(o.id))));
        // CRM writes waiting for their Exchange sibling (beyond this cycle's Exchange budget) wait for the next cycle.
        const sides = open(left);
        const waitingNow = sides.includes('crm') ? (await exState.crmWaitingForSibling(cycleId, recordType)).size : 0;
        const remaining = Math.max(0, (await exState.countPendingOn(cycleId, recordType, sides)) - waitingNow);
        const workRemaining = (await store.countPending(cycleId, recordType)) > remaining;
        return { applied, failed, remaining, workRemaining };
      }).finally(() => countApplied(deps.db, { cycleId, recordType }, since));
    },

    async commitType({ mailboxId, cycleId, recordType }: TypeStep) {
      if (await committed(mailboxId, cycleId, recordType)) return { workRemaining: false };
      // Operations carried to the next cycle by the batch size: nothing is promoted or cleared until they are applied.
      if ((await exState.pendingAnywhere(mailboxId, recordType)) > 0) return { workRemaining: true };
      return writer(mailboxId, async () => {
        const cursor = await store.getCursor(mailboxId, recordType);
        // A round cut short by the batch size keeps its nextLink and its staged pages: the next cycle pulls on.
        const open = roundOpen(cursor);
        let kept = 0;
        await deps.db.transaction().execute(async (tx) => {
          await store.updateCursor(tx, mailboxId, recordType, {
            delta_link: cursor.pending_delta_link ?? cursor.delta_link,
            pending_delta_link: null,
            next_link: open ? cursor.next_link : null,
            // crm_watermark_origin stays: it was saved with the pending watermark, by the read that produced it.
            // The origin now would vouch for a watermark read from a database since replaced.
            crm_watermark: cursor.pending_crm_watermark ?? cursor.crm_watermark,
            pending_crm_watermark: null,
            committed_cycle: cycleId,
          });
          // Only what a plan consumed goes: changes given back for re-planning (a failed precondition on either
          // side) and the pages of an unfinished round stay for the next plan.
          kept = await store.clearPlanned(tx, mailboxId, recordType);
        });
        return { workRemaining: open || kept > 0 };
      });
    },

    async fileMail({ mailboxId, cycleId, limit }: CycleRef & { limit: number }) {
      const m = await mailboxOrFail(mailboxId);
      const policy = await policyOrFail(mailboxId);
      const none = { filed: 0, unresolved: 0, recordsCreated: 0, workRemaining: false };
      if (!policy.email.enabled) return none;
      if (!deps.mail) throw new Error('this worker has no mail client: email filing cannot run (src/worker/worker.ts passes one)');
      const r = await writer(mailboxId, () =>
        keepAlive(beat, () =>
          fileDroppedMail({
            mail: deps.mail!,
            crm: crmEmail,
            store: filingStore,
            mailboxId,
            upn: m.id,
            ownerId: m.crm_user_id,
            policy: policy.email,
            limit,
            rescanSeconds: settings.mailRescanSeconds ?? DEFAULT_MAIL_RESCAN_SECONDS,
            log: (level, message, itemId) => store.log(deps.db, { mailboxId, cycleId, level, recordType: 'email', side: 'exchange', itemId, message }),
            beat,
          }),
        ),
      );
      for (const [k, n] of [['filed', r.filed], ['unresolved', r.unresolved], ['created', r.recordsCreated]] as const) {
        if (n) await store.addCount(cycleId, `email:${k}`, n);
      }
      // Email sync with the CRM Email folder (email-sync.ts): under email.enabled, the master switch.
      if (!policy.email.sync.enabled) return r;
      const synced = await writer(mailboxId, () =>
        keepAlive(beat, () =>
          syncEmailFolder({
            db: deps.db, mail: deps.mail!, crm: crmEmail, store: new EmailSyncStore(deps.db), filing: filingStore, mailboxId, upn: m.id, ownerId: m.crm_user_id,
            policy: policy.email, limit, rescanSeconds: settings.mailRescanSeconds ?? DEFAULT_MAIL_RESCAN_SECONDS, beat,
            log: (level, message, itemId) => store.log(deps.db, { mailboxId, cycleId, level, recordType: 'email', side: 'exchange', itemId, message }),
          }),
        ),
      );
      const counts = { 'to-exchange': synced.toExchange, 'to-crm': synced.toCrm, 'deleted-in-exchange': synced.deletedInExchange, 'contacts-created': synced.contactsCreated, 'attachments-skipped': synced.attachmentsSkipped };
      for (const [k, n] of Object.entries(counts)) if (n) await store.addCount(cycleId, `email-sync:${k}`, n);
      return { ...r, workRemaining: r.workRemaining || synced.workRemaining };
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
      const email = Object.keys(raw).some((k) => k.startsWith('email:'))
        ? { filed: Number(raw['email:filed'] ?? 0), unresolved: Number(raw['email:unresolved'] ?? 0), recordsCreated: Number(raw['email:created'] ?? 0) }
        : undefined;
      const synced = (k: string) => Number(raw[`email-sync:${k}`] ?? 0);
      const emailSync = Object.keys(raw).some((k) => k.startsWith('email-sync:'))
        ? { toExchange: synced('to-exchange'), toCrm: synced('to-crm'), deletedInExchange: synced('deleted-in-exchange'), contactsCreated: synced('contacts-created'), attachmentsSkipped: synced('attachments-skipped') }
        : undefined;
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
      if (cycle?.status !== 'done') recordCycle(outcome, (end.getTime() - (cycle?.started_at ?? end).getTime()) / 1000);
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
        ...(email ? { email } : {}),
        ...(emailSync ? { emailSync } : {}),
      };
    },
  });
}

/**
 * Every activity through the mailbox's health record (health.ts): a success ends its failure streak, a failure
 * extends it and becomes needs-attention once the streak outlasts the retry budget.
 */
function guarded(health: MailboxHealth, acts: MailboxActivities): MailboxActivities {
  const out = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(acts) as Array<[string, (arg: unknown) => Promise<unknown>]>) {
    out[name] = async (arg: unknown) => {
      const mailboxId = typeof arg === 'string' ? arg : (arg as { mailboxId: string }).mailboxId;
      const recordType = typeof arg === 'object' && arg && 'recordType' in arg ? String((arg as { recordType: string }).recordType) : null;
      let result: unknown;
      try {
        result = await fn(arg);
      } catch (err) {
        throw await health.failed(mailboxId, recordType, name, err);
      }
      await health.succeeded(mailboxId);
      return result;
    };
  }
  return out as unknown as MailboxActivities;
}
