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
 */
import type { Kysely } from 'kysely';
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
  toGraphEvent,
  type CrmEventPayload,
  type EventRecord,
  type GraphEvent,
  type SyncWindow,
} from '../../domain/event';
import { BUILTIN_POLICY } from '../../domain/policy';
import { PostgresCrmEvents, crmEntryWindow, crmEventWrites } from '../crm/postgres-crm-events';
import { EventsApi, markerOf, type SeriesRead } from '../exchange/events-api';
import { classifyGraphError } from '../exchange/errors';
import { changedProperties } from '../../domain/patch';
import { crmPrecondition, rewindWatermark, txVersion, undeleteRow } from '../crm/postgres-crm';
import type { ExchangeDeltaItem, ExchangeItem, RecordTypeAdapter } from './adapter';
import { graphPayload } from './contacts';

/** The Graph properties fromGraphEvent reads, plus those the scope rules read (categories, sensitivity). */
export const EVENT_READ_PROPERTIES = ['subject', 'start', 'end', 'isAllDay', 'attendees', 'location', 'sensitivity', 'categories'] as const;

export interface EventsAdapterOptions {
  /** The clock the sync window is computed from (tests move it). */
  now?: () => number;
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
    return { ...p, bodyText: bodyText(ev.body) ?? '', ...(zone ? { cxsyncUserZone: zone } : {}), ...extra };
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
        const body = toGraphEvent(record);
        if (!body.recurrence) delete body.recurrence;
        return api.createRequest(upn, calendarId, { ...body, categories: category ? [category] : [] }, marker);
      },
      findBySyncId: (upn, calendarId, syncId) => api.findBySyncIdRequest(upn, calendarId, syncId),
      // Categories are left as they are: the user's own and the marking one stay.
      update: (upn, _calendarId, id, record, changeKey, previous) => api.updateRequest(upn, id, previous ? changedProperties(toGraphEvent(record), toGraphEvent(previous)) : toGraphEvent(record), changeKey),
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

    fromExchange: (payload) => fromGraphEvent(payload as GraphEvent),
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
      return { changes: page.changes.map((c) => ({ id: c.id, removed: c.removed, leftScope: c.leftScope, hardDeleted: c.hardDeleted, version: c.version, payload: c.payload, updatedAt: c.updatedAt })), watermark: page.watermark };
    },
    crmExisting: (ids) => crm.existing(ids),
    fromCrm: (payload) => fromCrmEvent(payload as CrmEventPayload),
    async createInCrm(tx, mailboxId, id, ownerId, record) {
      await crmEventWrites.create(tx, mailboxId, id, ownerId, record);
    },
    crmPrecondition: (tx, id, guard) => crmPrecondition(tx, 'event', id, guard),
    crmUndelete: (tx, mailboxId, id) => undeleteRow(tx, 'event', mailboxId, id),
    crmVersion: txVersion,
    crmRewind: rewindWatermark,
    async updateInCrm(tx, mailboxId, id, record) {
      return crmEventWrites.update(tx, mailboxId, id, record, await exceptionWindow(mailboxId));
    },
    deleteInCrm: (tx, mailboxId, id) => crmEventWrites.delete(tx, mailboxId, id),
    label: eventLabel,
  };
}

export { markerOf };
