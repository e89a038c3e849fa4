/**
 * What makes a cycle safe under every interleaving (issue 8):
 * - `sync.mapping.base`: the last synced value of every synced field (the three-way merge's base), and
 *   `crm_version`: the CRM row version (crm.*.change_txid) the mapping last saw or wrote, so CRM writes are
 *   conditional like Exchange's If-Match;
 * - `sync.staged_change.planned_cycle`: the cycle whose plan consumed the row. Commit deletes only planned rows:
 *   a row staged after the plan (an Exchange removal found by apply) or given back for re-planning (a failed
 *   precondition) survives, whichever cycle applies the operation. `replans` bounds how often an item is
 *   given back before it is logged and skipped;
 * - `sync.operation.planned_cycle`: the cycle whose plan made the operation (its `cycle_id` moves when the batch
 *   size carries it over), so the two writes of one merge can be told apart from other plans';
 * - `sync.cursor.committed_cycle`: the cycle that committed the type, so a cycle resumed after a pause or a
 *   needs-attention does not read a type's feed again after it was committed (the read would be promoted
 *   without being planned);
 * - `sync.mailbox_lease`: one writer per mailbox. An attempt holds the lease while it runs and renews it as it
 *   heartbeats; a second attempt (a retry while a slow one still runs) waits, and takes it over only once it
 *   expired, bumping the fencing token so the stalled attempt stops at its next heartbeat;
 * - crm.contacts gains Outlook's 2nd and 3rd email slots (LinkPoint's alternate email addresses).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sync.mapping add column base jsonb, add column crm_version text`.execute(db);
  await sql`alter table sync.staged_change add column planned_cycle bigint, add column replans int not null default 0`.execute(db);
  await sql`alter table sync.cursor add column committed_cycle bigint`.execute(db);
  await sql`alter table sync.operation add column planned_cycle bigint`.execute(db);
  await sql`alter table crm.contacts add column email2 text, add column email3 text`.execute(db);
  await sql`
    create table sync.mailbox_lease (
      mailbox_id text primary key,
      token bigint not null,
      holder text not null,
      expires_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists sync.mailbox_lease`.execute(db);
  await sql`alter table crm.contacts drop column if exists email2, drop column if exists email3`.execute(db);
  await sql`alter table sync.operation drop column if exists planned_cycle`.execute(db);
  await sql`alter table sync.cursor drop column if exists committed_cycle`.execute(db);
  await sql`alter table sync.staged_change drop column if exists planned_cycle, drop column if exists replans`.execute(db);
  await sql`alter table sync.mapping drop column if exists base, drop column if exists crm_version`.execute(db);
}
