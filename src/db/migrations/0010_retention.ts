/**
 * Retention (issue 9): the indexes the per-cycle and operator queries need once sync.log, sync.conflict,
 * sync.operation and sync.cycle hold weeks of history for every mailbox, and foreign keys so `cxsync remove`
 * leaves nothing behind. src/db/retention-store.ts prunes by age and erases (remove, forget); the indexes are
 * proven used by test/integration/retention-indexes.test.ts on 200,000 log rows across 100 mailboxes.
 *
 * - `log_by_cycle`, `conflict_by_cycle`: finishCycle counts a cycle's log lines and conflicts on every cycle of
 *   every mailbox (sync-store logCounts, conflictCounts); both were sequential scans. conflict_by_cycle also
 *   serves the cascade when a pruned cycle is deleted.
 * - `conflict_by_mailbox`: `cxsync conflicts` (newest first); `cxsync log` already has log_by_mailbox.
 * - `cycle_by_mailbox`: a mailbox's cycles (sync-store lastCycles; `cxsync remove`, and the cascade of a removed
 *   mailbox, which scanned sync.cycle).
 * - `operation_by_plan`: siblingGivenBack looks up, for every CRM write, the other half of the same plan by
 *   (mailbox, planned_cycle, crm_id) among all the mailbox's operations; it was a sequential scan. It is also
 *   how a removed mailbox's operations are found (no other index leads with mailbox_id).
 * - `log_at`, `cycle_done_ended`: pruning finds what is older than the retention period without a scan.
 *
 * sync.log and sync.mailbox_lease had no foreign key to sync.mailbox, so they outlived `cxsync remove`; an activity
 * still running when its workflow was terminated could also write a line after the removal. They get one (on
 * delete cascade) like every other per-mailbox table, after the rows of mailboxes already removed are deleted.
 * sync.event_invitation keeps having none, on purpose (0009: a mailbox enrolled again keeps its decisions).
 *
 * Plain CREATE INDEX (the migration runs in a transaction) blocks writes to each table while its index builds:
 * seconds for millions of rows; docs/OPERATIONS.md says to upgrade at a quiet time when sync.log is very large.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index log_by_cycle on sync.log (cycle_id)`.execute(db);
  await sql`create index log_at on sync.log (at)`.execute(db);
  await sql`create index conflict_by_cycle on sync.conflict (cycle_id)`.execute(db);
  await sql`create index conflict_by_mailbox on sync.conflict (mailbox_id, id)`.execute(db);
  await sql`create index cycle_by_mailbox on sync.cycle (mailbox_id, id)`.execute(db);
  await sql`create index cycle_done_ended on sync.cycle (ended_at) where status = 'done'`.execute(db);
  await sql`create index operation_by_plan on sync.operation (mailbox_id, planned_cycle, crm_id)`.execute(db);

  await sql`delete from sync.log l where not exists (select 1 from sync.mailbox m where m.id = l.mailbox_id)`.execute(db);
  await sql`delete from sync.mailbox_lease l where not exists (select 1 from sync.mailbox m where m.id = l.mailbox_id)`.execute(db);
  await sql`alter table sync.log add constraint log_mailbox_fk foreign key (mailbox_id) references sync.mailbox(id) on delete cascade`.execute(db);
  await sql`alter table sync.mailbox_lease add constraint mailbox_lease_mailbox_fk foreign key (mailbox_id) references sync.mailbox(id) on delete cascade`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sync.mailbox_lease drop constraint if exists mailbox_lease_mailbox_fk`.execute(db);
  await sql`alter table sync.log drop constraint if exists log_mailbox_fk`.execute(db);
  for (const i of ['operation_by_plan', 'cycle_done_ended', 'cycle_by_mailbox', 'conflict_by_mailbox', 'conflict_by_cycle', 'log_at', 'log_by_cycle']) {
    await sql`drop index if exists ${sql.table(`sync.${i}`)}`.execute(db);
  }
}
