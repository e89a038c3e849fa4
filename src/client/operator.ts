/**
 * The typed operator API behind the CLI: enrol, inspect and steer mailboxes. User mistakes raise
 * OperatorError with one line saying what is wrong and what to do.
 */
import { Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Db } from '../db/connection';
import { SyncStore } from '../db/sync-store';
import { PostgresCrmStore } from '../activities/crm/postgres-crm';
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

export interface MailboxListEntry {
  mailbox: string;
  displayName: string | null;
  state: MailboxStatus['state'] | 'not-running';
  lastCycleEnd: string | null;
  nextCycleAt: string | null;
}

export class Operator {
  private readonly store: SyncStore;
  private readonly crm: PostgresCrmStore;

  constructor(private readonly client: Client, db: Db, private readonly taskQueue: string) {
    this.store = new SyncStore(db);
    this.crm = new PostgresCrmStore(db);
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
  async enroll(mailbox: string): Promise<{ mailbox: string; created: boolean }> {
    const id = normaliseMailbox(mailbox);
    const user = await this.crm.findUserByEmail(id);
    if (!user) throw new OperatorError(`no CRM user has the email ${id}: create the user in the CRM first`);
    const created = await this.store.insertMailbox({ id, displayName: user.displayName, crmUserId: user.id, policyName: null });
    await this.client.workflow.signalWithStart(mailboxWorkflow, {
      workflowId: mailboxWorkflowId(id),
      taskQueue: this.taskQueue,
      args: [{ mailboxId: id }],
      signal: syncNowSignal,
      signalArgs: [],
    });
    return { mailbox: id, created };
  }

  async status(mailbox: string): Promise<MailboxStatus> {
    const id = await this.known(mailbox);
    try {
      return await this.handle(id).query(statusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new OperatorError(`mailbox ${id} has no running workflow: run cxsync enroll ${id} to repair it`);
      throw err;
    }
  }

  async list(): Promise<MailboxListEntry[]> {
    const rows = await this.store.listMailboxes();
    return Promise.all(
      rows.map(async (r): Promise<MailboxListEntry> => {
        try {
          const s = await this.handle(r.id).query(statusQuery);
          return { mailbox: r.id, displayName: r.display_name, state: s.state, lastCycleEnd: s.lastCycle?.end ?? null, nextCycleAt: s.nextCycleAt };
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          return { mailbox: r.id, displayName: r.display_name, state: 'not-running', lastCycleEnd: null, nextCycleAt: null };
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

  pause(mailbox: string, reason?: string): Promise<string> {
    return this.signal(mailbox, (id) => this.handle(id).signal(pauseSignal, reason));
  }

  resume(mailbox: string): Promise<string> {
    return this.signal(mailbox, (id) => this.handle(id).signal(resumeSignal));
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
      if (s.state === 'needs-attention') throw new OperatorError(`mailbox ${id} needs attention: ${s.needsAttentionReason}`);
      if (s.state === 'paused') throw new OperatorError(`mailbox ${id} was paused before the cycle finished${s.pausedReason ? ` (${s.pausedReason})` : ''}`);
      if (Date.now() > deadline) throw new OperatorError(`timed out waiting for a cycle of ${id}; it is ${s.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Stops syncing and forgets the mailbox's sync state; items already synced stay on both sides. */
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
    await this.store.deleteMailbox(id);
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
