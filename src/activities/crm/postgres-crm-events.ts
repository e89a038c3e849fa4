/**
 * Database access for the built-in CRM's events (crm.events, crm.event_attendees): the change feed and the
 * sync's writes. Same design as crm.contacts (postgres-crm.ts): rows carry the writing transaction's id (xid8)
 * and the writing mailbox (cxsync.writer), the feed reads below the oldest running transaction so a late commit
 * is never skipped, and a mailbox's own writes are left out of its feed.
 *
 * The unit of the feed is the *series*: an exception row (series_id set) reports its master, and the payload
 * is the master with its attendees and its exception rows in the sync window.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import {
  CRM_TODO_TYPE,
  inWindow,
  toCrmEvent,
  type CrmAttendeeRow,
  type CrmEventPayload,
  type CrmExceptionRow,
  type EventRecord,
  type SyncWindow,
} from '../../domain/event';
import { normalizeRecurrence, rangeOverlaps } from '../../domain/recurrence';
import { addDays, isoInstant, parseWallTime, resolveTimeZone, sameTimeZone, wallToInstant } from '../../domain/timezone';
import { goneForMailbox } from './feed-guard';
import { feedWindow } from './postgres-crm';

type Exec = Kysely<Database> | Transaction<Database>;

export interface CrmEventChange {
  id: string;
  /** Deleted, cancelled, made a Todo, or no longer owned by the mailbox's user. */
  removed: boolean;
  /** With `removed`: still there but cancelled, made a Todo or reassigned (not a delete). */
  leftScope?: boolean;
  /** With `removed`: the row is gone (hard-deleted, or missing after a restore). */
  hardDeleted?: boolean;
  /** change_txid; absent for a row gone without a tombstone. */
  version?: string;
  payload: (CrmEventPayload & Record<string, unknown>) | null;
  updatedAt: string;
}

/**
 * Feed position: the transaction-id watermark and the entry window it was read with. When the window has moved
 * on, events that entered it since are reported although they did not change (the watermark passed them).
 */
interface Watermark {
  xid: string;
  window?: SyncWindow;
}

export function encodeEventWatermark(w: Watermark): string {
  return w.window ? `${w.xid};${w.window.start};${w.window.end}` : w.xid;
}
export function decodeEventWatermark(s: string | null): Watermark | undefined {
  if (!s) return undefined;
  const [xid, start, end] = s.split(';');
  return start && end ? { xid, window: { start, end } } : { xid };
}

/**
 * The window the CRM feed discovers new events in: a day inside the policy's days on both ends, so every event
 * it reports is also inside the planner's window (which counts from this very moment) and none is reported too
 * early and then never again.
 */
export function crmEntryWindow(now: number, pastDays: number, futureDays: number): SyncWindow {
  const today = new Date(now).toISOString().slice(0, 10);
  return { start: addDays(today, -pastDays + 2), end: addDays(today, futureDays - 1) };
}

const WALL = (col: string) => sql.raw(`to_char(${col}, 'YYYY-MM-DD"T"HH24:MI:SS')`);

async function asWriter(tx: Exec, mailboxId: string): Promise<void> {
  await sql`select set_config('cxsync.writer', ${mailboxId}, true)`.execute(tx);
}

interface MasterRow {
  id: string;
  owner_id: string | null;
  version: string;
  event_type: string;
  status: string;
  subject: string;
  description: string | null;
  location: string | null;
  all_day: boolean;
  start_local: string;
  end_local: string;
  time_zone: string;
  visibility: string;
  organizer_email: string | null;
  organizer_name: string | null;
  categories: string[];
  recurrence: Record<string, unknown> | null;
  deleted_at: Date | null;
  updated_iso: string;
  mapped: boolean;
}

/** Does the event (single or series) have an occurrence in the window? */
function overlapsWindow(r: Pick<MasterRow, 'start_local' | 'end_local' | 'recurrence'>, w: SyncWindow): boolean {
  if (r.recurrence) {
    const rec = normalizeRecurrence({ ...r.recurrence, range: { ...(r.recurrence.range as object), startDate: r.start_local.slice(0, 10) } });
    return rec.ok ? rangeOverlaps(rec.value, w.start, addDays(w.end, -1)) : true;
  }
  return r.end_local.slice(0, 10) >= w.start && r.start_local.slice(0, 10) < w.end;
}

function traits(r: MasterRow): Record<string, unknown> {
  const zone = resolveTimeZone(r.time_zone) ?? 'UTC';
  const at = (wall: string) => {
    const w = parseWallTime(wall);
    return w ? isoInstant(wallToInstant(w, zone)) : undefined;
  };
  // The keys the planner's scope rules read (src/domain/planning.ts crmTraits).
  return {
    start_at: at(r.start_local),
    end_at: at(r.end_local),
    recurring: r.recurrence !== null,
    private: r.visibility === 'private' || r.visibility === 'confidential',
  };
}

export class PostgresCrmEvents {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Events changed since `after` (a watermark from an earlier call), plus events that entered the entry window
   * since then. Unmapped events outside the window are not reported (they are not synced, and will be reported
   * when they enter it); mapped ones always are. `exceptionWindow` limits the exception rows in a payload.
   */
  async changes(args: {
    ownerId: string;
    mailboxId: string;
    after: string | null;
    entryWindow: SyncWindow;
    exceptionWindow: SyncWindow;
  }): Promise<{ changes: CrmEventChange[]; watermark: string }> {
    const { ownerId, mailboxId, entryWindow } = args;
    const prev = decodeEventWatermark(args.after);
    const hi = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db);
    const upper = hi.rows[0].xmin;
    const lower = prev?.xid ?? '0';
    const after = prev?.xid ?? null;

    const changed = await sql<{ unit: string }>`
      select distinct coalesce(e.series_id, e.id)::text as unit
      from crm.events e
      where ${feedWindow(sql`e`, after, upper, mailboxId)}`.execute(this.db);
    const units = new Set(changed.rows.map((r) => r.unit));

    // Events that entered the window since the last read (the window moves with the calendar).
    if (prev?.window && (prev.window.start !== entryWindow.start || prev.window.end !== entryWindow.end)) {
      const entered = await sql<{ id: string }>`
        select e.id::text as id from crm.events e
        where e.owner_id = ${ownerId}::uuid and e.series_id is null and e.deleted_at is null
          and e.change_txid < ${lower}::xid8
          and (e.recurrence is not null or (e.end_local >= ${entryWindow.start}::date and e.start_local < ${entryWindow.end}::date))
          and (e.recurrence is not null or not (e.end_local >= ${prev.window.start}::date and e.start_local < ${prev.window.end}::date))
          and not exists (select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'event' and m.crm_id = e.id::text)`.execute(this.db);
      for (const r of entered.rows) units.add(r.id);
    }
    const watermark = encodeEventWatermark({ xid: upper, window: entryWindow });
    // Hard-deleted series or single events (no row left): see feed-guard.ts goneForMailbox. A hard-deleted
    // exception row alone is not seen: its tombstone does not say which series it belonged to.
    const gone: CrmEventChange[] = (await goneForMailbox(this.db, 'events', { after, upper, mailboxId })).map((g) => ({
      id: g.id, removed: true, hardDeleted: true, ...(g.version ? { version: g.version } : {}), payload: null, updatedAt: new Date().toISOString(),
    }));
    if (units.size === 0) return { changes: gone, watermark };

    const ids = [...units];
    const masters = await sql<MasterRow>`
      select e.id::text as id, e.owner_id::text as owner_id, e.event_type, e.status, e.subject, e.description, e.location, e.all_day,
        ${WALL('e.start_local')} as start_local, ${WALL('e.end_local')} as end_local, e.time_zone, e.visibility,
        e.organizer_email, e.organizer_name, e.categories, e.recurrence, e.deleted_at, e.change_txid::text as version,
        to_char(e.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_iso,
        exists (select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'event' and m.crm_id = e.id::text) as mapped
      from crm.events e
      where e.id = any(${ids}::uuid[]) and e.series_id is null
        and (e.owner_id = ${ownerId}::uuid or exists (
          select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'event' and m.crm_id = e.id::text))
      order by e.id`.execute(this.db);

    const live = masters.rows.filter((r) => !this.isRemoved(r, ownerId)).map((r) => r.id);
    const attendees = new Map<string, CrmAttendeeRow[]>();
    const exceptions = new Map<string, CrmExceptionRow[]>();
    if (live.length) {
      const a = await sql<CrmAttendeeRow & { event_id: string }>`
        select a.event_id::text as event_id, coalesce(a.email, c.email, u.email) as email, coalesce(a.name, nullif(trim(concat_ws(' ', c.first_name, c.last_name)), ''), u.display_name) as name, a.attendance, a.response
        from crm.event_attendees a
        left join crm.contacts c on c.id = a.contact_id
        left join crm.users u on u.id = a.user_id
        where a.event_id = any(${live}::uuid[])
        order by a.event_id, a.email`.execute(this.db);
      for (const r of a.rows) {
        const { event_id, ...row } = r;
        (attendees.get(event_id) ?? attendees.set(event_id, []).get(event_id)!).push(row);
      }
      const x = await sql<CrmExceptionRow & { series_id: string }>`
        select x.series_id::text as series_id, ${WALL('x.original_start')} as original_start, ${WALL('x.start_local')} as start_local,
          ${WALL('x.end_local')} as end_local, x.subject, x.location, x.status
        from crm.events x
        where x.series_id = any(${live}::uuid[]) and x.deleted_at is null
          and x.original_start >= ${args.exceptionWindow.start}::date and x.original_start < ${args.exceptionWindow.end}::date
        order by x.series_id, x.original_start`.execute(this.db);
      for (const r of x.rows) {
        const { series_id, ...row } = r;
        (exceptions.get(series_id) ?? exceptions.set(series_id, []).get(series_id)!).push(row);
      }
    }

    const changes: CrmEventChange[] = [];
    for (const r of masters.rows) {
      const removed = this.isRemoved(r, ownerId);
      // Not synced: an unmapped event outside the window (reported when it enters), or an unmapped removal.
      if (!r.mapped && (removed || !overlapsWindow(r, entryWindow))) continue;
      changes.push({
        id: r.id,
        removed,
        ...(removed && r.deleted_at == null ? { leftScope: true } : {}),
        version: r.version,
        updatedAt: r.updated_iso,
        payload: removed
          ? null
          : {
              subject: r.subject,
              description: r.description,
              location: r.location,
              all_day: r.all_day,
              start_local: r.start_local,
              end_local: r.end_local,
              time_zone: r.time_zone,
              visibility: r.visibility as CrmEventPayload['visibility'],
              organizer_email: r.organizer_email,
              organizer_name: r.organizer_name,
              categories: r.categories,
              recurrence: r.recurrence,
              event_type: r.event_type,
              status: r.status,
              attendees: attendees.get(r.id) ?? [],
              exceptions: exceptions.get(r.id) ?? [],
              ...traits(r),
            },
      });
    }
    return { changes: [...changes, ...gone], watermark };
  }

  private isRemoved(r: MasterRow, ownerId: string): boolean {
    return r.deleted_at != null || r.status === 'Canceled' || r.event_type === CRM_TODO_TYPE || r.owner_id !== ownerId;
  }

  /** Which of these ids name a live (not deleted, not cancelled) event. */
  async existing(ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const r = await sql<{ id: string }>`
      select id::text as id from crm.events
      where id = any(${ids.filter((i) => /^[0-9a-f-]{36}$/i.test(i))}::uuid[]) and deleted_at is null and status <> 'Canceled' and event_type <> ${CRM_TODO_TYPE}`.execute(this.db);
    return new Set(r.rows.map((x) => x.id));
  }

  async userZone(email: string): Promise<string | undefined> {
    const r = await sql<{ time_zone: string }>`select time_zone from crm.users where lower(email) = ${email.toLowerCase()}`.execute(this.db);
    return r.rows[0]?.time_zone;
  }
}

/** CRM contacts and users behind attendee addresses (contacts the owner owns first). */
async function attendeeLinks(tx: Exec, ownerId: string, emails: string[]): Promise<Map<string, { contact_id: string | null; user_id: string | null }>> {
  const out = new Map<string, { contact_id: string | null; user_id: string | null }>();
  if (!emails.length) return out;
  const r = await sql<{ email: string; contact_id: string | null; user_id: string | null }>`
    select e.email,
      (select c.id::text from crm.contacts c where lower(c.email) = e.email and c.deleted_at is null order by (c.owner_id = ${ownerId}::uuid) desc, c.created_at limit 1) as contact_id,
      (select u.id::text from crm.users u where lower(u.email) = e.email limit 1) as user_id
    from unnest(${emails}::text[]) as e(email)`.execute(tx);
  for (const row of r.rows) out.set(row.email, { contact_id: row.contact_id, user_id: row.user_id });
  return out;
}

async function writeAttendees(tx: Exec, eventId: string, ownerId: string, rec: ReturnType<typeof toCrmEvent>['attendees']): Promise<void> {
  const current = await sql<{ email: string; name: string | null; attendance: string; response: string }>`
    select email, name, attendance, response from crm.event_attendees where event_id = ${eventId}::uuid`.execute(tx);
  const have = new Map(current.rows.map((r) => [r.email.toLowerCase(), r]));
  const want = new Map(rec.map((a) => [a.email, a]));
  const gone = [...have.keys()].filter((e) => !want.has(e));
  if (gone.length) await sql`delete from crm.event_attendees where event_id = ${eventId}::uuid and lower(email) = any(${gone}::text[])`.execute(tx);
  const fresh = rec.filter((a) => !have.has(a.email));
  const links = await attendeeLinks(tx, ownerId, fresh.map((a) => a.email));
  for (const a of rec) {
    const h = have.get(a.email);
    if (!h) {
      const l = links.get(a.email);
      await sql`insert into crm.event_attendees (event_id, email, name, contact_id, user_id, attendance, response)
        values (${eventId}::uuid, ${a.email}, ${a.name}, ${l?.contact_id ?? null}::uuid, ${l?.user_id ?? null}::uuid, ${a.attendance}, ${a.response})`.execute(tx);
    } else if (h.name !== a.name || h.attendance !== a.attendance || h.response !== a.response) {
      await sql`update crm.event_attendees set name = ${a.name}, attendance = ${a.attendance}, response = ${a.response}
        where event_id = ${eventId}::uuid and lower(email) = ${a.email}`.execute(tx);
    }
  }
}

/** Exception rows of a series: upsert the record's, retire the ones in the window the record no longer has. */
async function writeExceptions(tx: Exec, seriesId: string, ownerId: string | null, w: ReturnType<typeof toCrmEvent>, window: SyncWindow | null): Promise<void> {
  const current = await sql<{ id: string; original_start: string; start_local: string; end_local: string; subject: string; location: string | null; status: string }>`
    select id::text as id, ${WALL('original_start')} as original_start, ${WALL('start_local')} as start_local, ${WALL('end_local')} as end_local,
      subject, location, status
    from crm.events where series_id = ${seriesId}::uuid and deleted_at is null`.execute(tx);
  const want = new Map(w.exceptions.map((x) => [x.original_start, x]));
  for (const c of current.rows) {
    // A series that is no more (now a single event) loses all its exceptions; otherwise only those in the window are ours to judge.
    const judged = !w.fields.recurrence || window === null || inWindow(c.original_start, window);
    if (!want.has(c.original_start) && judged) await sql`update crm.events set deleted_at = now() where id = ${c.id}::uuid`.execute(tx);
  }
  const have = new Map(current.rows.map((c) => [c.original_start, c]));
  const f = w.fields;
  for (const x of w.exceptions) {
    const h = have.get(x.original_start);
    if (h) {
      // '' / null inherit the series' value; a row still holding a copy of it is rewritten so it inherits too.
      const same = h.start_local === x.start_local && h.end_local === x.end_local && (h.subject || null) === (x.subject || null) && (h.location || null) === (x.location || null);
      if (same && h.status === x.status) continue;
      await sql`update crm.events set start_local = ${x.start_local}::timestamp, end_local = ${x.end_local}::timestamp, subject = ${x.subject ?? ''},
        location = ${x.location}, status = ${x.status} where id = ${h.id}::uuid`.execute(tx);
    } else {
      await sql`insert into crm.events (owner_id, subject, description, location, all_day, start_local, end_local, time_zone, visibility,
          status, series_id, original_start)
        values (${ownerId}::uuid, ${x.subject ?? ''}, ${f.description}, ${x.location}, ${f.all_day}, ${x.start_local}::timestamp, ${x.end_local}::timestamp,
          ${f.time_zone}, ${f.visibility}, ${x.status}, ${seriesId}::uuid, ${x.original_start}::timestamp)`.execute(tx);
    }
  }
}

/** Writes made by the sync, inside the caller's transaction so the mapping and operation status commit with them. */
export const crmEventWrites = {
  /** Idempotent on `id`: a retried create finds its first attempt. Returns false when the row already existed. */
  async create(tx: Exec, mailboxId: string, id: string, ownerId: string, record: EventRecord, eventType = 'Meeting'): Promise<boolean> {
    await asWriter(tx, mailboxId);
    const w = toCrmEvent(record);
    const f = w.fields;
    const r = await sql`
      insert into crm.events (id, owner_id, event_type, subject, description, location, all_day, start_local, end_local, time_zone, visibility,
        organizer_email, organizer_name, recurrence)
      values (${id}::uuid, ${ownerId}::uuid, ${eventType}, ${f.subject}, ${f.description}, ${f.location}, ${f.all_day}, ${f.start_local}::timestamp,
        ${f.end_local}::timestamp, ${f.time_zone}, ${f.visibility}, ${f.organizer_email}, ${f.organizer_name},
        ${f.recurrence ? JSON.stringify(f.recurrence) : null}::jsonb)
      on conflict (id) do nothing`.execute(tx);
    if (Number(r.numAffectedRows ?? 0) === 0) return false;
    await writeAttendees(tx, id, ownerId, w.attendees);
    if (f.recurrence) await writeExceptions(tx, id, ownerId, w, null);
    return true;
  },

  /**
   * False when the event no longer exists (deleted or cancelled). The row keeps its own zone name when it is the
   * record's zone under another name; exception rows outside `window` are left as they are.
   */
  async update(tx: Exec, mailboxId: string, id: string, record: EventRecord, window: SyncWindow): Promise<boolean> {
    await asWriter(tx, mailboxId);
    const cur = await sql<{ owner_id: string | null; time_zone: string }>`
      select owner_id::text as owner_id, time_zone from crm.events where id = ${id}::uuid and deleted_at is null and status <> 'Canceled' for update`.execute(tx);
    const row = cur.rows[0];
    if (!row) return false;
    const w = toCrmEvent(record);
    const f = w.fields;
    const zone = sameTimeZone(row.time_zone, f.time_zone) ? row.time_zone : f.time_zone;
    await sql`
      update crm.events set subject = ${f.subject}, description = ${f.description}, location = ${f.location}, all_day = ${f.all_day},
        start_local = ${f.start_local}::timestamp, end_local = ${f.end_local}::timestamp, time_zone = ${zone}, visibility = ${f.visibility},
        organizer_email = ${f.organizer_email}, organizer_name = ${f.organizer_name},
        recurrence = ${f.recurrence ? JSON.stringify(f.recurrence) : null}::jsonb
      where id = ${id}::uuid`.execute(tx);
    await writeAttendees(tx, id, row.owner_id ?? '00000000-0000-0000-0000-000000000000', w.attendees);
    await writeExceptions(tx, id, row.owner_id, { ...w, fields: { ...f, time_zone: zone } }, window);
    return true;
  },

  /** Soft delete of the event and, for a series, its exception rows. */
  async delete(tx: Exec, mailboxId: string, id: string): Promise<void> {
    await asWriter(tx, mailboxId);
    await sql`update crm.events set deleted_at = now() where (id = ${id}::uuid or series_id = ${id}::uuid) and deleted_at is null`.execute(tx);
  },
};
