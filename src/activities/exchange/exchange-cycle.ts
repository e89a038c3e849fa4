/**
 * The Exchange half of a cycle, for any record type: pulling a delta round (resumable, capped per cycle, full
 * rounds reconciled against mappings and sync markers) and applying the planned Exchange writes through JSON
 * batches (idempotent creates, If-Match updates, 412 handled by reading the item again). The activities in
 * mailbox-activities.ts call these; Temporal retries them, and everything here is safe to run again.
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { Transaction } from 'kysely';
import type { Db } from '../../db/connection';
import type { Database } from '../../db/schema';
import { ExchangeStateStore, REPLAN_PREFIX } from '../../db/exchange-state';
import type { MappingRow, OperationRow, StagedRow, SyncStore } from '../../db/sync-store';
import { canonicalJson } from '../../domain/fingerprint';
import { syncedFingerprint } from '../../domain/planning';
import { MAILBOX_NEEDS_ATTENTION, type RecordType } from '../../domain/status';
import type { ExchangeDeltaItem, ExchangeItem, RecordTypeAdapter } from '../record-types/adapter';
import { runBatched, type BatchOutcome, type GraphSubRequest } from './batch';
import { ensureMasterCategory } from './categories';
import { attentionFailure, classifyGraphError, toActivityFailure, type ClassifiedGraphError } from './errors';

type LogLevel = 'error' | 'warn' | 'info' | 'verbose';

export interface ExchangeStepContext {
  db: Db;
  store: SyncStore;
  state: ExchangeStateStore;
  adapter: RecordTypeAdapter<unknown>;
  mailboxId: string;
  /** The mailbox address Graph is called with. */
  upn: string;
  cycleId: string;
  recordType: RecordType;
  containerId: string;
  log(level: LogLevel, message: string, extra?: { side?: string; itemId?: string }): Promise<void>;
  beat(details?: unknown): void;
  /** Attempts an operation gets when errors are about it (a 409, or a 5xx while its batch's others succeed); default 5. */
  operationAttempts?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A 429 asking for a longer pause than this ends the activity (Temporal waits out the Retry-After). */
const LONG_RETRY_AFTER_MS = 5_000;
/** Retry delay after an attempt that saved progress before failing (no Retry-After given). */
const PROGRESS_RETRY_MS = 1_000;

/** Transient failures (throttling, 5xx, network) of some operations: the activity fails after saving the rest. */
class TransientFailures {
  count = 0;
  retryAfterMs: number | undefined;
  first: ClassifiedGraphError | undefined;
  /** Only throttling (429, or the mailbox's own budget): expected pacing rather than a fault. */
  onlyThrottled = true;
  add(e: ClassifiedGraphError): void {
    this.count++;
    this.first ??= e;
    if (e.kind !== 'throttled') this.onlyThrottled = false;
    if (e.retryAfterMs !== undefined) this.retryAfterMs = Math.max(this.retryAfterMs ?? 0, e.retryAfterMs);
  }
  wait(ms: number): void {
    this.retryAfterMs = Math.max(this.retryAfterMs ?? 0, ms);
  }
  reset(): void {
    this.count = 0;
    this.retryAfterMs = undefined;
    this.first = undefined;
    this.onlyThrottled = true;
  }
  /**
   * The activity's failure: the largest Retry-After becomes Temporal's retry delay. Without one, an attempt that
   * made progress asks for a short delay, so Temporal's backoff does not grow with every partial success.
   */
  toFailure(what: string, progressed = false): ApplicationFailure {
    const e = this.first;
    const message = `${what}: ${this.count} operation(s) met transient Graph errors${e ? ` (first: ${e.status} ${e.code})` : ''}; done ones are saved, the rest is retried`;
    const delay = this.retryAfterMs ?? (progressed ? PROGRESS_RETRY_MS : undefined);
    return ApplicationFailure.create({
      message,
      type: e ? `Graph${e.status}` : 'GraphBudget',
      ...(delay !== undefined ? { nextRetryDelay: Math.max(1, delay) } : {}),
      // Throttling and the mailbox's own budget are pacing: logged at debug level, not as failures.
      ...(this.onlyThrottled ? { category: ApplicationFailureCategory.BENIGN } : {}),
    });
  }
}

/** True for errors retrying cannot fix (credentials, a refused permission, a missing mailbox): see errors.ts. */
const needsOperator = (e: ClassifiedGraphError) => e.kind === 'credentials' || e.kind === 'forbidden' || e.kind === 'mailbox';

function needsAttention(e: ClassifiedGraphError, what: string, recordType: RecordType): ApplicationFailure {
  return attentionFailure(e, what, recordType) ?? ApplicationFailure.create({ message: `${what}: Graph ${e.status} ${e.code}`, type: MAILBOX_NEEDS_ATTENTION, nonRetryable: true });
}

/** Heartbeats every few seconds while `fn` runs: waits for the mailbox's budget can outlast the heartbeat timeout. */
export async function keepAlive<T>(beat: (details?: unknown) => void, fn: () => Promise<T>): Promise<T> {
  // A beat that throws (lease lost, cancelled) must not throw inside the timer, where nothing catches it and the
  // worker process would die: it stops the timer, and the work stops at its own next beat.
  const timer = setInterval(() => {
    try {
      beat();
    } catch {
      clearInterval(timer);
    }
  }, 5_000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

/**
 * A read (GET) is safe to repeat: a short throttling or transient failure is retried here a few times, so one
 * faulty answer does not cost an activity retry (whose backoff grows with every attempt). Anything else, or a
 * long Retry-After, goes to the caller.
 */
async function idempotentRead<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const g = classifyGraphError(err);
      const wait = g.retryAfterMs ?? 250 * 2 ** attempt;
      if (attempt >= 3 || !(g.kind === 'throttled' || g.kind === 'transient') || wait > LONG_RETRY_AFTER_MS) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

// ================================================================================================
// Pull
// ================================================================================================

export interface PullResult {
  pulled: number;
  /** Operations of an earlier cycle taken over by this one (nothing new is pulled until they are applied). */
  carried: number;
  /** The round did not finish in this cycle (batch size reached). */
  roundOpen: boolean;
}

/**
 * One cycle's share of the delta round: at most `limit` items (whole pages), each page staged with its
 * nextLink in one transaction. A 410 starts a full round. A full round (the first one, or after a 410) first
 * relinks items carrying a sync marker whose mapping was lost, marks what it sees, and when it completes
 * treats mapped items it did not see as deleted only after reading each one and finding it gone.
 */
export async function pullExchangeStep(ctx: ExchangeStepContext, limit: number): Promise<PullResult> {
  const { store, state, adapter, mailboxId, recordType, cycleId, upn, containerId } = ctx;
  // Operations left over by the batch size are applied before anything new is pulled: the plan they belong to
  // stays valid only while nothing is staged on top of it.
  const carried = await state.adoptPending(mailboxId, recordType, cycleId);
  if (carried > 0) {
    await ctx.log('info', `${carried} operation(s) carried over from the previous cycle (batch size); pulling resumes after them`, { side: 'exchange' });
    return { pulled: 0, carried, roundOpen: false };
  }
  if (await store.hasOperations(cycleId, recordType)) return { pulled: 0, carried: 0, roundOpen: false }; // planned before a retry or pause
  const cursor = await store.getCursor(mailboxId, recordType);
  if (cursor.pending_delta_link) return { pulled: 0, carried: 0, roundOpen: false }; // this round is complete and waits for commit

  let budget = limit - (await state.pulledThisCycle(cycleId, recordType, 'exchange'));
  let link = cursor.next_link ?? cursor.delta_link ?? undefined;
  let fullSince = await state.fullRoundStartedAt(mailboxId, recordType);
  if (!link && !fullSince) fullSince = await beginFullRound(ctx, false);
  let pulled = 0;
  while (budget > 0) {
    let page;
    try {
      page = await idempotentRead(() => adapter.deltaPage(upn, containerId, link, budget));
    } catch (err) {
      if (classifyGraphError(err).kind === 'sync-state-expired' && link) {
        // The saved token expired: a fresh, full round. Mapped items are matched by id, lost mappings by marker.
        await ctx.log('warn', 'delta token expired (SyncStateNotFound); starting a full round', { side: 'exchange' });
        await store.updateCursor(ctx.db, mailboxId, recordType, { next_link: null, delta_link: null });
        fullSince = await beginFullRound(ctx, true);
        link = undefined;
        continue;
      }
      if (classifyGraphError(err).kind === 'not-found') {
        // The folder, calendar or list was deleted in the mailbox: its id answers 404 for ever. Forget it, so the
        // retry creates it again and a full round matches what is left by marker (docs/OPERATIONS.md).
        await ctx.log('warn', `the ${recordType} container was deleted in the mailbox: it is created again and a full round matches the items cxsync syncs by their markers`, { side: 'exchange' });
        await store.updateCursor(ctx.db, mailboxId, recordType, { exchange_folder_id: null, next_link: null, delta_link: null, pending_delta_link: null });
        throw ApplicationFailure.create({ message: `the ${recordType} container of ${upn} was deleted; it is created again`, type: 'ContainerDeleted', nextRetryDelay: 1000 });
      }
      throw toActivityFailure(err, `reading the ${recordType} delta of ${upn}`, { progressed: pulled > 0, recordType });
    }
    let items = await completePartialItems(ctx, page.items);
    if (fullSince) {
      const orphans = await state.orphans(mailboxId, recordType, items.map((i) => i.id));
      if (orphans.size) items = items.filter((i) => !orphans.has(i.id));
    }
    const rows: StagedRow[] = items.map((it) => ({ externalId: it.id, removed: it.removed, changeKey: it.changeKey, payload: it.payload }));
    const last = !!page.deltaLink || !page.nextLink;
    // Stage the page and save where the next one starts in one transaction: a retry resumes here. The last
    // page of a full round is saved in two steps (stage, then the unseen check and the deltaLink).
    await ctx.db.transaction().execute(async (tx) => {
      await store.stage(tx, mailboxId, recordType, 'exchange', rows);
      if (fullSince) await state.markRoundItems(tx, mailboxId, recordType, items.filter((i) => !i.removed).map((i) => i.id), 'seen');
      if (!last) await store.updateCursor(tx, mailboxId, recordType, { next_link: page.nextLink ?? null });
      else if (!fullSince) await store.updateCursor(tx, mailboxId, recordType, { next_link: null, pending_delta_link: page.deltaLink ?? null });
    });
    if (last && fullSince) {
      const gone = await unseenAndGone(ctx, fullSince);
      await ctx.db.transaction().execute(async (tx) => {
        if (gone.length) await store.stage(tx, mailboxId, recordType, 'exchange', gone.map((id) => ({ externalId: id, removed: true, changeKey: null, payload: null })));
        await state.finishFullRound(tx, mailboxId, recordType);
        await store.updateCursor(tx, mailboxId, recordType, { next_link: null, pending_delta_link: page.deltaLink ?? null });
      });
      if (gone.length) await ctx.log('info', `full round complete: ${gone.length} mapped item(s) no longer in Exchange are treated as deleted`, { side: 'exchange' });
    }
    pulled += rows.length;
    budget -= rows.length;
    await store.addPulled(cycleId, recordType, 'exchange', rows.length);
    ctx.beat({ pulled });
    if (last) return { pulled, carried: 0, roundOpen: false };
    link = page.nextLink;
  }
  return { pulled, carried: 0, roundOpen: true };
}

/**
 * A full round starts: forget what an earlier attempt saw, and relink items that carry cxsync's marker but no
 * mapping (lost with a reset or a crash) to the CRM record they came from, so the round does not import them as
 * new — which would duplicate them on both sides. Marked items whose CRM record is gone are not imported either.
 */
async function beginFullRound(ctx: ExchangeStepContext, restart: boolean): Promise<Date> {
  const { store, state, adapter, mailboxId, recordType, upn, containerId } = ctx;
  const startedAt = await state.startFullRound(ctx.db, mailboxId, recordType);
  let marked;
  try {
    marked = await adapter.markedItems(upn, containerId);
  } catch (err) {
    throw toActivityFailure(err, `listing the ${recordType} items cxsync created in ${upn}`, { recordType });
  }
  if (marked.length === 0) return startedAt;
  const withCrm = marked.filter((m) => m.marker.crmId);
  const mapped = await state.mappedIds(mailboxId, recordType, withCrm.map((m) => m.id), withCrm.map((m) => m.marker.crmId!));
  const candidates = withCrm.filter((m) => !mapped.exchange.has(m.id)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (candidates.length === 0) return startedAt;
  const live = await adapter.crmExisting([...new Set(candidates.map((c) => c.marker.crmId!))].filter((id) => !mapped.crm.has(id)));
  const claimed = new Set<string>();
  const orphans: string[] = [];
  let relinked = 0;
  await ctx.db.transaction().execute(async (tx) => {
    for (const c of candidates) {
      const crmId = c.marker.crmId!;
      if (!live.has(crmId) || claimed.has(crmId)) {
        orphans.push(c.id);
        continue;
      }
      claimed.add(crmId);
      relinked++;
      // Fingerprints unknown: the round's copy of the item and the CRM feed decide what (if anything) to write.
      await store.upsertMapping(tx, {
        mailbox_id: mailboxId, record_type: recordType, crm_id: crmId, exchange_id: c.id,
        sync_id: c.marker.syncId && UUID.test(c.marker.syncId) ? c.marker.syncId : randomUUID(),
        crm_fingerprint: null, exchange_fingerprint: null, exchange_change_key: null,
      });
    }
    if (orphans.length) await state.markRoundItems(tx, mailboxId, recordType, orphans, 'orphan');
  });
  if (relinked) await ctx.log('info', `${restart ? 'resync' : 'full round'}: ${relinked} item(s) created by cxsync relinked to their CRM records by sync marker`, { side: 'exchange' });
  if (orphans.length) {
    await ctx.log('warn', `${orphans.length} item(s) created by cxsync for CRM records that no longer exist (or another item already holds) are left as they are and not imported`, { side: 'exchange' });
  }
  return startedAt;
}

/**
 * Reads items by id (20 per batch). Operations that meet throttling or a transient error are sent again, alone,
 * a few times within the activity (after their Retry-After when it is short); what still fails fails the activity.
 */
async function readItems(ctx: ExchangeStepContext, ids: string[], what: string): Promise<Map<string, ExchangeItem | null>> {
  const { adapter, upn, containerId } = ctx;
  const out = new Map<string, ExchangeItem | null>();
  let todo = [...new Set(ids)];
  let transient = new TransientFailures();
  for (let attempt = 0; todo.length > 0 && attempt < 5; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(transient.retryAfterMs ?? 250 * 2 ** attempt, LONG_RETRY_AFTER_MS)));
    transient = new TransientFailures();
    const failed: string[] = [];
    const run = await runBatched(adapter.graph, upn, todo.map((id) => ({ key: id, request: adapter.exchangeRequests.get(upn, containerId, id) })), async (outs) => {
      for (const o of outs) {
        if (!o.error) out.set(o.key, adapter.itemOf(o.response.body));
        else if (o.error.kind === 'not-found') out.set(o.key, null);
        else if (needsOperator(o.error)) throw needsAttention(o.error, what, ctx.recordType);
        else if (o.error.kind === 'throttled' || o.error.kind === 'transient' || o.error.kind === 'unknown') {
          transient.add(o.error);
          failed.push(o.key);
        } else throw toActivityFailure({ statusCode: o.error.status, code: o.error.code, message: o.error.message }, what, { recordType: ctx.recordType });
      }
      ctx.beat({ read: out.size });
    });
    if (run.waitMs !== undefined) {
      transient.wait(run.waitMs);
      throw transient.toFailure(what);
    }
    todo = [...failed, ...run.unsent.map((u) => u.key)];
    if ((transient.retryAfterMs ?? 0) > LONG_RETRY_AFTER_MS) break;
  }
  if (todo.length > 0) throw transient.toFailure(what);
  return out;
}

/** Delta items that came with only their changed properties are read in full. */
async function completePartialItems(ctx: ExchangeStepContext, items: ExchangeDeltaItem[]): Promise<ExchangeDeltaItem[]> {
  const { adapter, upn, containerId } = ctx;
  const partial = items.filter((i) => !i.removed && i.payload && !adapter.isComplete(i.payload));
  if (partial.length === 0) return items;
  const full = await readItems(ctx, partial.map((i) => i.id), `reading partial ${ctx.recordType} delta items of ${upn}`);
  return items.map((i) => {
    if (!full.has(i.id)) return i;
    const it = full.get(i.id);
    // Gone, or in another folder: it left ours since the page was made.
    if (!it || (it.containerId && it.containerId !== containerId)) return { id: i.id, removed: true, changeKey: null, payload: null };
    return { id: i.id, removed: false, changeKey: it.changeKey, payload: it.payload };
  });
}

/** Mapped items a completed full round did not see, read one by one: those gone (or moved out) are deleted. */
async function unseenAndGone(ctx: ExchangeStepContext, startedAt: Date): Promise<string[]> {
  const { upn, containerId, state, mailboxId, recordType } = ctx;
  const unseen = await state.unseenMapped(mailboxId, recordType, startedAt);
  if (unseen.length === 0) return [];
  const found = await readItems(ctx, unseen.map((u) => u.exchange_id), `checking ${recordType} items a full round did not see in ${upn}`);
  // Still there (changed while the round was paged, so the next round brings it): nothing to do.
  return unseen.map((u) => u.exchange_id).filter((id) => {
    const it = found.get(id);
    return it === null || (it !== undefined && it.containerId !== undefined && it.containerId !== containerId);
  });
}

// ================================================================================================
// Apply
// ================================================================================================

interface OpPayload {
  record?: unknown;
  /** What the item held as the plan saw it: an update sends only what differs from it. */
  previous?: unknown;
  /** The mapping's base once the operation is applied. */
  base?: unknown;
  /** The CRM version the written values came from: the mapping's version once applied. */
  crmVersion?: string | null;
  fingerprint?: string;
  exchangeChangeKey?: string | null;
}

export interface ApplyExchangeResult {
  applied: number;
  failed: number;
  /** Skipped: the Exchange item changed after planning; the next cycle plans the pair again. */
  replanned: number;
}

type Step = 'find' | 'create' | 'update' | 'delete' | 'reread' | 'retry-update' | 'retry-delete';
interface Work {
  op: OperationRow;
  step: Step;
  changeKey?: string | null;
  /** 'find' past the first page of a paged lookup: the request for that page (adapter.findNextPage). */
  page?: GraphSubRequest;
}

/**
 * Applies Exchange operations through JSON batches (20 per request, one request in flight: the mailbox's 4
 * concurrent slots). Each operation's mapping change and its `done` mark commit in one transaction as soon as
 * its batch answers. Creates: an operation attempted before is first looked up by its sync id. Updates and
 * deletes carry If-Match; on 412 the item is read again: if it already holds our values the operation is done,
 * if only properties cxsync does not sync changed it is retried with the new change key, otherwise (the user
 * edited synced fields after the plan) it is skipped and its CRM change kept staged, so the next cycle (started
 * at once) plans both versions as a conflict under the policy's rule. Throttled and failed (5xx, network)
 * operations stay pending: the activity fails after the others are saved, with the largest Retry-After as its
 * retry delay, and the retry sends only what is still pending.
 */
export async function applyExchangeOps(ctx: ExchangeStepContext, ops: OperationRow[], category: { name: string; color: string } | null): Promise<ApplyExchangeResult> {
  const { db, store, state, adapter, mailboxId, recordType, cycleId, upn, containerId } = ctx;
  const result: ApplyExchangeResult = { applied: 0, failed: 0, replanned: 0 };
  if (ops.length === 0) return result;
  const transient = new TransientFailures();
  const what = `writing ${recordType} items in ${upn}`;
  const payload = (op: OperationRow) => (op.payload ?? {}) as OpPayload;

  const crmIds = ops.filter((o) => o.kind !== 'create' && o.crm_id).map((o) => o.crm_id!);
  const mappings = new Map<string, MappingRow>((await store.mappingsFor(mailboxId, recordType, crmIds, [])).map((m) => [m.crm_id, m]));

  const creates = ops.filter((o) => o.kind === 'create');
  if (category && creates.length) {
    try {
      await ensureMasterCategory(adapter.graph, upn, category);
    } catch (err) {
      const g = classifyGraphError(err);
      if (g.kind !== 'bad-item') throw toActivityFailure(err, `creating the marking category in ${upn}`, { recordType });
      // A colour Graph refuses must not stop the sync: items still carry the category, without colour.
      await ctx.log('warn', `category ${category.name} could not be added to the master list: ${g.code} ${g.message}`, { side: 'exchange' });
    }
  }

  // ---- commits: each answer's database effect is queued, and a batch's effects commit in one transaction ----
  let effects: Array<(tx: Transaction<Database>) => Promise<void>> = [];
  const done = async (op: OperationRow, item?: ExchangeItem) => {
    const p = payload(op);
    if (item && adapter.afterWrite && (op.kind === 'create' || op.kind === 'update')) item = await adapter.afterWrite(upn, containerId, item, p.record, op.kind);
    effects.push(async (tx) => {
      if (op.kind === 'create') {
        await store.upsertMapping(tx, {
          mailbox_id: mailboxId, record_type: recordType, crm_id: op.crm_id!, exchange_id: item!.id, sync_id: op.sync_id,
          crm_fingerprint: p.fingerprint!, exchange_fingerprint: p.fingerprint!, exchange_change_key: item!.changeKey,
          base: p.base ?? p.record, crm_version: p.crmVersion ?? null,
        });
      } else if (op.kind === 'update') {
        await store.updateMapping(tx, mailboxId, recordType, op.crm_id!, { crm_fingerprint: p.fingerprint, exchange_fingerprint: p.fingerprint, exchange_change_key: item?.changeKey ?? null, base: p.base, crm_version: p.crmVersion ?? undefined });
      } else if (op.kind === 'delete') {
        await store.deleteMapping(tx, mailboxId, recordType, op.crm_id!);
      }
      await store.finishOperation(tx, op.id, 'done');
    });
    result.applied++;
  };
  // Graph's own message text is left out: it can echo the item's values into the log and the history.
  const itemFailed = async (op: OperationRow, e: ClassifiedGraphError, attempts?: number) => {
    const message = `Graph ${e.status} ${e.code}`.trim();
    const retry = attempts ? ` after ${attempts} attempts; fix the cause, then run cxsync retry ${mailboxId}` : '';
    effects.push(async (tx) => {
      await store.finishOperation(tx, op.id, 'failed', message);
      await store.log(tx, { mailboxId, cycleId, level: 'error', recordType, side: 'exchange', itemId: op.crm_id ?? op.exchange_id ?? undefined, message: `${op.kind} failed${retry}: ${message}` });
    });
    result.failed++;
  };
  /**
   * The write met a newer version: nothing is written, and the CRM change goes back to the next plan with the
   * version now in Exchange (when read), so that plan merges both against the base.
   */
  const replan = async (op: OperationRow, why: string, now?: ExchangeItem) => {
    effects.push(async (tx) => {
      if (now && op.exchange_id) await store.stage(tx, mailboxId, recordType, 'exchange', [{ externalId: op.exchange_id, removed: false, changeKey: now.changeKey, payload: now.payload }]);
      if (op.crm_id) await store.unplanCrmIfCurrent(tx, mailboxId, recordType, op.crm_id);
      await store.finishOperation(tx, op.id, 'skipped', `${REPLAN_PREFIX} ${why}`);
      await store.log(tx, { mailboxId, cycleId, level: 'info', recordType, side: 'exchange', itemId: op.exchange_id ?? undefined, message: `${op.kind} not applied: ${why}; planned again next cycle against the newer version` });
    });
    result.replanned++;
  };
  // Exchange never reports the deletion of an item its delta had not yet returned (one cxsync created and the
  // user deleted before the next round): record the deletion ourselves, so the next plan applies the
  // delete-vs-update rule instead of re-sending an update that can only answer 404 (a loop every cycle).
  const goneFromExchange = async (op: OperationRow) => {
    effects.push((tx) => store.stage(tx, mailboxId, recordType, 'exchange', [{ externalId: op.exchange_id!, removed: true, changeKey: null, payload: null }]));
    await replan(op, 'the Exchange item was deleted after planning');
  };

  // ---- requests ----
  const ifMatchKey = (op: OperationRow) => payload(op).exchangeChangeKey ?? mappings.get(op.crm_id ?? '')?.exchange_change_key ?? null;
  const request = (w: Work): GraphSubRequest => {
    const r = adapter.exchangeRequests;
    const p = payload(w.op);
    switch (w.step) {
      case 'find': return w.page ?? r.findBySyncId(upn, containerId, w.op.sync_id);
      case 'create': return r.create(upn, containerId, p.record, { syncId: w.op.sync_id, crmId: w.op.crm_id! }, category?.name ?? null);
      case 'update': return r.update(upn, containerId, w.op.exchange_id!, p.record, ifMatchKey(w.op), p.previous ?? undefined);
      case 'retry-update': return r.update(upn, containerId, w.op.exchange_id!, p.record, w.changeKey ?? null, p.previous ?? undefined);
      case 'delete': return r.delete(upn, containerId, w.op.exchange_id!, ifMatchKey(w.op));
      case 'retry-delete': return r.delete(upn, containerId, w.op.exchange_id!, w.changeKey ?? null);
      case 'reread': return r.get(upn, containerId, w.op.exchange_id!);
    }
  };

  const next: Work[] = [];
  /** This round moved a lookup on to its next page. */
  let paged = false;
  let attention: ClassifiedGraphError | undefined;
  const handle = async (w: Work, o: BatchOutcome<Work>): Promise<'stop' | void> => {
    const { op } = w;
    const e = o.error;
    // An error about this item, not the service (a 409, a 423, another 4xx Graph does not document for writes):
    // counted, and at the limit the operation fails alone instead of failing the activity on every attempt. 5xx
    // are not counted: a faulty Graph fails items at random, and an unlucky item must not be dropped for it (the
    // mailbox's retry budget covers a 5xx that never heals).
    if (e && e.kind === 'unknown') {
      const failures = await store.addOperationFailure(db, op.id, `Graph ${e.status} ${e.code}`.trim());
      if (failures >= (ctx.operationAttempts ?? 5)) return void (await itemFailed(op, e, failures));
    }
    if (e && needsOperator(e)) {
      attention ??= e; // raised once the batch's other answers are saved
      return 'stop';
    }
    if (e && (e.kind === 'throttled' || e.kind === 'transient' || e.kind === 'unknown')) {
      // Sent again in the next round, alone: a create is looked up first (its answer may have been lost).
      transient.add(e);
      next.push({ ...w, step: w.step === 'create' ? 'find' : w.step });
      return e.kind === 'throttled' && (e.retryAfterMs ?? 0) > LONG_RETRY_AFTER_MS ? 'stop' : undefined;
    }
    switch (w.step) {
      case 'find': {
        const found = e ? undefined : adapter.foundOf(o.response.body, op.sync_id);
        if (found) return void (await done(op, found));
        if (e) return void (await itemFailed(op, e));
        const page = adapter.findNextPage?.(o.response.body, op.sync_id);
        if (page) {
          paged = true;
          next.push({ op, step: 'find', page });
          return;
        }
        next.push({ op, step: 'create' });
        return;
      }
      case 'create':
        if (!e) return void (await done(op, adapter.itemOf(o.response.body)));
        return void (await itemFailed(op, e));
      case 'update':
      case 'retry-update':
        if (!e) return void (await done(op, adapter.itemOf(o.response.body)));
        if (e.kind === 'precondition-failed') {
          if (w.step === 'retry-update') return void (await replan(op, 'the Exchange item changed again while being updated (412)'));
          next.push({ op, step: 'reread' });
          return;
        }
        if (e.kind === 'not-found') return void (await goneFromExchange(op));
        return void (await itemFailed(op, e));
      case 'delete':
      case 'retry-delete':
        if (!e || e.kind === 'not-found') return void (await done(op)); // gone either way: the goal state holds
        if (e.kind === 'precondition-failed') {
          if (w.step === 'retry-delete') return void (await replan(op, 'the Exchange item changed again while being deleted (412)'));
          next.push({ op, step: 'reread' });
          return;
        }
        return void (await itemFailed(op, e));
      case 'reread': {
        if (e?.kind === 'not-found') {
          if (op.kind === 'delete') return void (await done(op));
          return void (await goneFromExchange(op));
        }
        if (e) return void (await itemFailed(op, e));
        const it = adapter.itemOf(o.response.body);
        const parsed = adapter.fromExchange(it.payload);
        const now = parsed.ok ? syncedFingerprint(recordType, parsed.value) : undefined;
        const mapped = mappings.get(op.crm_id ?? '')?.exchange_fingerprint ?? undefined;
        if (op.kind === 'update' && now !== undefined && now === payload(op).fingerprint) return void (await done(op, it)); // already holds our values
        // A patch computed against `previous` is safe to send again only if the record fields (those only
        // Exchange holds included: the patch may carry them, e.g. a display name) are still as the plan saw them.
        const prev = payload(op).previous;
        const unchanged = prev !== undefined && prev !== null ? parsed.ok && canonicalJson(parsed.value) === canonicalJson(prev) : now !== undefined && now === mapped;
        if (unchanged) {
          // Only properties cxsync does not sync changed (or nothing): write again on the new version.
          next.push({ op, step: op.kind === 'update' ? 'retry-update' : 'retry-delete', changeKey: it.changeKey });
          return;
        }
        return void (await replan(op, 'the Exchange item was edited after planning (412 Precondition Failed)', it));
      }
    }
  };

  // Creates attempted before (their answer may have been lost: crash, 504) are looked up by sync id first.
  let work: Work[] = ops.map((op) => ({ op, step: op.kind === 'create' ? (op.attempts > 0 ? 'find' : 'create') : (op.kind as Step) }));
  // Round 0 sends everything; later rounds send what needs a second request (a lookup that found nothing, a
  // re-read after 412, a retry on the new change key) and what met a short throttling or transient failure.
  let unresolved = 0;
  // A round that moved a lookup on to its next page made progress through a finite list: it does not count
  // against the cap, or a list of more than ~5 pages could never finish its lookup (every retry starts over).
  let pagingRounds = 0;
  for (let round = 0; work.length > 0; round++) {
    if (round - pagingRounds >= 6 || (transient.retryAfterMs ?? 0) > LONG_RETRY_AFTER_MS) {
      unresolved = work.length;
      break;
    }
    if (transient.count > 0) await new Promise((r) => setTimeout(r, Math.min(transient.retryAfterMs ?? 250 * 2 ** round, LONG_RETRY_AFTER_MS)));
    if (round > 0) transient.reset();
    const run = await runBatched(adapter.graph, upn, work.map((w) => ({ key: w, request: request(w) })), async (outs) => {
      let stop: 'stop' | void = undefined;
      for (const o of outs) stop = (await handle(o.key, o)) ?? stop;
      // Each operation's mapping change commits with its `done` mark; one transaction per batch.
      const batchEffects = effects;
      effects = [];
      if (batchEffects.length) {
        await db.transaction().execute(async (tx) => {
          for (const f of batchEffects) await f(tx);
        });
      }
      ctx.beat({ applied: result.applied, failed: result.failed });
      return stop;
    }, async (keys) => {
      // Counted just before sending: a create whose answer is lost is looked up next time instead of repeated.
      const creates = keys.filter((w) => w.step === 'create');
      await state.markAttempts(creates.map((w) => w.op.id));
      for (const w of creates) w.op.attempts++;
    });
    if (attention) throw needsAttention(attention, what, recordType);
    work = [...next.splice(0), ...run.unsent.map((u) => u.key)];
    if (paged) pagingRounds++;
    paged = false;
    if (run.waitMs !== undefined) {
      // The mailbox's request budget is spent: Temporal waits it out instead of this activity.
      transient.wait(run.waitMs);
      unresolved = work.length;
      break;
    }
  }
  if (unresolved > 0) {
    transient.count = unresolved;
    throw transient.toFailure(what, result.applied + result.failed + result.replanned > 0);
  }
  return result;
}

