/**
 * Restore guard for the CRM change feed (src/activities/crm/feed-guard.ts reads what this creates).
 *
 * 1. Hard deletes. The feed reads rows by `change_txid`; a row removed with DELETE (not `deleted_at`) leaves
 *    nothing to read. `crm.tombstone` keeps (table, id, owner, the deleting transaction's xid8, its
 *    cxsync.writer) for crm.contacts, crm.events and crm.tasks, written by statement-level AFTER DELETE
 *    triggers (one insert per statement, so a mass delete stays cheap) and by BEFORE TRUNCATE triggers (a
 *    TRUNCATE bypasses row triggers but removes rows just the same). The tombstone carries the deleting
 *    transaction's id, so the feed's window `[watermark, pg_snapshot_xmin)` is commit-order safe for deletes
 *    exactly as it is for updates. The primary key (table_name, change_txid, id) is the feed's index.
 *
 * 2. Which counter a watermark belongs to. A watermark is an xid8 of this database's cluster. It stops
 *    meaning anything when the CRM data comes from elsewhere or the counter moves back. `crm.feed_origin()`
 *    describes "where the feed's numbers come from" as `key=value` pairs, stored next to each watermark in
 *    `sync.cursor.crm_watermark_origin` and compared key by key:
 *
 *    - `system=` pg_control_system().system_identifier: chosen by initdb, kept in pg_control. Unchanged by a
 *      restart, a minor upgrade, a physical standby's promotion (a replica is cloned from the primary and
 *      its counter continues from the same WAL) or a point-in-time restore of the cluster's own base backup
 *      (which also rewinds sync.cursor, so data and watermark still agree). Changes when the data is
 *      restored or replicated logically into another cluster, whose counter is unrelated to ours: it may be
 *      behind the watermark (changes hidden below it) or ahead of it (then the counter check below sees
 *      nothing wrong, yet the restored rows keep the old cluster's xids) — only this key catches the latter.
 *      It also changes with pg_upgrade, which runs against a freshly initdb'd cluster: a major upgrade costs
 *      one full CRM read per mailbox and type; nothing is duplicated.
 *    - `db=` the database's OID and `crm.<table>=` the OIDs of the feed tables and of crm.tombstone: a
 *      pg_dump restored into the *same* cluster keeps the system identifier, and pg_dump copies table data,
 *      so any id kept in a table (a random "incarnation" row) would come back from the dump unchanged and
 *      prove nothing. Object OIDs are not dumped: CREATE DATABASE and CREATE TABLE take fresh ones from the
 *      cluster-wide OID counter, so a restore into a new database, or `pg_restore --clean` of the crm tables
 *      into this one, changes them. They survive restarts, minor upgrades, VACUUM FULL/CLUSTER/TRUNCATE
 *      (those change relfilenode, not the OID) and pg_upgrade (which preserves pg_class OIDs, and database
 *      OIDs from PostgreSQL 15 on). A later migration that re-creates a feed table triggers one full read.
 *    - The counter itself: a watermark above pg_snapshot_xmax(pg_current_snapshot()) — the next xid to be
 *      assigned — cannot have been produced by this counter. That covers the same cluster rewound (pg_resetwal
 *      with a lower -x/-e, a cluster restored while the watermark was kept elsewhere). feed-guard checks it at
 *      read time; it needs no column.
 *
 *    Keys only one side knows are skipped, so a later migration may add a key without a resync.
 *
 *    Known residue, documented rather than guessed at: a data-only reload into the existing tables with
 *    triggers disabled (`pg_restore --data-only --disable-triggers`, superuser only) keeps OIDs and old
 *    change_txids and is not detected; with triggers enabled (the default) COPY re-stamps every row and the
 *    feed reads them all.
 *
 * 3. Watermarks saved before this migration get the current origin here, unless the data already looks foreign:
 *    a watermark ahead of the counter or rows stamped above it (then the origin stays null, which feed-guard
 *    treats as unverifiable: one full read).
 */
import { sql, type Kysely } from 'kysely';

const FEED_TABLES = ['contacts', 'events', 'tasks'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table crm.tombstone (
      table_name text not null,
      id uuid not null,
      owner_id uuid,
      change_txid xid8 not null default pg_current_xact_id(),
      deleted_at timestamptz not null default now(),
      -- cxsync.writer of the deleting transaction: the mailbox whose sync deleted the row, so it is not echoed.
      changed_by text,
      primary key (table_name, change_txid, id)
    )`.execute(db);

  // on conflict: a transaction that deletes, re-inserts and deletes the same id again has one tombstone.
  await sql`
    create function crm.record_tombstones() returns trigger language plpgsql as $$
    begin
      insert into crm.tombstone (table_name, id, owner_id, change_txid, changed_by)
      select tg_table_name, o.id, o.owner_id, pg_current_xact_id(), nullif(current_setting('cxsync.writer', true), '')
      from old_rows o
      on conflict do nothing;
      return null;
    end $$`.execute(db);
  await sql`
    create function crm.record_truncate_tombstones() returns trigger language plpgsql as $$
    begin
      execute format(
        'insert into crm.tombstone (table_name, id, owner_id, change_txid, changed_by)
         select %L, t.id, t.owner_id, pg_current_xact_id(), nullif(current_setting(''cxsync.writer'', true), '''')
         from %I.%I t on conflict do nothing',
        tg_table_name, tg_table_schema, tg_table_name);
      return null;
    end $$`.execute(db);
  for (const t of FEED_TABLES) {
    await sql`create trigger ${sql.id(`${t}_tombstone`)} after delete on ${sql.table(`crm.${t}`)}
      referencing old table as old_rows for each statement execute function crm.record_tombstones()`.execute(db);
    await sql`create trigger ${sql.id(`${t}_truncate_tombstone`)} before truncate on ${sql.table(`crm.${t}`)}
      for each statement execute function crm.record_truncate_tombstones()`.execute(db);
  }

  // plpgsql so a server that revoked pg_control_system() from this role still answers (without that key).
  await sql`
    create function crm.feed_origin() returns text language plpgsql stable as $$
    declare
      sysid text;
    begin
      begin
        select system_identifier::text into sysid from pg_control_system();
      exception when insufficient_privilege then
        sysid := null;
      end;
      return concat_ws(' ',
        'system=' || sysid,
        'db=' || (select d.oid::text from pg_database d where d.datname = current_database()),
        'crm.contacts=' || to_regclass('crm.contacts')::oid::text,
        'crm.events=' || to_regclass('crm.events')::oid::text,
        'crm.tasks=' || to_regclass('crm.tasks')::oid::text,
        'crm.tombstone=' || to_regclass('crm.tombstone')::oid::text);
    end $$`.execute(db);

  await sql`alter table sync.cursor add column crm_watermark_origin text`.execute(db);
  await sql`
    update sync.cursor set crm_watermark_origin = crm.feed_origin()
    where (crm_watermark is not null or pending_crm_watermark is not null)
      and coalesce(crm_watermark::xid8, '0'::xid8) <= pg_snapshot_xmax(pg_current_snapshot())
      and coalesce(pending_crm_watermark::xid8, '0'::xid8) <= pg_snapshot_xmax(pg_current_snapshot())
      and not exists (select 1 from crm.contacts where change_txid > pg_snapshot_xmax(pg_current_snapshot()))
      and not exists (select 1 from crm.events where change_txid > pg_snapshot_xmax(pg_current_snapshot()))
      and not exists (select 1 from crm.tasks where change_txid > pg_snapshot_xmax(pg_current_snapshot()))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table sync.cursor drop column if exists crm_watermark_origin`.execute(db);
  await sql`drop function if exists crm.feed_origin()`.execute(db);
  for (const t of FEED_TABLES) {
    await sql`drop trigger if exists ${sql.id(`${t}_truncate_tombstone`)} on ${sql.table(`crm.${t}`)}`.execute(db);
    await sql`drop trigger if exists ${sql.id(`${t}_tombstone`)} on ${sql.table(`crm.${t}`)}`.execute(db);
  }
  await sql`drop function if exists crm.record_truncate_tombstones()`.execute(db);
  await sql`drop function if exists crm.record_tombstones()`.execute(db);
  await sql`drop table if exists crm.tombstone`.execute(db);
}
