/**
 * Guards around the CRM change feed (migration 0007_crm_restore_guard): whether a saved watermark still counts
 * in this database's transaction counter, and the hard deletes the feed's row scan cannot see.
 *
 * Intended use by the feeds and pullCrm:
 * - before reading after a saved watermark: `checkWatermark`; when not ok, log `reason`, read with
 *   `after = null` (a full read, duplicate-free through the mappings) and drop any pending watermark;
 * - with every watermark written (pending or promoted): `crm_watermark_origin = await currentOrigin(db)`;
 * - next to each incremental read: `tombstonesSince(db, table, { after, upper, mailboxId })` with the same
 *   bounds as the row query, staged as removals of the ids the mailbox has mapped (or staged).
 * A full read must not bound rows by the upper xid: rows restored from another cluster keep that cluster's
 * change_txid, which may lie above this counter, and `change_txid < upper` would leave them out of the very
 * read meant to recover from the restore.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../db/schema';

export type FeedTable = 'contacts' | 'events' | 'tasks';

const FEED_TABLES: readonly FeedTable[] = ['contacts', 'events', 'tasks'];

/** sync.cursor.record_type of the mailboxes reading each table. */
const RECORD_TYPE: Record<FeedTable, string> = { contacts: 'contact', events: 'event', tasks: 'task' };

const TYPE_LABEL: Record<string, string> = { contact: 'contacts', event: 'events', task: 'tasks' };

export type WatermarkCheck = { ok: true } | { ok: false; reason: string };

export interface Tombstone {
  id: string;
  ownerId: string | null;
  /** The deleting transaction (xid8 as text), to order against live rows read in the same window. */
  changeTxid: string;
}

/** The value to store in sync.cursor.crm_watermark_origin with every watermark saved from now on. */
export async function currentOrigin(db: Kysely<Database>): Promise<string> {
  const r = await sql<{ origin: string }>`select crm.feed_origin() as origin`.execute(db);
  return r.rows[0].origin;
}

/**
 * Whether `watermark` (a saved crm_watermark) may be read after. Not ok when it was saved under another
 * origin (another cluster, a re-created database or feed table: a restore), when no origin was recorded
 * with it (unverifiable), or when it lies above the next transaction id this cluster will hand out (the counter
 * was rewound): every later change would sit below it and never be read. `recordType` names the type in
 * the reason, which is written to the sync log as it is.
 */
export async function checkWatermark(
  db: Kysely<Database>,
  { watermark, origin, recordType }: { watermark: string | null; origin: string | null; recordType?: string },
): Promise<WatermarkCheck> {
  if (watermark === null) return { ok: true };
  const what = recordType ? (TYPE_LABEL[recordType] ?? recordType) : 'this record type';
  const resync = `a full resync of ${what} starts; nothing is duplicated`;
  if (!/^\d{1,20}$/.test(watermark)) {
    return { ok: false, reason: `the saved CRM watermark ${JSON.stringify(watermark)} is not a transaction id: ${resync}` };
  }
  const now = (
    await sql<{ origin: string; next: string; ahead: boolean }>`
      select crm.feed_origin() as origin, pg_snapshot_xmax(pg_current_snapshot())::text as next,
        ${watermark}::xid8 > pg_snapshot_xmax(pg_current_snapshot()) as ahead`.execute(db)
  ).rows[0];
  if (origin === null) {
    return {
      ok: false,
      reason: `the saved CRM watermark ${watermark} has no recorded origin, so a restored or replaced CRM database cannot be ruled out: ${resync}`,
    };
  }
  const differences = originDifferences(origin, now.origin);
  if (differences.length > 0) {
    return { ok: false, reason: `the CRM database was restored or replaced (${differences.join('; ')}): ${resync}` };
  }
  if (now.ahead) {
    return {
      ok: false,
      reason:
        `the CRM database was restored or replaced (its transaction counter is at ${now.next}, behind the saved ` +
        `watermark ${watermark}: the counter was rewound, e.g. by a restore or pg_resetwal): ${resync}`,
    };
  }
  return { ok: true };
}

/**
 * What differs between a saved and the current origin, as phrases for the sync log; empty when they agree.
 * Only the outermost change is named (another cluster, else a re-created database, else each re-created
 * table): a new database re-creates every table too, and listing those would bury the cause. Keys only one
 * side has are skipped, so a migration that adds a key to crm.feed_origin() does not force a resync.
 */
export function originDifferences(saved: string, current: string): string[] {
  const a = parseOrigin(saved);
  const b = parseOrigin(current);
  if (!a) return [`the saved origin ${JSON.stringify(saved)} is unreadable`];
  if (!b) return [`the current origin ${JSON.stringify(current)} is unreadable`];
  const changed = (key: string) => {
    const was = a.get(key);
    const is = b.get(key);
    return was !== undefined && is !== undefined && was !== is ? { was, is } : null;
  };
  const system = changed('system');
  if (system) return [`another PostgreSQL cluster: system identifier ${system.is}, the watermark was saved under ${system.was}`];
  const database = changed('db');
  if (database) return [`the database was re-created: oid ${database.is}, was ${database.was}`];
  const out: string[] = [];
  for (const key of a.keys()) {
    const c = key.startsWith('crm.') ? changed(key) : null;
    if (c) out.push(`table ${key} was re-created: oid ${c.is}, was ${c.was}`);
  }
  return out;
}

function parseOrigin(s: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const part of s.trim().split(/\s+/)) {
    const m = /^([a-z_][a-z0-9_.]*)=(\S+)$/.exec(part);
    if (!m) return null;
    out.set(m[1], m[2]);
  }
  return out.size > 0 ? out : null;
}

function assertFeedTable(table: string): asserts table is FeedTable {
  if (!(FEED_TABLES as readonly string[]).includes(table)) throw new Error(`not a CRM feed table: ${table}`);
}

/**
 * Rows of `table` hard-deleted in the feed's window (`after` <= change_txid < `upper`, the same bounds as the
 * row query; `after` null: from the start). One entry per id, its last deletion in the window; left out:
 * - deletions made by this mailbox's own sync (cxsync.writer = `mailboxId`), which must not echo back;
 * - ids that exist again now (re-inserted under the same id, or reloaded after a TRUNCATE): a row that is
 *   there is not deleted, and its re-insert stamped it, so the row query reports it.
 * Not filtered by owner or mapping: a tombstone matters to a mailbox only for an id it has mapped (or staged),
 * which the caller knows; `ownerId` is there for scope decisions.
 */
export async function tombstonesSince(
  db: Kysely<Database>,
  table: FeedTable,
  { after, upper, mailboxId }: { after: string | null; upper: string; mailboxId: string },
): Promise<Tombstone[]> {
  assertFeedTable(table);
  const rows = await sql<{ id: string; owner_id: string | null; change_txid: string }>`
    select last.id::text as id, last.owner_id::text as owner_id, last.change_txid::text as change_txid
    from (
      select distinct on (t.id) t.id, t.owner_id, t.change_txid, t.changed_by
      from crm.tombstone t
      where t.table_name = ${table} and t.change_txid >= ${after ?? '0'}::xid8 and t.change_txid < ${upper}::xid8
      order by t.id, t.change_txid desc
    ) last
    where last.changed_by is distinct from ${mailboxId}
      and not exists (select 1 from ${sql.table(`crm.${table}`)} r where r.id = last.id)
    order by last.change_txid, last.id`.execute(db);
  return rows.rows.map((r) => ({ id: r.id, ownerId: r.owner_id, changeTxid: r.change_txid }));
}

/** A record the feed reports as deleted although its row query cannot see it: the row itself is gone. */
export interface GoneRecord {
  id: string;
  /** The deleting transaction when a tombstone recorded it; absent when only the row's absence tells. */
  version?: string;
}

/**
 * The removals a mailbox's feed read must add to its row query, for ids the mailbox has mapped or staged (a
 * deleted row it never synced is nothing to it):
 * - an incremental read (`after` set): the tombstones in the same window [`after`, `upper`);
 * - a full read (`after` null): every mapped or staged id whose row does not exist. A full read is the
 *   recovery from a restore, and a restore brings its own crm.tombstone (or none): a row deleted in the live
 *   database after the dump was taken has no tombstone in the restored one, only its absence tells.
 */
export async function goneForMailbox(
  db: Kysely<Database>,
  table: FeedTable,
  { after, upper, mailboxId }: { after: string | null; upper: string; mailboxId: string },
): Promise<GoneRecord[]> {
  assertFeedTable(table);
  const recordType = RECORD_TYPE[table];
  const known = sql`(
    select m.crm_id as id from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = ${recordType}
    union
    select s.external_id from sync.staged_change s
    where s.mailbox_id = ${mailboxId} and s.record_type = ${recordType} and s.side = 'crm' and not s.removed)`;
  if (after === null) {
    const r = await sql<{ id: string }>`
      select k.id from ${known} k
      where not exists (select 1 from ${sql.table(`crm.${table}`)} r where r.id::text = k.id)
      order by k.id`.execute(db);
    return r.rows.map((x) => ({ id: x.id }));
  }
  const tombstones = await tombstonesSince(db, table, { after, upper, mailboxId });
  if (tombstones.length === 0) return [];
  const ids = tombstones.map((t) => t.id);
  const r = await sql<{ id: string }>`select k.id from ${known} k where k.id = any(${ids}::text[])`.execute(db);
  const mine = new Set(r.rows.map((x) => x.id));
  return tombstones.filter((t) => mine.has(t.id)).map((t) => ({ id: t.id, version: t.changeTxid }));
}

/**
 * Deletes tombstones no mailbox can still need, per table; for a retention job (daily is plenty). Removed:
 * - those below every saved watermark (crm_watermark and pending_crm_watermark of the table's record type;
 *   with none saved, below the oldest running transaction) and older than `olderThan` (a PostgreSQL interval,
 *   default 7 days). The age floor covers a first or full read in progress: it fixes its upper bound before
 *   it saves it as a watermark, and a purge in between must not take deletions from that upper bound onwards;
 * - those stamped above this cluster's counter: restored from another cluster, they belong to no window here
 *   (the restore triggers a full read anyway, see checkWatermark).
 * A watermark from a replaced counter (see checkWatermark) only holds tombstones longer, never shorter.
 */
export async function purgeTombstones(
  db: Kysely<Database>,
  { olderThan = '7 days' }: { olderThan?: string } = {},
): Promise<Record<FeedTable | 'email_activities', number>> {
  const out = { contacts: 0, events: 0, tasks: 0, email_activities: 0 } as Record<FeedTable | 'email_activities', number>;
  for (const table of [...FEED_TABLES, 'email_activities' as const]) {
    // Email activities are read by email sync, whose watermarks live with its folder (0015_email_sync).
    const saved =
      table === 'email_activities'
        ? sql`select split_part(f.crm_watermark, ';', 1)::xid8 as w from sync.email_sync_folder f where f.crm_watermark is not null`
        : sql`select split_part(c.crm_watermark, ';', 1)::xid8 as w from sync.cursor c where c.record_type = ${RECORD_TYPE[table]} and c.crm_watermark is not null
                union all
                select split_part(c.pending_crm_watermark, ';', 1)::xid8 from sync.cursor c where c.record_type = ${RECORD_TYPE[table]} and c.pending_crm_watermark is not null`;
    const r = await sql`
      with bounds as (
        select least(
            coalesce((select min(w) from (${saved}) saved), pg_snapshot_xmin(pg_current_snapshot())),
            pg_snapshot_xmin(pg_current_snapshot())) as below,
          pg_snapshot_xmax(pg_current_snapshot()) as next
      )
      delete from crm.tombstone t using bounds b
      where t.table_name = ${table}
        and ((t.change_txid < b.below and t.deleted_at < now() - ${olderThan}::interval) or t.change_txid >= b.next)`.execute(db);
    out[table] = Number(r.numAffectedRows ?? 0n);
  }
  return out;
}
