/**
 * One long-lived workflow per mailbox: wait until due or asked, run one sync cycle, continue-as-new with a
 * small carried state. Handlers only change state; the main loop does the work. Deterministic: no I/O here.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  isCancellation,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import { nextAllowedTime, type TimeWindow } from '../domain/schedule';
import { MAILBOX_NEEDS_ATTENTION, TYPE_NEEDS_ATTENTION, type CycleSummary, type MailboxStatus, type RecordType, type SyncArea } from '../domain/status';
import type { MailboxActivities, TypeStep } from './activities-contract';

export const pauseSignal = defineSignal<[reason?: string]>('pause');
export const resumeSignal = defineSignal('resume');
export const removeSignal = defineSignal('remove');
export const syncNowSignal = defineSignal('syncNow');
/** sync-now as an update, so the operator hears at once when it is refused (paused mailbox). */
export const syncNowUpdate = defineUpdate<{ waitForCycles: number }, []>('syncNow');
export const statusQuery = defineQuery<MailboxStatus>('status');

export interface CarriedState {
  paused: boolean;
  pausedReason: string | null;
  needsAttentionReason: string | null;
  lastCycle: CycleSummary | null;
  syncRequested: boolean;
  /** A batch limit left work for the next cycle: start it at once instead of waiting for the schedule. */
  workRemaining: boolean;
  cyclesCompleted: number;
  /** The schedule last read, so the next cycle time is known from the first moment of a new run. */
  intervalSeconds?: number;
  /** Record types stopped until `resume` (a refused permission), with the reason; the others go on syncing. */
  typeAttention?: Partial<Record<SyncArea, string>>;
}

export interface MailboxWorkflowInput {
  mailboxId: string;
  state?: CarriedState;
}

export function mailboxWorkflowId(mailboxId: string): string {
  return `cxsync/mailbox/${mailboxId}`;
}

const fast = proxyActivities<MailboxActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: [MAILBOX_NEEDS_ATTENTION] },
});
const long = proxyActivities<MailboxActivities>({
  startToCloseTimeout: '30 minutes',
  // Short enough that a killed worker's activity is retried elsewhere quickly; activities beat per page and per item.
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes', nonRetryableErrorTypes: [MAILBOX_NEEDS_ATTENTION] },
});

function needsAttentionMessage(err: unknown, type = MAILBOX_NEEDS_ATTENTION): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type) {
    return err.cause.message;
  }
  return undefined;
}

/** A needs-attention reason ends with the command that clears it, once the cause is fixed. */
function withResumeHint(reason: string, mailboxId: string): string {
  return /cxsync resume/.test(reason) ? reason : `${reason}; then run: cxsync resume ${mailboxId}`;
}

export async function mailboxWorkflow(input: MailboxWorkflowInput): Promise<void> {
  const { mailboxId } = input;
  const s: CarriedState = input.state ?? {
    paused: false,
    pausedReason: null,
    needsAttentionReason: null,
    lastCycle: null,
    syncRequested: true, // the first cycle after enrolment runs at once
    workRemaining: false,
    cyclesCompleted: 0,
  };
  let syncing = false;
  /** The running cycle failed (needs-attention) and is only being closed: it will not count as completed. */
  let cycleFailing = false;
  let removed = false;
  /** The running cycle's scope: a pause or remove cancels it, so activities stop within seconds (patched below). */
  let cycleScope: CancellationScope | undefined;
  // The policy's active hours (UTC windows computed by loadMailbox): a scheduled cycle waits for the next window.
  // sync-now is not limited. Behind a patch: replaying a history recorded before active hours existed must not
  // start a timer where the old code started none.
  let windows: TimeWindow[] | undefined;
  const clamp = (t: number) => (windows && patched('cxsync-active-hours') ? nextAllowedTime(windows, t) : t);
  const dueAt = (interval: number) => clamp(s.workRemaining ? Date.now() : (s.lastCycle?.end ? Date.parse(s.lastCycle.end) : 0) + interval * 1000);
  let nextCycleAt: number | null = s.intervalSeconds !== undefined ? dueAt(s.intervalSeconds) : null;

  setHandler(pauseSignal, (reason?: string) => {
    s.paused = true;
    s.pausedReason = reason ?? null;
    cycleScope?.cancel();
  });
  setHandler(resumeSignal, () => {
    // An operator who resumes after fixing a cause expects the sync to move now, not at the next scheduled time.
    if ((s.paused || s.needsAttentionReason || s.typeAttention) && patched('cxsync-resume-syncs')) s.syncRequested = true;
    s.paused = false;
    s.pausedReason = null;
    s.needsAttentionReason = null;
    delete s.typeAttention;
  });
  setHandler(removeSignal, () => {
    removed = true;
    cycleScope?.cancel();
  });
  setHandler(syncNowSignal, () => {
    if (!s.paused) s.syncRequested = true;
  });
  setHandler(
    syncNowUpdate,
    () => {
      s.syncRequested = true;
      s.needsAttentionReason = null;
      // A cycle already running began before the request: the caller waits for the one after it. A cycle that
      // failed and is only being closed will not be counted as completed, so the next one is the one to wait for.
      return { waitForCycles: s.cyclesCompleted + (syncing && !cycleFailing ? 2 : 1) };
    },
    {
      validator: () => {
        if (s.paused) throw new Error(`mailbox ${mailboxId} is paused${s.pausedReason ? ` (${s.pausedReason})` : ''}: resume it first`);
        if (removed) throw new Error(`mailbox ${mailboxId} is being removed`);
      },
    },
  );
  const typesStopped = () => Object.keys(s.typeAttention ?? {}).length > 0;
  setHandler(statusQuery, (): MailboxStatus => ({
    mailbox: mailboxId,
    state: s.needsAttentionReason || typesStopped() ? 'needs-attention' : s.paused ? 'paused' : syncing ? 'syncing' : 'idle',
    pausedReason: s.pausedReason,
    needsAttentionReason: s.needsAttentionReason,
    lastCycle: s.lastCycle,
    nextCycleAt: s.paused || s.needsAttentionReason || nextCycleAt === null ? null : new Date(nextCycleAt).toISOString(),
    cyclesCompleted: s.cyclesCompleted,
    ...(typesStopped() ? { typesNeedingAttention: { ...s.typeAttention } } : {}),
  }));

  const config = await fast.loadMailbox(mailboxId);
  if (!config.exists) return;

  // Wait until due or asked; a paused or failing mailbox waits for the operator.
  windows = config.activeWindows;
  s.intervalSeconds = config.intervalSeconds;
  nextCycleAt = dueAt(config.intervalSeconds);
  for (;;) {
    if (removed) return;
    if (s.paused || s.needsAttentionReason) {
      await condition(() => removed || (!s.paused && !s.needsAttentionReason));
      continue;
    }
    if (s.syncRequested) break;
    const wait = nextCycleAt - Date.now();
    if (wait <= 0) break;
    await condition(() => removed || s.paused || !!s.needsAttentionReason || s.syncRequested, wait);
  }

  s.syncRequested = false;
  syncing = true;
  // Read again after the wait: a setting changed while this run waited applies to this cycle.
  const current = await fast.loadMailbox(mailboxId);
  if (!current.exists) return;
  // Behind a patch: histories recorded before pause cancelled the cycle, and before a record type could stop on
  // its own, replay without the new scope and its commands.
  if (patched('cxsync-no-silent-failure')) {
    const types = current.recordTypes.filter((t) => !s.typeAttention?.[t]);
    // Email filing runs after the record types, behind its own patch: histories recorded before it existed
    // replay without the activity (their loadMailbox results never asked for it anyway).
    const email = !!current.email && !s.typeAttention?.email && patched('cxsync-email-filing');
    s.lastCycle = await runCancellableCycle(mailboxId, types, current.batchSize, s, (scope) => (cycleScope = scope), () => (cycleFailing = true), email);
    cycleScope = undefined;
  } else {
    s.lastCycle = await runCycle(mailboxId, current.recordTypes, current.batchSize, s, () => s.paused || removed, () => (cycleFailing = true));
  }
  syncing = false;
  cycleFailing = false;
  windows = current.activeWindows;
  s.intervalSeconds = current.intervalSeconds;
  nextCycleAt = dueAt(current.intervalSeconds);
  if (s.lastCycle.outcome === 'completed') s.cyclesCompleted++;
  if (removed) return;

  await condition(allHandlersFinished);
  await continueAsNew<typeof mailboxWorkflow>({ mailboxId, state: s });
}

async function runCycle(
  mailboxId: string,
  recordTypes: TypeStep['recordType'][],
  batchSize: number,
  s: CarriedState,
  stopRequested: () => boolean,
  failing: () => void,
): Promise<CycleSummary> {
  const { cycleId } = await fast.startCycle(mailboxId);
  s.workRemaining = false;
  try {
    for (const recordType of recordTypes) {
      const step: TypeStep = { mailboxId, cycleId, recordType };
      await long.pullExchange(step);
      await long.pullCrm(step);
      await fast.plan(step);
      for (;;) {
        // Pausing lets the batch in flight finish, then stops; the open cycle resumes after `resume`.
        if (stopRequested()) return await fast.finishCycle({ mailboxId, cycleId, outcome: 'interrupted', detail: 'paused' });
        const r = await long.applyBatch({ ...step, limit: batchSize });
        if (r.workRemaining) s.workRemaining = true;
        if (r.remaining === 0) break;
      }
      // Work beyond this cycle's batch size (or an unfinished delta round) makes the next cycle start at once.
      // Only state changes here, no new commands: histories recorded before this replay unchanged.
      const committed = await fast.commitType(step);
      if (committed?.workRemaining) s.workRemaining = true;
    }
    return await fast.finishCycle({ mailboxId, cycleId, outcome: 'completed' });
  } catch (err) {
    const reason = needsAttentionMessage(err);
    if (reason === undefined) throw err;
    failing();
    s.needsAttentionReason = reason;
    return await fast.finishCycle({ mailboxId, cycleId, outcome: 'failed', detail: reason });
  }
}

/**
 * One cycle in a cancellable scope (a pause or remove cancels it: the running activity stops at its next
 * heartbeat, a retry waiting for its backoff is dropped), where a record type whose permission was refused stops
 * alone and the others go on. Transient failures are retried by Temporal until the mailbox's retry budget is
 * spent, when the activity itself turns them into needs-attention (activities/health.ts).
 */
async function runCancellableCycle(
  mailboxId: string,
  recordTypes: RecordType[],
  batchSize: number,
  s: CarriedState,
  setScope: (scope: CancellationScope) => void,
  failing: () => void,
  email = false,
): Promise<CycleSummary> {
  const { cycleId } = await fast.startCycle(mailboxId);
  s.workRemaining = false;
  const scope = new CancellationScope();
  setScope(scope);
  const close = (outcome: 'completed' | 'interrupted' | 'failed', detail?: string) =>
    CancellationScope.nonCancellable(() => fast.finishCycle({ mailboxId, cycleId, outcome, ...(detail ? { detail } : {}) }));
  try {
    await scope.run(async () => {
      for (const recordType of recordTypes) {
        const step: TypeStep = { mailboxId, cycleId, recordType };
        try {
          await long.pullExchange(step);
          await long.pullCrm(step);
          await long.plan(step);
          for (;;) {
            const r = await long.applyBatch({ ...step, limit: batchSize });
            if (r.workRemaining) s.workRemaining = true;
            if (r.remaining === 0) break;
          }
          const committed = await fast.commitType(step);
          if (committed?.workRemaining) s.workRemaining = true;
        } catch (err) {
          const reason = needsAttentionMessage(err, TYPE_NEEDS_ATTENTION);
          if (reason === undefined) throw err;
          (s.typeAttention ??= {})[recordType] = withResumeHint(reason, mailboxId);
        }
      }
      if (email) {
        try {
          const r = await long.fileMail({ mailboxId, cycleId, limit: batchSize });
          if (r.workRemaining) s.workRemaining = true;
        } catch (err) {
          const reason = needsAttentionMessage(err, TYPE_NEEDS_ATTENTION);
          if (reason === undefined) throw err;
          (s.typeAttention ??= {}).email = withResumeHint(reason, mailboxId);
        }
      }
    });
  } catch (err) {
    if (isCancellation(err)) return await close('interrupted', s.paused ? 'paused' : 'cancelled');
    const reason = needsAttentionMessage(err);
    if (reason === undefined) throw err;
    failing();
    s.needsAttentionReason = withResumeHint(reason, mailboxId);
    return await close('failed', s.needsAttentionReason);
  }
  // The cycle ran for every type it could: it counts as completed (sync-now waits on it), and names the types
  // that stopped; the status shows them as needs-attention.
  const stopped = Object.entries(s.typeAttention ?? {}).filter(([t]) => recordTypes.includes(t as RecordType) || (email && t === 'email'));
  return await close('completed', stopped.length ? `stopped until resume: ${stopped.map(([t, r]) => `${t}: ${r}`).join('; ')}` : undefined);
}
