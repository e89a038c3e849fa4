/**
 * What the sync keeps, and for how long (issue 9, "Retention"): pruning of history by age, `cxsync remove` and
 * `cxsync forget` (GDPR erasure). sync.* access like sync-store.ts and exchange-state.ts, kept apart so each can
 * change on its own. docs/OPERATIONS.md, "Retention and erasure", is the operator's view of this module.
 *
 * Deletes go in batches (`ctid = any(array(select ctid … limit n))`, a TID scan), each its own short transaction, so
 * no statement holds row locks on a large part of a table while mailboxes cycle.
 */
import { sql } from 'kysely';
import type { Db } from './connection';
import { REPLAN_PREFIX } from './exchange-state';

export const DEFAULT_RETENTION_DAYS = 30;
const BATCH = 10_000;

/**
 * Tables whose rows `remove` keeps: sync.event_invitation remembers whether a meeting's Outlook copy was written
 * with its attendees; a mailbox enrolled again relinks those copies by marker and must not start inviting (or
 * cancelling) their attendees (0009_event_invitations). `forget <the mailbox's address>` erases them.
 */
export const KEPT_AFTER_REMOVE: readonly string[] = ['event_invitation'];

export interface PruneCounts {
  operations: number;
  conflicts: number;
  cycles: number;
  log: number;
}

async function inBatches(db: Db, statement: () => ReturnType<typeof sql>, onBatch: () => void): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await statement().execute(db);
    const n = Number(r.numAffectedRows ?? 0);
    total += n;
    onBatch();
    if (n < BATCH) return total;
  }
}

/**
 * Deletes the history older than `days`: a cycle's operations and conflicts go with the cycle, once it ended that
 * long ago; log lines by their own time. Kept whatever their age:
 * - the cycle a mailbox has open (paused, needs-attention or running) and its log lines: finishCycle counts them;
 * - pending operations, the cycles holding them, and every operation of a plan that still has a pending one: a
 *   CRM write checks whether its Exchange sibling of the same plan was given back (sync-store siblingGivenBack);
 * - staged changes (not history: changes still to plan) and mappings, cursors and the other per-mailbox state.
 */
export async function pruneHistory(db: Db, opts: { days: number; onBatch?: () => void }): Promise<PruneCounts> {
  const onBatch = opts.onBatch ?? (() => undefined);
  const cutoff = (await sql<{ t: Date }>`select now() - make_interval(days => ${opts.days}::int) as t`.execute(db)).rows[0].t;
  // Few rows (pending operations are bounded by the batch size per mailbox): read once per statement.
  const protectedPlans = sql`(select coalesce(array_agg(distinct x), '{}') from (
      select cycle_id as x from sync.operation where status = 'pending'
      union all select planned_cycle from sync.operation where status = 'pending' and planned_cycle is not null) p)::bigint[]`;

  const operations = await inBatches(db, () => sql`
    delete from sync.operation where ctid = any(array(
      select o.ctid from sync.cycle c join sync.operation o on o.cycle_id = c.id
      where c.status = 'done' and c.ended_at < ${cutoff} and o.status <> 'pending'
        and c.id <> all(${protectedPlans}) and coalesce(o.planned_cycle, 0) <> all(${protectedPlans})
      limit ${BATCH}))`, onBatch);
  const conflicts = await inBatches(db, () => sql`
    delete from sync.conflict where ctid = any(array(
      select x.ctid from sync.cycle c join sync.conflict x on x.cycle_id = c.id
      where c.status = 'done' and c.ended_at < ${cutoff}
      limit ${BATCH}))`, onBatch);
  // A cycle goes once nothing of it is kept (its operations above), so the cascade never removes a kept row.
  const cycles = await inBatches(db, () => sql`
    delete from sync.cycle where ctid = any(array(
      select c.ctid from sync.cycle c
      where c.status = 'done' and c.ended_at < ${cutoff} and c.id <> all(${protectedPlans})
        and not exists (select 1 from sync.operation o where o.cycle_id = c.id)
      limit ${BATCH}))`, onBatch);
  const log = await inBatches(db, () => sql`
    delete from sync.log where ctid = any(array(
      select l.ctid from sync.log l
      where l.at < ${cutoff}
        and coalesce(l.cycle_id, 0) <> all((select coalesce(array_agg(id), '{}') from sync.cycle where status = 'running')::bigint[])
      limit ${BATCH}))`, onBatch);
  return { operations, conflicts, cycles, log };
}

/** Every sync.* table with a mailbox_id column: a table added later is covered without a change here. */
export async function mailboxTables(db: Db): Promise<string[]> {
  const r = await sql<{ t: string }>`
    select c.table_name as t from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
    where c.table_schema = 'sync' and c.column_name = 'mailbox_id'
    order by c.table_name`.execute(db);
  return r.rows.map((x) => x.t);
}

/**
 * Deletes a mailbox and every row of it in the sync tables but KEPT_AFTER_REMOVE; returns the rows deleted per
 * table. Call it once the mailbox's workflow has stopped. Operations go first (the largest table, and their
 * cycles would otherwise take them in one cascading statement); an activity still finishing when the workflow
 * was terminated cannot add rows afterwards: every per-mailbox table references sync.mailbox.
 */
export async function removeMailboxRows(db: Db, mailboxId: string, onBatch: () => void = () => undefined): Promise<Record<string, number>> {
  const tables = (await mailboxTables(db)).filter((t) => !KEPT_AFTER_REMOVE.includes(t));
  const rank = (t: string) => (t === 'operation' ? 0 : t === 'cycle' ? 2 : 1);
  tables.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const deleted: Record<string, number> = {};
  for (const t of tables) {
    const table = sql.table(`sync.${t}`);
    const n = await inBatches(db, () => sql`
      delete from ${table} where ctid = any(array(select ctid from ${table} where mailbox_id = ${mailboxId} limit ${BATCH}))`, onBatch);
    if (n) deleted[t] = n;
  }
  await sql`delete from sync.mailbox where id = ${mailboxId}`.execute(db);
  return deleted;
}

// ---- forget (GDPR erasure) ----

const EMAIL = /^[^\s@"\\]+@[^\s@"\\]+\.[^\s@"\\]+$/;

/**
 * A PostgreSQL regular expression (for ~*) matching `email` as a whole address in any text: not inside a longer
 * one ("ann@x.com" is not in "joann@x.com" nor in "ann@x.com.au"), a sentence's full stop after it allowed.
 */
export function addressPattern(email: string): string {
  const escaped = email.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return `(?<![a-z0-9._%+-])${escaped}(?![a-z0-9_-]|\\.[a-z0-9])`;
}

export function normaliseEmail(email: string): string | undefined {
  const e = email.trim().toLowerCase();
  return EMAIL.test(e) ? e : undefined;
}

/** A row mentions the address in any column (text, jsonb, arrays alike). */
const mentions = (alias: string, pattern: string) => sql`to_jsonb(${sql.ref(alias)})::text ~* ${pattern}`;

export interface ForgetCounts {
  logLines: number;
  conflicts: number;
  stagedChanges: number;
  operations: number;
  mappingBases: number;
  cycleSummaries: number;
  eventInvitations: number;
  /** Entries of the email unresolved list from or about the person (0014_email_filing). */
  emailUnresolved: number;
  /** Exclusions of the person's address (`cxsync email ignore-address`), the mailbox's and every mailbox's. */
  emailExclusions: number;
}

/**
 * Where the address is still held after forget: `table` and how many rows. Rows of a mailbox that could not be
 * erased now (see ForgetBlocked) are counted here too.
 */
export interface Remaining {
  table: string;
  rows: number;
}

/** A mailbox whose rows mentioning the address were left alone, and why. */
export interface ForgetBlocked {
  mailbox: string;
  /** Changes of the person's records pulled but not yet planned. */
  unplanned: number;
  /** Writes planned for the person's records and not yet applied. */
  pending: number;
  /** A cycle step held the mailbox's lease for longer than forget waits. */
  busy?: boolean;
}

/** The mailboxes with rows mentioning the address, in any sync table that has a mailbox_id column. */
export async function mailboxesMentioning(db: Db, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for (const t of await mailboxTables(db)) {
    const r = await sql<{ m: string }>`select distinct x.mailbox_id as m from ${sql.table(`sync.${t}`)} x where ${mentions('x', pattern)}`.execute(db);
    for (const row of r.rows) found.add(row.m);
  }
  return [...found].sort();
}

/** Every sync table (any columns) and how many of its rows mention the address; only tables with some. */
export async function rowsMentioning(db: Db, pattern: string): Promise<Remaining[]> {
  const tables = await sql<{ t: string }>`select table_name as t from information_schema.tables where table_schema = 'sync' and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const out: Remaining[] = [];
  for (const { t } of tables.rows) {
    const r = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(`sync.${t}`)} x where ${mentions('x', pattern)}`.execute(db);
    const n = Number(r.rows[0].n);
    if (n) out.push({ table: `sync.${t}`, rows: n });
  }
  return out;
}

/**
 * Erases one mailbox's rows mentioning the address, in one transaction; the caller holds the mailbox's lease
 * (mailbox-lock.ts) when it is enrolled, so no cycle step writes meanwhile. Nothing is erased, and the blockers
 * are returned, while a change of the person's records is still on its way (staged and not planned, or a write
 * pending): dropping it would lose the change or, in a first sync, import a second copy of the record.
 *
 * What is erased, and why sync goes on unharmed:
 * - log lines and conflicts that mention it or are about a record that does (its contact, a meeting they attend):
 *   history only (finishCycle's counts of an open cycle may drop);
 * - staged rows a plan already consumed (commit would delete them anyway);
 * - operations already applied, failed or skipped, of those records: payload set to null, reason and error text
 *   mentioning it replaced (an error keeps its `replan:` prefix, which siblingGivenBack looks for); nothing reads
 *   an applied operation's payload;
 * - a mapping's base loses the fields holding the address (the whole field: an email slot, an attendee list, a
 *   body). The three-way merge (domain/reconcile.ts) reads a field missing from the base as changed on a side that
 *   holds a value, so the next change of the record writes that field again with the value the side holds, and
 *   the base is complete once more. Other fields merge as before; fingerprints stay (one-way hashes), so an
 *   unchanged record is not seen as changed;
 * - values of a cycle summary (a needs-attention reason) mentioning it become "(erased)";
 * - sync.event_invitation: rows of a removed mailbox whose address it is go; a reason mentioning it is replaced;
 * - sync.email_unresolved: entries mentioning it (their sender, a recipient in the reason) go, and so do
 *   exclusions of the address (sync.email_exclusion; forgetEverywhere erases the global ones). Nothing of the
 *   person stays: their mail is filed again only if someone drops it again.
 */
export async function forgetInMailbox(db: Db, mailboxId: string, email: string): Promise<{ counts: ForgetCounts } | { blocked: ForgetBlocked }> {
  const pattern = addressPattern(email);
  return db.transaction().execute(async (tx) => {
    const unplanned = Number((await sql<{ n: string }>`select count(*)::text as n from sync.staged_change x
      where x.mailbox_id = ${mailboxId} and x.planned_cycle is null and ${mentions('x', pattern)}`.execute(tx)).rows[0].n);
    const pending = Number((await sql<{ n: string }>`select count(*)::text as n from sync.operation x
      where x.mailbox_id = ${mailboxId} and x.status = 'pending' and ${mentions('x', pattern)}`.execute(tx)).rows[0].n);
    if (unplanned || pending) return { blocked: { mailbox: mailboxId, unplanned, pending } };

    const n = (r: { numAffectedRows?: bigint }) => Number(r.numAffectedRows ?? 0);
    // The records that mention the address anywhere in the mailbox's sync data (the person's contact, a meeting
    // they attend): history about them goes too, though a line or an older version may not hold the address.
    const ids = (await sql<{ ids: string[] }>`select coalesce(array_agg(distinct id), '{}') as ids from (
        select unnest(array[x.crm_id, x.exchange_id]) as id from sync.mapping x where x.mailbox_id = ${mailboxId} and x.base::text ~* ${pattern}
        union all select unnest(array[x.crm_id, x.exchange_id]) from sync.conflict x where x.mailbox_id = ${mailboxId} and ${mentions('x', pattern)}
        union all select unnest(array[x.crm_id, x.exchange_id]) from sync.operation x where x.mailbox_id = ${mailboxId} and ${mentions('x', pattern)}
        union all select x.external_id from sync.staged_change x where x.mailbox_id = ${mailboxId} and ${mentions('x', pattern)}) r
      where id is not null`.execute(tx)).rows[0].ids;
    const about = (alias: string, ...columns: string[]) => sql.join(columns.map((c) => sql`${sql.ref(`${alias}.${c}`)} = any(${ids}::text[])`), sql` or `);
    const logLines = n(await sql`delete from sync.log x where x.mailbox_id = ${mailboxId} and (${mentions('x', pattern)} or ${about('x', 'item_id')})`.execute(tx));
    const conflicts = n(await sql`delete from sync.conflict x where x.mailbox_id = ${mailboxId} and (${mentions('x', pattern)} or ${about('x', 'crm_id', 'exchange_id')})`.execute(tx));
    const stagedChanges = n(await sql`delete from sync.staged_change x where x.mailbox_id = ${mailboxId} and x.planned_cycle is not null and ${mentions('x', pattern)}`.execute(tx));
    const operations = n(await sql`update sync.operation x set
        payload = null,
        reason = case when x.reason ~* ${pattern} then '(erased)' else x.reason end,
        error = case when x.error ~* ${pattern} then case when x.error like ${`${REPLAN_PREFIX}%`} then ${`${REPLAN_PREFIX} (erased)`} else '(erased)' end else x.error end
      where x.mailbox_id = ${mailboxId} and x.status <> 'pending' and (${mentions('x', pattern)} or ${about('x', 'crm_id', 'exchange_id')})
        and (x.payload is not null or x.reason ~* ${pattern} or x.error ~* ${pattern})`.execute(tx));
    // updated_at stays: a full round checks mappings older than the round (exchange-state unseenMapped).
    const mappingBases = n(await sql`update sync.mapping x set
        base = case when jsonb_typeof(x.base) = 'object'
          then (select coalesce(jsonb_object_agg(f.k, f.v), '{}'::jsonb) from jsonb_each(x.base) as f(k, v) where not (f.v::text ~* ${pattern}) and not (f.k ~* ${pattern}))
          else null end
      where x.mailbox_id = ${mailboxId} and x.base::text ~* ${pattern}`.execute(tx));
    const cycleSummaries = n(await sql`update sync.cycle x set
        summary = case when jsonb_typeof(x.summary) = 'object'
          then (select jsonb_object_agg(f.k, case when f.v::text ~* ${pattern} then '"(erased)"'::jsonb else f.v end) from jsonb_each(x.summary) as f(k, v))
          else null end
      where x.mailbox_id = ${mailboxId} and x.summary::text ~* ${pattern}`.execute(tx));
    let eventInvitations = 0;
    if (mailboxId === email) {
      eventInvitations = n(await sql`delete from sync.event_invitation where mailbox_id = ${mailboxId}`.execute(tx));
    } else {
      eventInvitations = n(await sql`update sync.event_invitation x set reason = '(erased)' where x.mailbox_id = ${mailboxId} and x.reason ~* ${pattern}`.execute(tx));
    }
    // A message of theirs left unfiled: listed again by the next re-scan if it is still in a drop folder.
    const emailUnresolved = n(await sql`delete from sync.email_unresolved x where x.mailbox_id = ${mailboxId} and ${mentions('x', pattern)}`.execute(tx));
    const emailExclusions = n(await sql`delete from sync.email_exclusion x where x.mailbox_id = ${mailboxId} and x.kind = 'address' and x.value = ${email}`.execute(tx));
    return { counts: { logLines, conflicts, stagedChanges, operations, mappingBases, cycleSummaries, eventInvitations, emailUnresolved, emailExclusions } };
  });
}

/** Rows of every mailbox mentioning the address: global email exclusions of it. */
export async function forgetEverywhere(db: Db, email: string): Promise<number> {
  const r = await sql`delete from sync.email_exclusion where mailbox_id is null and kind = 'address' and value = ${email}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}

export function emptyForgetCounts(): ForgetCounts {
  return { logLines: 0, conflicts: 0, stagedChanges: 0, operations: 0, mappingBases: 0, cycleSummaries: 0, eventInvitations: 0, emailUnresolved: 0, emailExclusions: 0 };
}
