/**
 * Calendar events: CRM events owned by the user (every type but Todo) ⇄ appointments in the mailbox's VEvents
 * calendar (or the default calendar). See docs/RECORD_TYPES.md for the design; in short:
 *
 * - Exchange is read with `calendarView/delta` over the sync window. The window travels with the saved links
 *   (a `#cxsync-window=…` fragment, never sent to Graph); when the policy's window has moved on (weekly) the
 *   next round starts afresh over the new window instead of continuing the old token.
 * - calendarView lists instances, not series. Every occurrence or exception is folded into its series: the item
 *   staged is the series master, read with its instances in the window, with the exceptions (moved, changed and
 *   cancelled occurrences) computed against the pattern. `sync.event_instance` remembers which series an
 *   occurrence id belongs to, because Graph reports a cancelled occurrence only as `@removed` with its own id.
 * - An item reported `@removed` is read again: gone means deleted; still there means it only left the window
 *   (not a delete: its new time is synced instead).
 * - A series' exceptions are written after the master (`afterWrite`): Graph creates and patches a series
 *   without them.
 * - Attendees reach Outlook only for meetings the policy `event.invitations` lets Exchange mail: the CRM feed
 *   settles each meeting's handling (stored decision, else what the Outlook copy shows, else
 *   decideInvitations) and the record carries it (src/domain/meeting-attendees.ts); the others are written
 *   without attendees, listed in the body instead, and read back with the list taken out of the body.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { randomBytes } from 'node:crypto';
import type { Database } from '../../db/schema';
import { PolicyStore } from '../../db/policy-store';
import {
  bodyText,
  eventLabel,
  exceptionsFromInstances,
  fromCrmEvent,
  fromGraphEvent,
  planInstanceWrites,
  syncWindow,
  type CrmEventPayload,
  type EventRecord,
  type GraphEvent,
  type SyncWindow,
} from '../../domain/event';
import { BUILTIN_POLICY } from '../../domain/policy';
import { decideInvitations, type AttendeeHandling } from '../../domain/invitations';
import {
  ATTENDEE_HANDLING_KEY,
  fromGraphMeeting,
  handlingOf,
  liftAttendeeBlock,
  listedInBody,
  toGraphMeeting,
  withHandling,
} from '../../domain/meeting-attendees';
import { ok } from '../../domain/result';
import { PostgresCrmEvents, crmEntryWindow, crmEventWrites, type CrmEventChange } from '../crm/postgres-crm-events';
import { EventsApi, markerOf, type SeriesRead } from '../exchange/events-api';
import { classifyGraphError } from '../exchange/errors';
import { changedProperties } from '../../domain/patch';
import { crmPrecondition, rewindWatermark, txVersion, undeleteRow } from '../crm/postgres-crm';
import type { ExchangeDeltaItem, ExchangeItem, RecordTypeAdapter } from './adapter';
import { graphPayload } from './contacts';

/** The Graph properties fromGraphEvent reads, plus those the scope rules read (categories, sensitivity). */
export const EVENT_READ_PROPERTIES = ['subject', 'start', 'end', 'isAllDay', 'attendees', 'location', 'sensitivity', 'categories'] as const;

export interface EventsAdapterOptions {
  /** The clock the sync window and invitation decisions are computed from (tests move it). */
  now?: () => number;
  /** Store nothing (the dry run): invitation decisions are computed, never recorded. */
  readOnly?: boolean;
}

export interface EventsAdapter extends RecordTypeAdapter<EventRecord> {
  /**
   * Run after a create or update of the item succeeded: writes the series' moved and cancelled occurrences
   * (Graph creates and patches a series without them) and returns the item as it now is. Idempotent.
   */
  afterWrite(upn: string, containerId: string, item: ExchangeItem, record: EventRecord, kind: 'create' | 'update'): Promise<ExchangeItem>;
}

// ---- links carry their round's window -----------------------------------------------------------

interface RoundTag {
  url: string;
  window?: SyncWindow;
  kind?: 'next' | 'delta';
  round?: string;
}

const TAG = /#cxsync-window=(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2});kind=(next|delta);round=([\w-]+)$/;

export function tagLink(url: string, t: Required<Omit<RoundTag, 'url'>>): string {
  return `${url.replace(/#.*$/, '')}#cxsync-window=${t.window.start}..${t.window.end};kind=${t.kind};round=${t.round}`;
}

export function parseLink(link: string): RoundTag {
  const m = TAG.exec(link);
  if (!m) return { url: link.replace(/#.*$/, '') };
  return { url: link.slice(0, m.index), window: { start: m[1], end: m[2] }, kind: m[3] as 'next' | 'delta', round: m[4] };
}

// ---- per-round cache of series reads (a series shows up once per occurrence) ----------------------

const seriesCache = new Map<string, { at: number; item: ExchangeDeltaItem }>();
const CACHE_MS = 10 * 60_000;
function cacheGet(key: string): ExchangeDeltaItem | undefined {
  const hit = seriesCache.get(key);
  if (!hit) return undefined;
  if (Date.now() - hit.at > CACHE_MS) {
    seriesCache.delete(key);
    return undefined;
  }
  return hit.item;
}
function cachePut(key: string, item: ExchangeDeltaItem): void {
  if (seriesCache.size > 20_000) seriesCache.clear();
  seriesCache.set(key, { at: Date.now(), item });
}

function item(body: unknown): ExchangeItem {
  const b = (body ?? {}) as GraphEvent & { calendarId?: string };
  return { id: String(b.id), changeKey: b.changeKey ?? null, payload: graphPayload(b) };
}

export function eventsAdapter(db: Kysely<Database>, api: EventsApi, opts: EventsAdapterOptions = {}): EventsAdapter {
  const crm = new PostgresCrmEvents(db);
  const policies = new PolicyStore(db);
  const now = opts.now ?? Date.now;
  const zones = new Map<string, string | undefined>();

  async function windowDays(mailboxId: string): Promise<{ pastDays: number; futureDays: number }> {
    const eff = await policies.effective(mailboxId).catch(() => undefined);
    return (eff?.policy.ok ? eff.policy.value : BUILTIN_POLICY).event.window;
  }
  /** The window exceptions are looked after in (both sides use the same). */
  async function exceptionWindow(mailboxId: string): Promise<SyncWindow> {
    const w = await windowDays(mailboxId);
    return syncWindow(now(), w.pastDays, w.futureDays);
  }
  async function userZone(upn: string): Promise<string | undefined> {
    const key = upn.toLowerCase();
    if (!zones.has(key)) zones.set(key, await crm.userZone(key));
    return zones.get(key);
  }

  function payloadOf(ev: GraphEvent, zone: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const p = graphPayload(ev);
    delete p.singleValueExtendedProperties;
    return liftAttendeeBlock({ ...p, bodyText: bodyText(ev.body) ?? '', ...(zone ? { cxsyncUserZone: zone } : {}), ...extra });
  }

  function seriesItem(read: SeriesRead, zone: string | undefined, window: SyncWindow): ExchangeDeltaItem {
    if (read.gone) return { id: read.id, removed: true, changeKey: null, payload: null };
    const master = read.master;
    if (master.type !== 'seriesMaster' || !master.recurrence) {
      // No longer a series (or never was): the event itself.
      return { id: read.id, removed: false, changeKey: master.changeKey ?? null, payload: payloadOf(master, zone) };
    }
    const rec = fromGraphEvent(master, { fallbackZone: zone });
    const exceptions = rec.ok ? exceptionsFromInstances(rec.value, read.instances, window) : [];
    return { id: read.id, removed: false, changeKey: master.changeKey ?? null, payload: payloadOf(master, zone, { cxsyncExceptions: exceptions }) };
  }

  async function remember(mailboxId: string, pairs: Array<[string, string]>): Promise<void> {
    if (!pairs.length) return;
    const rows = [...new Map(pairs).entries()].map(([instance_id, series_id]) => ({ mailbox_id: mailboxId, instance_id, series_id }));
    for (let i = 0; i < rows.length; i += 500) {
      await db
        .insertInto('sync.event_instance')
        .values(rows.slice(i, i + 500))
        .onConflict((oc) => oc.columns(['mailbox_id', 'instance_id']).doUpdateSet((eb) => ({ series_id: eb.ref('excluded.series_id') })))
        .execute();
    }
  }

  /**
   * Each live meeting's attendee handling: the decision stored for this mailbox; else what the mapping's base
   * (the Outlook copy as last synced) shows; else decideInvitations now. A mapped meeting with attendees has its
   * handling stored, for its life. An unmapped one is decided afresh at each read until it is written, and its
   * copy shows the handling from then on (a meeting without attendees shows none: nothing was sent or listed,
   * so there is nothing to stay consistent with until it gets some).
   */
  async function attendeeHandling(mailboxId: string, changes: readonly CrmEventChange[]): Promise<Map<string, AttendeeHandling>> {
    const out = new Map<string, AttendeeHandling>();
    const live = changes.filter((c) => !c.removed && c.payload);
    if (!live.length) return out;
    const ids = live.map((c) => c.id);
    const [stored, mapped, created, mailbox, eff] = await Promise.all([
      db.selectFrom('sync.event_invitation').select(['crm_id', 'handling']).where('mailbox_id', '=', mailboxId).where('crm_id', 'in', ids).execute(),
      db.selectFrom('sync.mapping').select(['crm_id', 'base']).where('mailbox_id', '=', mailboxId).where('record_type', '=', 'event').where('crm_id', 'in', ids).execute(),
      sql<{ id: string; created_at: Date }>`select id::text as id, created_at from crm.events where id = any(${ids}::uuid[])`.execute(db),
      db.selectFrom('sync.mailbox').select('enrolled_at').where('id', '=', mailboxId).executeTakeFirst(),
      policies.effective(mailboxId).catch(() => undefined),
    ]);
    const storedBy = new Map(stored.map((r) => [r.crm_id, r.handling]));
    const baseBy = new Map(mapped.map((r) => [r.crm_id, r.base]));
    const createdBy = new Map(created.rows.map((r) => [r.id, r.created_at]));
    const policy = (eff?.policy.ok ? eff.policy.value : BUILTIN_POLICY).event.invitations;
    const at = now();
    const record: Array<{ mailbox_id: string; crm_id: string; handling: AttendeeHandling; reason: string }> = [];
    for (const c of live) {
      const p = c.payload!;
      const base = baseBy.get(c.id);
      const shown = base ? handlingOf(base as unknown as EventRecord) : undefined;
      const d = decideInvitations({
        policy,
        previous: storedBy.get(c.id) ?? shown,
        // Unknown times read as no instant: the decision then mails nobody.
        crmCreatedAt: createdBy.get(c.id) ?? '',
        start: typeof p.start_at === 'string' ? p.start_at : '',
        enrolledAt: mailbox?.enrolled_at ?? '',
        now: new Date(at),
      });
      out.set(c.id, d.handling);
      const hasAttendees = Array.isArray(p.attendees) && p.attendees.length > 0;
      if (!storedBy.has(c.id) && baseBy.has(c.id) && hasAttendees) record.push({ mailbox_id: mailboxId, crm_id: c.id, handling: d.handling, reason: d.reason });
    }
    if (record.length && !opts.readOnly) {
      await db.insertInto('sync.event_invitation').values(record).onConflict((oc) => oc.columns(['mailbox_id', 'crm_id']).doNothing()).execute();
    }
    return out;
  }

  /** A meeting written to the CRM from its Outlook copy: the handling the copy shows is stored, unless one is. */
  async function recordShown(tx: Transaction<Database>, mailboxId: string, crmId: string, record: EventRecord, reason: string): Promise<void> {
    const h = handlingOf(record);
    if (!h || opts.readOnly) return;
    await tx
      .insertInto('sync.event_invitation')
      .values({ mailbox_id: mailboxId, crm_id: crmId, handling: h, reason: `${h === 'invite' ? 'written with its attendees' : 'attendees listed in the body'} ${reason}` })
      .onConflict((oc) => oc.columns(['mailbox_id', 'crm_id']).doNothing())
      .execute();
  }

  return {
    recordType: 'event',
    graph: api.client,
    ensureContainer: (upn, c) => (c.useDefault ? api.defaultCalendar(upn) : api.ensureCalendar(upn, c.name)),

    async deltaPage(upn, calendarId, link, pageSize) {
      const mailboxId = upn.toLowerCase();
      const days = await windowDays(mailboxId);
      const current = syncWindow(now(), days.pastDays, days.futureDays);
      const tag = link ? parseLink(link) : undefined;
      // A finished round over a window that has moved on: start a new round over the current window.
      const fresh = !tag || (tag.kind === 'delta' && (!tag.window || tag.window.start !== current.start || tag.window.end !== current.end));
      const window = fresh ? current : tag.window ?? current;
      const round = fresh || !tag.round ? randomBytes(6).toString('base64url') : tag.kind === 'delta' ? randomBytes(6).toString('base64url') : tag.round;
      const page = await api.deltaPage(upn, calendarId, fresh ? undefined : tag.url, window, pageSize);
      const zone = await userZone(mailboxId);
      const exWindow = await exceptionWindow(mailboxId);

      const singles = new Map<string, GraphEvent>();
      const series = new Set<string>();
      const removedIds: string[] = [];
      const index: Array<[string, string]> = [];
      for (const it of page.items) {
        if (it['@removed']) {
          removedIds.push(String(it.id));
          continue;
        }
        if ((it.type === 'occurrence' || it.type === 'exception') && it.seriesMasterId) {
          series.add(it.seriesMasterId);
          index.push([String(it.id), it.seriesMasterId]);
        } else if (it.type === 'seriesMaster') series.add(String(it.id));
        else singles.set(String(it.id), it);
      }
      // Removed ids: an occurrence of a known series means the series changed; anything else is read again.
      const removed: string[] = [];
      if (removedIds.length) {
        const known = await db
          .selectFrom('sync.event_instance')
          .select(['instance_id', 'series_id'])
          .where('mailbox_id', '=', mailboxId)
          .where('instance_id', 'in', removedIds)
          .execute();
        const bySeries = new Map(known.map((k) => [k.instance_id, k.series_id]));
        const unknown = removedIds.filter((id) => !bySeries.has(id) && !series.has(id));
        for (const s of bySeries.values()) series.add(s);
        const read = await api.getEvents(upn, unknown);
        for (const id of unknown) {
          const ev = read.get(id);
          if (!ev) removed.push(id);
          else if ((ev.type === 'occurrence' || ev.type === 'exception') && ev.seriesMasterId) series.add(ev.seriesMasterId);
          else if (ev.type === 'seriesMaster') series.add(id);
          // Still there: it left the window (moved far away); its new state is synced, not a delete.
          else singles.set(id, ev);
        }
      }
      await remember(mailboxId, index);

      const items: ExchangeDeltaItem[] = [];
      for (const [id, ev] of singles) {
        if (series.has(id)) continue;
        items.push({ id, removed: false, changeKey: ev.changeKey ?? null, payload: payloadOf(ev, zone) });
      }
      const key = (id: string) => `${mailboxId}|${round}|${id}`;
      const seriesItems = new Map<string, ExchangeDeltaItem>();
      for (const id of series) {
        const hit = cacheGet(key(id));
        if (hit) seriesItems.set(id, hit);
      }
      const unread = [...series].filter((id) => !seriesItems.has(id));
      for (const r of unread.length ? await api.readSeries(upn, unread, exWindow) : []) {
        const it = seriesItem(r, zone, exWindow);
        seriesItems.set(r.id, it);
        cachePut(key(r.id), it);
        if (r.gone) await db.deleteFrom('sync.event_instance').where('mailbox_id', '=', mailboxId).where('series_id', '=', r.id).execute();
        else await remember(mailboxId, r.instances.map((i) => [String(i.id), r.id] as [string, string]));
      }
      items.push(...seriesItems.values());
      for (const id of removed) if (!series.has(id) && !singles.has(id)) items.push({ id, removed: true, changeKey: null, payload: null });

      return {
        items,
        nextLink: page.nextLink ? tagLink(page.nextLink, { window, kind: 'next', round }) : undefined,
        deltaLink: page.deltaLink ? tagLink(page.deltaLink, { window, kind: 'delta', round }) : undefined,
      };
    },

    isComplete: (payload) => ['subject', 'start', 'end'].every((p) => p in payload),

    async markedItems(upn, calendarId) {
      return (await api.markedItems(upn, calendarId)).map((m) => ({ id: m.id, marker: { syncId: m.syncId, crmId: m.crmId } }));
    },

    exchangeRequests: {
      create(upn, calendarId, record, marker, category) {
        const body = toGraphMeeting(record, listedInBody(record));
        if (!body.recurrence) delete body.recurrence;
        return api.createRequest(upn, calendarId, { ...body, categories: category ? [category] : [] }, marker);
      },
      findBySyncId: (upn, calendarId, syncId) => api.findBySyncIdRequest(upn, calendarId, syncId),
      // Categories are left as they are: the user's own and the marking one stay. Attendees are sent only when
      // neither the record nor the Outlook copy lists them in the body: a copy showing the list keeps it (no
      // write of `attendees` can then invite or cancel anybody), whatever the CRM side says.
      update(upn, _calendarId, id, record, changeKey, previous) {
        const inBody = listedInBody(record) || (!!previous && listedInBody(previous));
        const body = previous ? changedProperties(toGraphMeeting(record, inBody), toGraphMeeting(previous, inBody)) : toGraphMeeting(record, inBody);
        return api.updateRequest(upn, id, body, changeKey);
      },
      delete: (upn, _calendarId, id, changeKey) => api.deleteRequest(upn, id, changeKey),
      get: (upn, _calendarId, id) => api.getRequest(upn, id),
    },
    itemOf: item,
    foundOf(body) {
      const first = (body as { value?: unknown[] } | undefined)?.value?.[0];
      return first ? item(first) : undefined;
    },

    async afterWrite(upn, _calendarId, written, record, kind) {
      if (!record.recurrence) return written;
      // A new series has no exceptions of its own: only the record's are to be made.
      if (kind === 'create' && !record.exceptions?.length) return written;
      const window = await exceptionWindow(upn.toLowerCase());
      const instances = await api.instances(upn, written.id, window);
      const writes = planInstanceWrites(record, instances, window);
      for (const w of writes) {
        try {
          if (w.kind === 'delete') await api.deleteInstance(upn, w.instanceId);
          else if (w.kind === 'patch') await api.patchInstance(upn, w.instanceId, w.body);
        } catch (err) {
          // Throttling and outages: the operation is retried (and this runs again). An occurrence Graph refuses
          // (400, 404) is left as it is: the next round reads the series as it is and brings the CRM in line.
          const g = classifyGraphError(err);
          if (g.kind !== 'bad-item' && g.kind !== 'not-found' && g.kind !== 'precondition-failed') throw err;
        }
      }
      if (!writes.some((w) => w.kind !== 'cannot-restore')) return written;
      // Occurrence writes may give the master a new change key; the mapping keeps the current one.
      const fresh = (await api.getEvents(upn, [written.id])).get(written.id);
      return fresh ? item(fresh) : written;
    },

    fromExchange: (payload) => fromGraphMeeting(payload),
    exchangeModifiedAt: (payload) => payload.lastModifiedDateTime as string | undefined,

    async crmChanges({ ownerId, mailboxId, after, scope }) {
      if (scope && scope !== 'owned') throw new Error(`the CRM event feed serves the user's own events only (scope ${scope})`);
      const w = await windowDays(mailboxId);
      const page = await crm.changes({
        ownerId,
        mailboxId,
        after,
        entryWindow: crmEntryWindow(now(), w.pastDays, w.futureDays),
        exceptionWindow: syncWindow(now(), w.pastDays, w.futureDays),
      });
      const handling = await attendeeHandling(mailboxId, page.changes);
      return {
        changes: page.changes.map((c) => ({
          id: c.id, removed: c.removed, leftScope: c.leftScope, hardDeleted: c.hardDeleted, version: c.version, updatedAt: c.updatedAt,
          payload: c.payload && handling.has(c.id) ? { ...c.payload, [ATTENDEE_HANDLING_KEY]: handling.get(c.id) } : c.payload,
        })),
        watermark: page.watermark,
      };
    },
    crmExisting: (ids) => crm.existing(ids),
    fromCrm(payload) {
      const r = fromCrmEvent(payload as CrmEventPayload);
      const h = payload[ATTENDEE_HANDLING_KEY];
      return r.ok ? ok(withHandling(r.value, h === 'invite' || h === 'list-in-body' ? h : undefined)) : r;
    },
    async createInCrm(tx, mailboxId, id, ownerId, record) {
      await crmEventWrites.create(tx, mailboxId, id, ownerId, record);
      // A meeting from Outlook: how its copy shows its attendees is how they were handled.
      await recordShown(tx, mailboxId, id, record, 'as its Outlook copy shows');
    },
    crmPrecondition: (tx, id, guard) => crmPrecondition(tx, 'event', id, guard),
    crmUndelete: (tx, mailboxId, id) => undeleteRow(tx, 'event', mailboxId, id),
    crmVersion: txVersion,
    crmRewind: rewindWatermark,
    async updateInCrm(tx, mailboxId, id, record) {
      const found = await crmEventWrites.update(tx, mailboxId, id, record, await exceptionWindow(mailboxId));
      if (found) await recordShown(tx, mailboxId, id, record, 'as its Outlook copy shows');
      return found;
    },
    deleteInCrm: (tx, mailboxId, id) => crmEventWrites.delete(tx, mailboxId, id),
    label: eventLabel,
  };
}

export { markerOf };
