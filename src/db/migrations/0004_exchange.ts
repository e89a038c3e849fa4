/**
 * Exchange-side bookkeeping (issue 3):
 * - `sync.cursor.full_round_started_at`: set while a full delta round (the first one, or a resync after an
 *   expired token) is under way, possibly over several cycles;
 * - `sync.round_item`: the items such a round has seen, and the marked items it must not import (created by
 *   cxsync for a CRM record that no longer exists). When the round completes, mapped items it did not see are
 *   checked one by one and only those really gone are treated as deleted;
 * - an index to find a mailbox's operations still pending from an earlier cycle (carried over by the batch size).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sync.cursor add column full_round_started_at timestamptz`.execute(db);
  await sql`
    create table sync.round_item (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      exchange_id text not null,
      state text not null check (state in ('seen', 'orphan')),
      primary key (mailbox_id, record_type, exchange_id)
    )`.execute(db);
  await sql`create index operation_pending_by_mailbox on sync.operation (mailbox_id, record_type) where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists sync.operation_pending_by_mailbox`.execute(db);
  await sql`drop table if exists sync.round_item`.execute(db);
  await sql`alter table sync.cursor drop column if exists full_round_started_at`.execute(db);
}
