/**
 * No silent failure (issue 9): every activity failure of a mailbox either heals by itself or, once the mailbox
 * has failed every attempt for longer than the retry budget, becomes needs-attention with the last error and what
 * to do. sync.mailbox_health keeps the current streak (first failure, attempts, last error) so that `status`
 * tells the truth while Temporal retries; any activity of the mailbox that succeeds ends the streak.
 */
import { ApplicationFailure, ApplicationFailureCategory, CancelledFailure } from '@temporalio/common';
import { sql } from 'kysely';
import type { Db } from '../db/connection';
import type { MailboxHealthTable } from '../db/schema';
import { MAILBOX_NEEDS_ATTENTION, TYPE_NEEDS_ATTENTION } from '../domain/status';

/** A mailbox's current failure streak (sync.mailbox_health, migration 0011). */
export type HealthRow = Omit<MailboxHealthTable, 'mailbox_id'>;

/**
 * One line about an error for operators and the history, with no record content: cxsync's own failures (which
 * name ids and Graph codes) as they are, a PostgreSQL error by SQLSTATE and constraint, anything else by class.
 */
export function errorSummary(err: unknown): string {
  if (err instanceof ApplicationFailure) return `${err.type ?? 'Error'}: ${err.message}`;
  const e = (err ?? {}) as { name?: string; code?: unknown; constraint?: unknown; routine?: unknown; severity?: unknown };
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && e.severity) {
    return `PostgreSQL error ${e.code}${typeof e.constraint === 'string' ? ` (constraint ${e.constraint})` : ''}`;
  }
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return `${e.name ?? 'Error'} ${e.code}`; // ECONNREFUSED, ETIMEDOUT…
  return e.name ?? 'Error';
}

const minutes = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

export class MailboxHealth {
  constructor(private readonly db: Db, private readonly budgetSeconds: number) {}

  /** An activity of the mailbox succeeded: the streak is over. */
  async succeeded(mailboxId: string): Promise<void> {
    await sql`delete from sync.mailbox_health where mailbox_id = ${mailboxId}`.execute(this.db);
  }

  /**
   * What to throw for an activity attempt that failed with `err`. Needs-attention failures, cancellations and
   * throttling pass through (throttling is pacing, not a failure). Anything else extends the streak, and turns
   * into needs-attention once the streak is older than the budget.
   */
  async failed(mailboxId: string, recordType: string | null, activity: string, err: unknown): Promise<unknown> {
    if (err instanceof CancelledFailure) return err;
    if (err instanceof ApplicationFailure && (err.nonRetryable || err.type === MAILBOX_NEEDS_ATTENTION || err.type === TYPE_NEEDS_ATTENTION)) return err;
    if (err instanceof ApplicationFailure && err.category === ApplicationFailureCategory.BENIGN) return err;
    const summary = errorSummary(err);
    let row: HealthRow | undefined;
    try {
      row = (
        await sql<HealthRow>`
          insert into sync.mailbox_health (mailbox_id, failing_since, attempts, record_type, activity, last_error, last_error_at)
          values (${mailboxId}, now(), 1, ${recordType}, ${activity}, ${summary}, now())
          on conflict (mailbox_id) do update set attempts = sync.mailbox_health.attempts + 1, record_type = excluded.record_type,
            activity = excluded.activity, last_error = excluded.last_error, last_error_at = excluded.last_error_at
          returning failing_since, attempts, record_type, activity, last_error, last_error_at`.execute(this.db)
      ).rows[0];
    } catch {
      // The database itself is failing (or the mailbox was removed): Temporal retries, the next attempt records it.
      return err;
    }
    const failingMs = row.last_error_at.getTime() - row.failing_since.getTime();
    if (failingMs < this.budgetSeconds * 1000) return err;
    return ApplicationFailure.create({
      type: MAILBOX_NEEDS_ATTENTION,
      nonRetryable: true,
      message:
        `every attempt failed for ${minutes(failingMs)} (since ${row.failing_since.toISOString()}, ${row.attempts} attempts, ` +
        `retry budget ${minutes(this.budgetSeconds * 1000)}); last error in ${activity}${recordType ? ` (${recordType})` : ''}: ${summary}. ` +
        'Check Microsoft 365 service health, the network and the database',
    });
  }

  async get(mailboxId: string): Promise<HealthRow | undefined> {
    const r = await sql<HealthRow>`select failing_since, attempts, record_type, activity, last_error, last_error_at from sync.mailbox_health where mailbox_id = ${mailboxId}`.execute(this.db);
    return r.rows[0];
  }
}
