/**
 * The mailbox workflow as a step machine: `cycleSteps` below is runCycle of src/workflows/mailbox.ts, line for
 * line, except that each activity call is a `yield*` the driver answers. Keep the two parallel: when the
 * workflow changes the order of its activities, change it here the same way.
 *
 * When the mailbox's loadMailbox config says `email: true` (the policy's email.enabled), the cycle files dropped
 * mail after its record types, as runCancellableCycle does: `fileMail` with the batch size as its limit, its
 * TypeNeedsAttention caught so that email alone stops until resume. A pause given before it is seen there (the
 * workflow's cancellation scope would cancel the activity before it starts), as before each applyBatch.
 *
 * One `step()` runs one activity attempt. The workflow's code after an activity runs only when the next step
 * starts (the generator is resumed lazily), so a pause given between two steps is seen by the check before the
 * next applyBatch, as a signal delivered with the activity's result would be. An attempt can:
 *  - succeed (the workflow hears the result and moves on);
 *  - succeed with its answer lost (Temporal retries the same activity: the position stays);
 *  - fail (a Graph fault injected for the attempt; the position stays, as Temporal retries);
 *  - fail non-retryably (needs-attention), which the workflow's own catch handles.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MAILBOX_NEEDS_ATTENTION, TYPE_NEEDS_ATTENTION, type CycleSummary, type RecordType } from '../../src/domain/status';
import type { FaultSpec } from '../../src/emulator';
import type { MailboxActivities, MailboxConfig, TypeStep } from '../../src/workflows/activities-contract';
import { MAILBOXES, type Mailbox, type ModelEnv } from './environment';

interface Call {
  kind: 'call';
  name: string;
  run: (a: MailboxActivities) => Promise<unknown>;
}
/** The workflow waits for an operator (paused, needs attention): nothing runs. */
interface Wait {
  kind: 'wait';
  reason: string;
}
type Yielded = Call | Wait;

/** What the workflow carries across cycles (CarriedState in mailbox.ts, minus what only the schedule needs). */
export interface WorkflowState {
  paused: boolean;
  needsAttentionReason: string | null;
  workRemaining: boolean;
  lastCycle: CycleSummary | null;
  cyclesCompleted: number;
  /** Email stopped on its own (a TypeNeedsAttention from fileMail) until resume, as mailbox.ts typeAttention.email. */
  emailAttention?: string;
}

function* call<T>(name: string, run: (a: MailboxActivities) => Promise<T>): Generator<Yielded, T, unknown> {
  return (yield { kind: 'call', name, run }) as T;
}

/** needsAttentionMessage in mailbox.ts: the activity failure Temporal does not retry (of the mailbox, or of one area). */
function needsAttentionMessage(err: unknown, type: string = MAILBOX_NEEDS_ATTENTION): string | undefined {
  return err instanceof ApplicationFailure && err.type === type ? err.message : undefined;
}

/** runCycle in mailbox.ts, with the email step of runCancellableCycle after the record types. */
function* cycleSteps(mailboxId: string, recordTypes: RecordType[], batchSize: number, s: WorkflowState, stopRequested: () => boolean, email: boolean): Generator<Yielded, CycleSummary, unknown> {
  const { cycleId } = yield* call('startCycle', (a) => a.startCycle(mailboxId));
  s.workRemaining = false;
  try {
    for (const recordType of recordTypes) {
      const step: TypeStep = { mailboxId, cycleId, recordType };
      yield* call(`pullExchange ${recordType}`, (a) => a.pullExchange(step));
      yield* call(`pullCrm ${recordType}`, (a) => a.pullCrm(step));
      yield* call(`plan ${recordType}`, (a) => a.plan(step));
      for (;;) {
        if (stopRequested()) return yield* call('finishCycle interrupted', (a) => a.finishCycle({ mailboxId, cycleId, outcome: 'interrupted', detail: 'paused' }));
        const r = yield* call(`applyBatch ${recordType} limit ${batchSize}`, (a) => a.applyBatch({ ...step, limit: batchSize }));
        if (r.workRemaining) s.workRemaining = true;
        if (r.remaining === 0) break;
      }
      const committed = yield* call(`commitType ${recordType}`, (a) => a.commitType(step));
      if (committed?.workRemaining) s.workRemaining = true;
    }
    if (email) {
      if (stopRequested()) return yield* call('finishCycle interrupted', (a) => a.finishCycle({ mailboxId, cycleId, outcome: 'interrupted', detail: 'paused' }));
      try {
        const r = yield* call('fileMail', (a) => a.fileMail({ mailboxId, cycleId, limit: batchSize }));
        if (r.workRemaining) s.workRemaining = true;
      } catch (err) {
        const reason = needsAttentionMessage(err, TYPE_NEEDS_ATTENTION);
        if (reason === undefined) throw err;
        s.emailAttention = reason;
      }
    }
    return yield* call('finishCycle completed', (a) => a.finishCycle({ mailboxId, cycleId, outcome: 'completed' }));
  } catch (err) {
    const reason = needsAttentionMessage(err);
    if (reason === undefined) throw err;
    s.needsAttentionReason = reason;
    return yield* call('finishCycle failed', (a) => a.finishCycle({ mailboxId, cycleId, outcome: 'failed', detail: reason }));
  }
}

/** mailboxWorkflow's loop: one cycle per run (continue-as-new), a paused or failing mailbox waits for the operator. */
function* workflowSteps(mailboxId: string, s: WorkflowState): Generator<Yielded, never, unknown> {
  for (;;) {
    while (s.paused || s.needsAttentionReason) yield { kind: 'wait', reason: s.paused ? 'paused' : `needs attention: ${s.needsAttentionReason}` };
    // The step that starts a cycle stands for the schedule coming due (or sync-now).
    const current: MailboxConfig = yield* call('loadMailbox', (a) => a.loadMailbox(mailboxId));
    if (!current.exists) throw new Error(`mailbox ${mailboxId} is not enrolled`);
    const email = !!current.email && !s.emailAttention;
    s.lastCycle = yield* cycleSteps(mailboxId, current.recordTypes, current.batchSize, s, () => s.paused, email);
    if (s.lastCycle.outcome === 'completed') s.cyclesCompleted++;
  }
}

export type StepMode = { kind: 'normal' } | { kind: 'lost-answer' } | { kind: 'fault'; faults: FaultSpec[] };

export interface StepReport {
  activity: string;
  outcome: 'ok' | 'answer lost' | 'failed' | 'waiting';
  result?: unknown;
  error?: string;
}

type Answer = { value: unknown } | { error: unknown };

export class MailboxDriver {
  readonly state: WorkflowState = { paused: false, needsAttentionReason: null, workRemaining: false, lastCycle: null, cyclesCompleted: 0 };
  readonly upn: string;
  private readonly steps: Generator<Yielded, never, unknown>;
  private current: Yielded | undefined;
  /** The answer of the last attempt, not yet seen by the workflow's code. */
  private heard: Answer | undefined;
  /** Attempts of the current activity that failed in a row (a stuck activity is a finding, not a hang). */
  failuresInRow = 0;
  lastError: string | undefined;
  /** The cycle under way took over an interrupted one (its pulls and plan were made before the interruption). */
  resumedCycle = false;
  /** Called after each activity attempt, whatever its outcome (the model observes what the attempt did). */
  onAttempt?: (activity: string) => Promise<void>;

  constructor(private readonly env: ModelEnv, readonly mailbox: Mailbox) {
    this.upn = MAILBOXES[mailbox];
    this.steps = workflowSteps(this.upn, this.state);
  }

  /** What the workflow runs next (resuming its code with the last answer first). */
  next(): Yielded {
    // A wait is looked at again each time: the operator may have resumed meanwhile.
    if (this.current === undefined || this.current.kind === 'wait') this.current = this.steps.next().value;
    else if (this.heard) {
      const h = this.heard;
      this.heard = undefined;
      this.current = ('error' in h ? this.steps.throw(h.error) : this.steps.next(h.value)).value;
    }
    return this.current;
  }

  /** Between two cycles: the next step would start one. */
  get idle(): boolean {
    const n = this.next();
    return n.kind === 'wait' || n.name === 'loadMailbox';
  }

  pause(): void {
    this.state.paused = true;
  }

  resume(): void {
    this.state.paused = false;
    this.state.needsAttentionReason = null;
    delete this.state.emailAttention;
  }

  async step(mode: StepMode = { kind: 'normal' }): Promise<StepReport> {
    const n = this.next();
    if (n.kind === 'wait') return { activity: 'wait', outcome: 'waiting', error: n.reason };
    if (mode.kind === 'fault') for (const f of mode.faults) this.env.emulator.admin.injectFault(this.upn, f);
    try {
      const value = await n.run(this.env.acts);
      this.failuresInRow = 0;
      if (mode.kind === 'lost-answer') return { activity: n.name, outcome: 'answer lost', result: value };
      this.heard = { value };
      if (n.name === 'startCycle') this.resumedCycle = (value as { resumed: boolean }).resumed;
      return { activity: n.name, outcome: 'ok', result: value };
    } catch (err) {
      this.failuresInRow++;
      this.lastError = err instanceof Error ? err.message : String(err);
      // Temporal does not retry these: the workflow's catch (needs-attention) decides.
      if (err instanceof ApplicationFailure && (err.nonRetryable || err.type === MAILBOX_NEEDS_ATTENTION || err.type === TYPE_NEEDS_ATTENTION)) this.heard = { error: err };
      return { activity: n.name, outcome: 'failed', error: this.lastError };
    } finally {
      if (mode.kind === 'fault') {
        this.env.emulator.admin.clearFaults(this.upn);
        this.env.forgetThrottling();
      }
      await this.onAttempt?.(n.name);
    }
  }

  /** Runs normal steps until the next activity is `prefix` (not run): a story's way to stop at a point of the cycle. */
  async runUntil(prefix: string, maxSteps = 60): Promise<void> {
    for (let i = 0; i < maxSteps; i++) {
      const n = this.next();
      if (n.kind === 'wait') throw new StuckError(`${this.mailbox} waits (${n.reason}) before reaching ${prefix}`);
      if (n.name.startsWith(prefix)) return;
      const r = await this.step();
      if (r.outcome === 'failed') throw new StuckError(`${this.mailbox}: ${r.activity} failed before reaching ${prefix}: ${r.error}`);
    }
    throw new StuckError(`${this.mailbox} did not reach ${prefix} within ${maxSteps} steps`);
  }

  /**
   * Runs normal steps until the cycle under way (or, when idle, the next one) has finished. Returns the cycle's
   * summary and whether the workflow would start the next cycle at once.
   */
  async finishCycle(maxFailures = 5): Promise<{ summary: CycleSummary; workRemaining: boolean; resumed: boolean }> {
    let started = false;
    for (;;) {
      const n = this.next();
      if (n.kind === 'wait') throw new StuckError(`${this.mailbox} waits: ${n.reason}`);
      if (n.name === 'loadMailbox' && started) return { summary: this.state.lastCycle!, workRemaining: this.state.workRemaining, resumed: this.resumedCycle };
      started = true;
      const r = await this.step();
      if (r.outcome === 'failed' && this.failuresInRow >= maxFailures) throw new StuckError(`${this.mailbox}: ${r.activity} failed ${this.failuresInRow} times in a row: ${r.error}`);
    }
  }
}

/** The workflow cannot go on without an operator, or an activity fails on every attempt. */
export class StuckError extends Error {}
