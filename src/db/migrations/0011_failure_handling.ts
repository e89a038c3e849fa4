import { sql, type Kysely } from 'kysely';

/**
 * No silent failure (issue 9):
 * - sync.operation.failures: how often an operation met an error that was about it (a CRM write that threw, a
 *   Graph 409/423, a 5xx for this item while others in its batch succeeded). At the limit it is marked failed,
 *   logged, and the cycle goes on: one poison item never stops a mailbox. `cxsync retry` sets it back to pending.
 * - sync.mailbox_health: the mailbox's current streak of failed activity attempts (first failure, last error,
 *   attempts), cleared by any activity that succeeds. `status` shows it while Temporal retries; once the streak
 *   is older than the transient budget the mailbox goes to needs-attention instead of retrying for ever.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sync.operation add column failures integer not null default 0`.execute(db);
  await sql`
    create table sync.mailbox_health (
      mailbox_id text primary key references sync.mailbox(id) on delete cascade,
      failing_since timestamptz not null,
      attempts integer not null,
      record_type text,
      activity text not null,
      last_error text not null,
      last_error_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table sync.mailbox_health`.execute(db);
  await sql`alter table sync.operation drop column failures`.execute(db);
}
