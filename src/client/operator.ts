/**
 * The typed operator API behind the CLI: enrol, inspect and steer mailboxes. User mistakes raise
 * OperatorError with one line saying what is wrong and what to do.
 */
import { Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Db } from '../db/connection';
import { SyncStore } from '../db/sync-store';
import { PolicyStore } from '../db/policy-store';
import { removeMailboxRows } from '../db/retention-store';
import { PostgresCrmStore } from '../activities/crm/postgres-crm';
import { DEFAULT_POLICY_NAME, parsePolicy, POLICY_NAME, type Policy } from '../domain/policy';
import type { MailboxStatus } from '../domain/status';
import {
  mailboxWorkflow,
  mailboxWorkflowId,
  pauseSignal,
  removeSignal,
  resumeSignal,
  statusQuery,
  syncNowSignal,
  syncNowUpdate,
} from '../workflows/mailbox';

export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

const UPN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function normaliseMailbox(mailbox: string): string {
  const m = mailbox.trim().toLowerCase();
  if (!UPN.test(m)) throw new OperatorError(`"${mailbox}" is not a mailbox address: give the user's principal name, e.g. anna@contoso.com`);
  return m;
}

/**
 * Policy names: lower-case letters, digits, '.', '_' and '-'. A name that refers to a policy is matched
 * case-insensitively; a new name (`strict`) must already be in that form, so no policy is created under a
 * name other than the one typed.
 */
export function normalisePolicyName(name: string, opts: { strict?: boolean } = {}): string {
  const n = name.trim().toLowerCase();
  const form = "lower-case letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)";
  if (!POLICY_NAME.test(n)) throw new OperatorError(`"${name}" is not a policy name: use ${form}`);
  if (opts.strict && n !== name) throw new OperatorError(`"${name}" is not a policy name: use ${form}, e.g. ${n}`);
  return n;
}

export interface PolicyListEntry {
  name: string;
  description: string;
  mailboxes: number;
  updatedAt: string;
  /** The stored policy no longer validates (e.g. after an upgrade): the problem. */
  invalid?: string;
}

export interface PolicyDetails {
  name: string;
  /** The policy as given (partial: missing fields take the defaults). */
  stored: Record<string, unknown>;
  /** Every setting, defaults filled in; null when the stored policy does not validate. */
  effective: Policy | null;
  invalid?: string;
  mailboxes: string[];
}

export const LIST_STATES = ['idle', 'syncing', 'paused', 'needs-attention', 'not-running'] as const;
export type ListState = (typeof LIST_STATES)[number];

export interface MailboxListEntry {
  mailbox: string;
  displayName: string | null;
  state: ListState;
  lastCycleEnd: string | null;
  nextCycleAt: string | null;
  /** Why it is paused or needs attention (with what to do), or why it is not running; null otherwise. */
  reason: string | null;
}

export class Operator {
  private readonly store: SyncStore;
  private readonly crm: PostgresCrmStore;
  readonly policies: PolicyStore;

  constructor(private readonly client: Client, private readonly db: Db, private readonly taskQueue: string) {
    this.store = new SyncStore(db);
    this.crm = new PostgresCrmStore(db);
    this.policies = new PolicyStore(db);
  }

  // ---- policies ----

  private validated(doc: unknown): Record<string, unknown> {
    const r = parsePolicy(doc);
    if (!r.ok) throw new OperatorError(`invalid policy: ${r.error}`);
    return doc as Record<string, unknown>;
  }

  private async existingPolicy(name: string): Promise<string> {
    const n = normalisePolicyName(name);
    if (!(await this.policies.get(n))) {
      const names = (await this.policies.list()).map((p) => p.name);
      throw new OperatorError(`unknown policy ${n}: the policies are ${names.join(', ')} (cxsync policy create ${n} --file <policy.json>)`);
    }
    return n;
  }

  async listPolicies(): Promise<PolicyListEntry[]> {
    return (await this.policies.list()).map((p) => {
      const parsed = parsePolicy(p.settings);
      return {
        name: p.name,
        description: parsed.ok ? parsed.value.description : '',
        mailboxes: p.mailboxes,
        updatedAt: p.updatedAt.toISOString(),
        ...(parsed.ok ? {} : { invalid: parsed.error }),
      };
    });
  }

  async showPolicy(name: string): Promise<PolicyDetails> {
    const n = await this.existingPolicy(name);
    const row = (await this.policies.get(n))!;
    const parsed = parsePolicy(row.settings);
    return {
      name: n,
      stored: row.settings,
      effective: parsed.ok ? parsed.value : null,
      ...(parsed.ok ? {} : { invalid: parsed.error }),
      mailboxes: await this.policies.mailboxesUsing(n),
    };
  }

  /** Stores a new policy; `doc` may be partial (missing fields take the defaults). */
  async createPolicy(name: string, doc: unknown): Promise<string> {
    const n = normalisePolicyName(name, { strict: true });
    const settings = this.validated(doc);
    if (!(await this.policies.create(n, settings))) throw new OperatorError(`policy ${n} exists already: change it with cxsync policy update ${n} --file <policy.json>`);
    return n;
  }

  /** Replaces a policy's settings (the document merges over the defaults, not over the previous version). */
  async updatePolicy(name: string, doc: unknown): Promise<{ name: string; mailboxes: string[] }> {
    const n = await this.existingPolicy(name);
    const settings = this.validated(doc);
    await this.policies.update(n, settings);
    return { name: n, mailboxes: await this.policies.mailboxesUsing(n) };
  }

  async deletePolicy(name: string): Promise<string> {
    const n = await this.existingPolicy(name);
    if (n === DEFAULT_POLICY_NAME) throw new OperatorError(`the default policy cannot be deleted: change it with cxsync policy update ${n} --file <policy.json>`);
    const r = await this.policies.delete(n);
    if (r.inUse.length) {
      const shown = r.inUse.slice(0, 20).join(', ') + (r.inUse.length > 20 ? ` and ${r.inUse.length - 20} more` : '');
      throw new OperatorError(`policy ${n} is used by ${r.inUse.length} mailbox${r.inUse.length > 1 ? 'es' : ''}: ${shown}; assign them another policy first (cxsync assign <mailbox> <policy>)`);
    }
    if (!r.deleted) throw new OperatorError(`unknown policy ${n}`);
    return n;
  }

  /** Gives a mailbox a policy; it applies from the mailbox's next cycle. */
  async assign(mailbox: string, policy: string): Promise<{ mailbox: string; policy: string; previous: string }> {
    const id = await this.known(mailbox);
    const p = await this.existingPolicy(policy);
    const previous = (await this.policies.policyNameOf(id)) ?? DEFAULT_POLICY_NAME;
    await this.policies.assign(id, p);
    return { mailbox: id, policy: p, previous };
  }

  private async known(mailbox: string): Promise<string> {
    const id = normaliseMailbox(mailbox);
    if (!(await this.store.getMailbox(id))) throw new OperatorError(`unknown mailbox ${id}: enroll it first (cxsync enroll ${id})`);
    return id;
  }

  private handle(id: string) {
    return this.client.workflow.getHandle(mailboxWorkflowId(id));
  }

  /** Enrols (or repairs: a workflow that completed or failed is started again) and asks for a first cycle. */
  async enroll(mailbox: string, opts: { policy?: string } = {}): Promise<{ mailbox: string; created: boolean; policy: string }> {
    const id = normaliseMailbox(mailbox);
    const policy = opts.policy === undefined ? undefined : await this.existingPolicy(opts.policy);
    const user = await this.crm.findUserByEmail(id);
    if (!user) throw new OperatorError(`no CRM user has the email ${id}: create the user in the CRM first`);
    const stored = policy === undefined || policy === DEFAULT_POLICY_NAME ? null : policy;
    const created = await this.store.insertMailbox({ id, displayName: user.displayName, crmUserId: user.id, policyName: stored });
    // Enrolling an enrolled mailbox with --policy assigns that policy.
    if (!created && policy !== undefined) await this.policies.assign(id, policy);
    await this.client.workflow.signalWithStart(mailboxWorkflow, {
      workflowId: mailboxWorkflowId(id),
      taskQueue: this.taskQueue,
      args: [{ mailboxId: id }],
      signal: syncNowSignal,
      signalArgs: [],
    });
    return { mailbox: id, created, policy: (await this.policies.policyNameOf(id)) ?? DEFAULT_POLICY_NAME };
  }

  /**
   * The workflow's status and, while it syncs, what it is doing now: the current cycle's progress from the
   * database (items pulled, operations planned and applied per type, rate and ETA) and, while an activity
   * retries, its attempt and last failure from Temporal's pending-activity information and the mailbox's failure
   * streak (sync.mailbox_health).
   */
  async status(mailbox: string): Promise<LiveStatus> {
    const id = await this.known(mailbox);
    let s: MailboxStatus;
    try {
      s = await this.handle(id).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OperatorError(`mailbox ${id} has no running workflow: run cxsync enroll ${id} to repair it`);
      throw err;
    }
    const live: LiveStatus = { ...s };
    const streak = await this.db.selectFrom('sync.mailbox_health').selectAll().where('mailbox_id', '=', id).executeTakeFirst();
    if (streak) {
      live.retrying = { since: streak.failing_since.toISOString(), attempts: streak.attempts, step: streak.activity, recordType: streak.record_type, lastError: streak.last_error, lastErrorAt: streak.last_error_at.toISOString() };
    }
    if (s.state === 'syncing' || streak) {
      const progress = await cycleProgress(this.db, id);
      if (progress) live.progress = progress;
      const pending = (await this.handle(id).describe()).raw.pendingActivities ?? [];
      const a = pending[0];
      if (a) {
        live.activity = {
          step: a.activityType?.name ?? 'unknown',
          attempt: a.attempt ?? 1,
          ...(a.lastStartedTime ? { startedAt: tsToIso(a.lastStartedTime) } : {}),
          ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message } : {}),
        };
      }
    }
    return live;
  }

  async list(): Promise<MailboxListEntry[]> {
    const rows = await this.store.listMailboxes();
    return Promise.all(
      rows.map(async (r): Promise<MailboxListEntry> => {
        try {
          const s = await this.handle(r.id).query(statusQuery);
          const reason = s.state === 'needs-attention' ? attentionText(s) : s.state === 'paused' ? (s.pausedReason ?? 'paused by an operator') : null;
          return { mailbox: r.id, displayName: r.display_name, state: s.state, lastCycleEnd: s.lastCycle?.end ?? null, nextCycleAt: s.nextCycleAt, reason };
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          return { mailbox: r.id, displayName: r.display_name, state: 'not-running', lastCycleEnd: null, nextCycleAt: null, reason: `no workflow: run cxsync enroll ${r.id} to repair it` };
        }
      }),
    );
  }

  private async signal(mailbox: string, send: (id: string) => Promise<void>): Promise<string> {
    const id = await this.known(mailbox);
    try {
      await send(id);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OperatorError(`mailbox ${id} has no running workflow: run cxsync enroll ${id} to repair it`);
      throw err;
    }
    return id;
  }

  /**
   * `cxsync retry`: the mailbox's failed operations (poison items marked failed after their attempts, items Graph
   * refused) are set back to pending and a cycle starts, which applies them, each still conditional on the
   * version its plan saw. Returns how many.
   */
  async retry(mailbox: string): Promise<{ mailbox: string; operations: number }> {
    const id = await this.known(mailbox);
    const operations = await this.store.retryFailed(id);
    if (operations > 0) await this.signal(id, (wid) => this.handle(wid).signal(syncNowSignal));
    return { mailbox: id, operations };
  }

  pause(mailbox: string, reason?: string): Promise<string> {
    return this.signal(mailbox, (id) => this.handle(id).signal(pauseSignal, reason));
  }

  /**
   * Resumes a paused or needs-attention mailbox. With `massDelete`, answers the emptied-side guard: 'confirm'
   * mirrors the held deletes, 'discard' unlinks the deleted items and keeps the other side's copies; the next
   * cycle starts at once. `held` lists record types whose deletes are still held after this call.
   */
  async resume(mailbox: string, opts: { massDelete?: 'confirm' | 'discard' } = {}): Promise<{ mailbox: string; decided: string[]; held: string[]; notPaused?: MailboxStatus['state'] }> {
    const id = await this.known(mailbox);
    if (!opts.massDelete) {
      // Resuming a mailbox that runs is a no-op; say so rather than "resumed".
      let state: MailboxStatus['state'];
      try {
        state = (await this.handle(id).query(statusQuery)).state;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new OperatorError(`mailbox ${id} has no running workflow: run cxsync enroll ${id} to repair it`);
        throw err;
      }
      if (state === 'idle' || state === 'syncing') return { mailbox: id, decided: [], held: [], notPaused: state };
    }
    let decided: string[] = [];
    if (opts.massDelete) {
      decided = await this.policies.decide(id, opts.massDelete);
      if (decided.length === 0) throw new OperatorError(`mailbox ${id} has no mass delete waiting for a decision; resume it without --${opts.massDelete}-mass-delete`);
    }
    await this.signal(id, async (wid) => {
      await this.handle(wid).signal(resumeSignal);
      if (decided.length) await this.handle(wid).signal(syncNowSignal);
    });
    const held = decided.length ? [] : Object.keys(await this.policies.heldDeletes(id)).sort();
    return { mailbox: id, decided, held };
  }

  /** Asks for a cycle now; with `wait`, returns the status once a cycle that began after the request has finished. */
  async syncNow(mailbox: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<MailboxStatus | undefined> {
    const id = await this.known(mailbox);
    let target: { waitForCycles: number };
    try {
      target = await this.handle(id).executeUpdate(syncNowUpdate, { args: [] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OperatorError(`mailbox ${id} has no running workflow: run cxsync enroll ${id} to repair it`);
      if (err instanceof WorkflowUpdateFailedError) throw new OperatorError(err.cause?.message ?? err.message);
      throw err;
    }
    if (!opts.wait) return undefined;
    const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
    for (;;) {
      const s = await this.handle(id).query(statusQuery);
      if (s.cyclesCompleted >= target.waitForCycles) return s;
      // A record type stopped on its own (a refused permission) does not stop cycles: only the mailbox's own reason does.
      if (s.needsAttentionReason) throw new OperatorError(`mailbox ${id} needs attention: ${s.needsAttentionReason}`);
      if (s.state === 'paused') throw new OperatorError(`mailbox ${id} was paused before the cycle finished${s.pausedReason ? ` (${s.pausedReason})` : ''}`);
      if (Date.now() > deadline) throw new OperatorError(`timed out waiting for a cycle of ${id}; it is ${s.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Stops syncing and deletes the mailbox's rows from every sync table (retention-store removeMailboxRows: all but
   * its meeting invitation decisions); items already synced stay on both sides.
   */
  async remove(mailbox: string): Promise<string> {
    const id = await this.known(mailbox);
    const h = this.handle(id);
    try {
      await h.signal(removeSignal);
      await Promise.race([h.result(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 30_000))]).catch(async (err) => {
        if ((err as Error).message === 'timeout') await h.terminate(`mailbox ${id} removed by an operator`);
      });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    await removeMailboxRows(this.store.db, id);
    return id;
  }

  async log(mailbox: string, limit: number) {
    const id = await this.known(mailbox);
    return this.store.readLog(id, limit);
  }

  async conflicts(mailbox: string, limit: number) {
    const id = await this.known(mailbox);
    return this.store.listConflicts(id, limit);
  }
}

/** What status shows beyond the workflow's own state (see Operator.status). */
export interface LiveStatus extends MailboxStatus {
  /** The running activity: which step, which attempt, since when, and its last failure while it retries. */
  activity?: { step: string; attempt: number; startedAt?: string; lastFailure?: string };
  /** The mailbox's current failure streak: every attempt since `since` failed (cleared by the next success). */
  retrying?: { since: string; attempts: number; step: string; recordType: string | null; lastError: string; lastErrorAt: string };
  progress?: CycleProgress;
}

export interface CycleProgress {
  cycleId: string;
  startedAt: string;
  /** Per record type: items read from each side, operations planned, applied (done), failed and still to apply. */
  types: Record<string, { pulled: { exchange: number; crm: number }; planned: number; done: number; failed: number; pending: number }>;
  done: number;
  planned: number;
  /** Operations applied per second since the cycle started, and the seconds left at that rate (null: unknown yet). */
  ratePerSecond: number | null;
  etaSeconds: number | null;
}

/** The running cycle's progress, or undefined when none runs. */
export async function cycleProgress(db: Db, mailboxId: string, now = new Date()): Promise<CycleProgress | undefined> {
  const cycle = await db.selectFrom('sync.cycle').select(['id', 'started_at', 'summary']).where('mailbox_id', '=', mailboxId).where('status', '=', 'running').executeTakeFirst();
  if (!cycle) return undefined;
  const types: CycleProgress['types'] = {};
  const t = (rt: string) => (types[rt] ??= { pulled: { exchange: 0, crm: 0 }, planned: 0, done: 0, failed: 0, pending: 0 });
  for (const [k, v] of Object.entries((cycle.summary ?? {}) as Record<string, unknown>)) {
    const [tag, rt, side] = k.split(':');
    if (tag === 'pulled' && (side === 'exchange' || side === 'crm')) t(rt).pulled[side] = Number(v);
  }
  const ops = await db
    .selectFrom('sync.operation')
    .select(['record_type', 'status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('cycle_id', '=', cycle.id)
    .where('side', 'in', ['exchange', 'crm'])
    .groupBy(['record_type', 'status'])
    .execute();
  for (const o of ops) {
    const x = t(o.record_type);
    const n = Number(o.n);
    x.planned += n;
    if (o.status === 'done') x.done += n;
    else if (o.status === 'failed') x.failed += n;
    else if (o.status === 'pending') x.pending += n;
  }
  const done = Object.values(types).reduce((a, x) => a + x.done, 0);
  const planned = Object.values(types).reduce((a, x) => a + x.planned, 0);
  const pending = Object.values(types).reduce((a, x) => a + x.pending, 0);
  const seconds = (now.getTime() - cycle.started_at.getTime()) / 1000;
  const ratePerSecond = done > 0 && seconds > 0 ? done / seconds : null;
  return { cycleId: String(cycle.id), startedAt: cycle.started_at.toISOString(), types, done, planned, ratePerSecond, etaSeconds: ratePerSecond ? Math.round(pending / ratePerSecond) : null };
}

/** The needs-attention reason of a mailbox, or of its stopped record types. */
export function attentionText(s: MailboxStatus): string | null {
  if (s.needsAttentionReason) return s.needsAttentionReason;
  const types = Object.entries(s.typesNeedingAttention ?? {});
  return types.length ? types.map(([t, r]) => `${t}: ${r}`).join('; ') : null;
}

function tsToIso(t: { seconds?: unknown; nanos?: number | null }): string {
  const seconds = Number(t.seconds ?? 0);
  return new Date(seconds * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}
