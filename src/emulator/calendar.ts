/**
 * Graph's calendar surface under /users/{u}: calendars, events (single, series masters, occurrences,
 * exceptions), calendarView, calendarView/delta and event instances; `Prefer: outlook.timezone` and
 * `outlook.body-content-type`; idempotent creates by transactionId. Reached from graph.ts's handleGraph, so
 * throttling, faults, counting and $batch apply as for contacts.
 */
import { INITIAL_ROUND } from './delta';
import {
  calendarDeltaPage,
  calendarState,
  calendarView,
  cancelOccurrence,
  createCalendar,
  createEvent,
  deleteCalendar,
  deleteEvent,
  findByTransactionId,
  findCalendar,
  instantOf,
  instancesInWindow,
  masterInstance,
  occurrenceId,
  occurrenceInstance,
  parseOccurrenceId,
  renameCalendar,
  roundKey,
  updateEvent,
  updateOccurrence,
  type Calendar,
  type CalendarState,
  type DeltaCursor,
  type EventTime,
  type EventWrite,
  type Instance,
  type StoredEvent,
  type Window,
} from './calendar-store';
import { GraphHttpError, badRequest, notFound } from './errors';
import { clearSentMessages, organizedBy, recordCancel, recordCreate, recordUpdate, sentMessages, type MeetingView, type SentMessage } from './meeting-messages';
import { appliedHeader, badValue, checkIfMatch, parseDateTimeTimeZone, preferences, unknownProperty, type Prefs } from './outlook-common';
import { parseExpand, parseItemFilter, parseSelect, selectAndExpand } from './query';
import { parseRecurrence } from './recurrence';
import { methodNotAllowed, noResource, ok, pageOf, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import type { ExtendedProperty, Mailbox, Store } from './store';
import { formatInstant, formatWall, instantToWall, parseDateTime, zoneOrThrow } from './timezones';

const ROOTS = new Set(['calendars', 'calendar', 'events', 'calendarview']);

/** Whether handleCalendar serves paths starting with this segment (lower-cased). */
export function isCalendarRoot(segment: string | undefined): boolean {
  return segment !== undefined && ROOTS.has(segment);
}

/** Entry point from handleGraph: `rest` is the path after /users/{u}, decoded. */
export function handleCalendar(ctx: GraphContext, req: GraphRequest, mb: Mailbox, rest: string[]): GraphResponse {
  const r0 = rest[0].toLowerCase();
  const state = calendarState(ctx.store, mb);
  const m = req.method;
  const r1 = rest[1]?.toLowerCase();

  if (r0 === 'calendars') {
    if (rest.length === 1) {
      if (m === 'GET') return listCalendars(ctx, req, mb, state);
      if (m === 'POST') return { status: 201, body: renderCalendar(mb, createCalendar(ctx.store, state, calendarName(req.body))) };
      throw methodNotAllowed();
    }
    const cal = findCalendar(state, rest[1]);
    return calendarRoutes(ctx, req, mb, state, cal, rest.slice(2));
  }
  if (r0 === 'calendar') return calendarRoutes(ctx, req, mb, state, state.calendars[state.defaultCalendarId], rest.slice(1));
  if (r0 === 'calendarview') {
    if (rest.length === 1) return view(ctx, req, mb, state, state.defaultCalendarId);
    if (rest.length === 2 && r1 === 'delta') return delta(ctx, req, mb, state, state.defaultCalendarId);
    throw noResource(rest[1]);
  }
  return events(ctx, req, mb, state, undefined, rest.slice(1));
}

function calendarRoutes(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: CalendarState, cal: Calendar, rest: string[]): GraphResponse {
  const m = req.method;
  if (rest.length === 0) {
    if (m === 'GET') return ok(renderCalendar(mb, cal));
    if (m === 'PATCH') return ok(renderCalendar(mb, renameCalendar(ctx.store, state, cal.id, calendarName(req.body))));
    if (m === 'DELETE') {
      deleteCalendar(ctx.store, mb, state, cal.id);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  const s = rest[0].toLowerCase();
  if (s === 'events') return events(ctx, req, mb, state, cal.id, rest.slice(1));
  if (s === 'calendarview') {
    if (rest.length === 1) return view(ctx, req, mb, state, cal.id);
    if (rest.length === 2 && rest[1].toLowerCase() === 'delta') return delta(ctx, req, mb, state, cal.id);
  }
  throw noResource(rest[rest.length - 1]);
}

// ---- calendars -----------------------------------------------------------------------------------

function calendarName(body: unknown): string {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['name', 'color', 'id', '@odata.type', 'hexColor'].includes(k)) throw unknownProperty(k, 'microsoft.graph.calendar');
  }
  if (typeof b.name !== 'string' || !b.name.trim()) throw badRequest('ErrorInvalidRequest', 'The calendar name is missing.');
  return b.name;
}

function renderCalendar(mb: Mailbox, c: Calendar): Record<string, unknown> {
  return {
    '@odata.etag': `W/"${c.changeKey}"`,
    id: c.id,
    name: c.name,
    color: c.color,
    hexColor: c.hexColor,
    isDefaultCalendar: c.isDefault,
    changeKey: c.changeKey,
    canShare: true,
    canViewPrivateItems: true,
    canEdit: true,
    allowedOnlineMeetingProviders: ['teamsForBusiness'],
    defaultOnlineMeetingProvider: 'teamsForBusiness',
    isTallyingResponses: true,
    isRemovable: !c.isDefault,
    owner: { name: mb.displayName, address: mb.upn },
  };
}

function listCalendars(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: CalendarState): GraphResponse {
  const filter = parseItemFilter(req.query.get('$filter'));
  const all = Object.values(state.calendars).filter((c) => !filter || filter({ fields: { name: c.name }, ext: {} }));
  return pageOf(ctx, req, all.map((c) => renderCalendar(mb, c)), `users('${mb.upn}')/calendars`);
}

// ---- event bodies --------------------------------------------------------------------------------

const ENUMS: Record<string, string[]> = {
  sensitivity: ['normal', 'personal', 'private', 'confidential'],
  showAs: ['free', 'tentative', 'busy', 'oof', 'workingElsewhere', 'unknown'],
  importance: ['low', 'normal', 'high'],
};
const BOOLEANS = new Set(['isReminderOn', 'responseRequested', 'allowNewTimeProposals', 'hideAttendees', 'isOnlineMeeting']);
const READ_ONLY = new Set([
  'id', 'changeKey', 'createdDateTime', 'lastModifiedDateTime', '@odata.type', '@odata.etag', '@odata.context', 'iCalUId', 'uid', 'type',
  'seriesMasterId', 'originalStart', 'originalStartTimeZone', 'originalEndTimeZone', 'bodyPreview', 'hasAttachments', 'isOrganizer',
  'webLink', 'responseStatus', 'onlineMeeting', 'onlineMeetingUrl', 'isDraft', 'occurrenceId', 'calendar@odata.navigationLink',
  'calendar@odata.associationLink',
]);
const ATTENDEE_TYPES = ['required', 'optional', 'resource'];
const RESPONSES = ['none', 'organizer', 'tentativelyAccepted', 'accepted', 'declined', 'notResponded'];

function enumValue(name: string, v: unknown, allowed: string[]): string {
  const hit = allowed.find((a) => a.toLowerCase() === String(v).toLowerCase());
  if (typeof v !== 'string' || !hit) throw badRequest('RequestBodyRead', `Requested value '${String(v)}' was not found for property '${name}'.`);
  return hit;
}

function parseEmailAddress(v: unknown, name: string): { name: string | null; address: string | null } {
  if (!v || typeof v !== 'object') throw badValue(name, 'microsoft.graph.emailAddress');
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) if (k !== 'address' && k !== 'name' && k !== '@odata.type') throw unknownProperty(k, 'microsoft.graph.emailAddress');
  if ((e.address != null && typeof e.address !== 'string') || (e.name != null && typeof e.name !== 'string')) throw badValue(name, 'Edm.String');
  const address = (e.address as string | undefined) ?? null;
  return { name: (e.name as string | undefined) ?? address, address };
}

function parseExtendedProperties(v: unknown): ExtendedProperty[] {
  if (!Array.isArray(v)) throw badValue('singleValueExtendedProperties', 'Collection(microsoft.graph.singleValueLegacyExtendedProperty)');
  return v.map((p: unknown) => {
    const { id, value } = (p ?? {}) as { id?: unknown; value?: unknown };
    if (typeof id !== 'string' || !/^(String|Integer|Boolean|SystemTime|Guid|Long|Double) (\{[0-9a-f-]{36}\} (Name|Id) .+|0x[0-9a-f]+)$/i.test(id)) {
      throw new GraphHttpError(400, 'ErrorInvalidExtendedPropertyValue', `The extended property id '${String(id)}' is not valid.`);
    }
    if (typeof value !== 'string') throw badValue('value', 'Edm.String');
    return { id, value };
  });
}

interface ParseOptions {
  /** The mailbox user acting (admin API): may set organizer, isCancelled and attendee responses. */
  asUser?: boolean;
  /** Attendees already on the event: their response status survives an app's rewrite of the list. */
  existingAttendees?: Array<Record<string, unknown>>;
  /** The zone a recurrence defaults to when the body has no start (PATCH): the event's start zone. */
  defaultTimeZone?: string;
}

export function parseEventBody(body: unknown, opts: ParseOptions = {}): EventWrite {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('RequestBodyRead', 'The request body must be a JSON object.');
  const fields: Record<string, unknown> = {};
  const w: EventWrite = { fields, ext: [] };
  let startTz: string | undefined;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    // Server-owned properties and OData annotations are accepted and ignored, as Graph does.
    if (READ_ONLY.has(k) || k.includes('@odata.')) continue;
    if (k === 'subject') {
      if (v != null && typeof v !== 'string') throw badValue(k, 'Edm.String');
      fields.subject = v ?? '';
    } else if (k in ENUMS) {
      fields[k] = enumValue(k, v, ENUMS[k]);
    } else if (BOOLEANS.has(k)) {
      if (typeof v !== 'boolean') throw badValue(k, 'Edm.Boolean');
      fields[k] = v;
    } else if (k === 'reminderMinutesBeforeStart') {
      if (!Number.isInteger(v)) throw badValue(k, 'Edm.Int32');
      fields[k] = v;
    } else if (k === 'body') {
      const b = (v ?? {}) as Record<string, unknown>;
      for (const bk of Object.keys(b)) if (bk !== 'content' && bk !== 'contentType' && bk !== '@odata.type') throw unknownProperty(bk, 'microsoft.graph.itemBody');
      fields.body = { contentType: b.contentType === undefined ? 'text' : enumValue('contentType', b.contentType, ['text', 'html']), content: typeof b.content === 'string' ? b.content : '' };
    } else if (k === 'location') {
      if (v !== null && (typeof v !== 'object' || Array.isArray(v))) throw badValue(k, 'microsoft.graph.location');
      const l = (v ?? {}) as Record<string, unknown>;
      // A location is written whole (what the request leaves out is gone); its optional link and address are kept
      // as given (location.md: locationUri, locationEmailAddress, address, coordinates).
      fields.location = {
        displayName: typeof l.displayName === 'string' ? l.displayName : '',
        locationType: l.locationType ?? 'default',
        uniqueIdType: 'unknown',
        address: l.address ?? {},
        coordinates: l.coordinates ?? {},
        ...(typeof l.locationUri === 'string' ? { locationUri: l.locationUri } : {}),
        ...(typeof l.locationEmailAddress === 'string' ? { locationEmailAddress: l.locationEmailAddress } : {}),
      };
      if (!('locations' in (body as object))) fields.locations = l.displayName ? [fields.location] : [];
    } else if (k === 'locations') {
      if (!Array.isArray(v)) throw badValue(k, 'Collection(microsoft.graph.location)');
      fields.locations = v;
    } else if (k === 'categories') {
      if (!Array.isArray(v) || v.some((c) => typeof c !== 'string')) throw badValue(k, 'Collection(Edm.String)');
      fields.categories = v;
    } else if (k === 'attendees') {
      if (!Array.isArray(v)) throw badValue(k, 'Collection(microsoft.graph.attendee)');
      fields.attendees = v.map((a: unknown) => {
        if (!a || typeof a !== 'object') throw badValue(k, 'microsoft.graph.attendee');
        const at = a as Record<string, unknown>;
        for (const ak of Object.keys(at)) {
          if (!['emailAddress', 'type', 'status', 'proposedNewTime', '@odata.type'].includes(ak)) throw unknownProperty(ak, 'microsoft.graph.attendee');
        }
        const emailAddress = parseEmailAddress(at.emailAddress, 'emailAddress');
        const type = at.type === undefined ? 'required' : enumValue('type', at.type, ATTENDEE_TYPES);
        const prior = opts.existingAttendees?.find(
          (x) => ((x.emailAddress as { address?: string }).address ?? '').toLowerCase() === (emailAddress.address ?? '').toLowerCase(),
        )?.status as Record<string, unknown> | undefined;
        let status = prior ?? { response: 'none', time: '0001-01-01T00:00:00Z' };
        // Responses come from attendees; an app writing the list cannot set them, the user (admin API) can.
        if (opts.asUser && at.status && typeof at.status === 'object') {
          const s = at.status as Record<string, unknown>;
          status = { response: enumValue('response', s.response ?? 'none', RESPONSES), time: typeof s.time === 'string' ? s.time : new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
        }
        return { type, status, emailAddress };
      });
    } else if (k === 'organizer') {
      const o = (v ?? {}) as Record<string, unknown>;
      // Exchange makes the mailbox owner the organizer of what an app creates; only the user's side sets another.
      if (opts.asUser) fields.organizer = { emailAddress: parseEmailAddress(o.emailAddress, 'emailAddress') };
    } else if (k === 'isCancelled') {
      if (typeof v !== 'boolean') throw badValue(k, 'Edm.Boolean');
      if (opts.asUser) fields.isCancelled = v;
    } else if (k === 'onlineMeetingProvider') {
      fields[k] = v;
    } else if (k === 'start' || k === 'end') {
      const t = parseDateTimeTimeZone(v, k);
      w[k] = t;
      if (k === 'start') startTz = t.timeZone;
    } else if (k === 'isAllDay') {
      if (typeof v !== 'boolean') throw badValue(k, 'Edm.Boolean');
      w.isAllDay = v;
    } else if (k === 'recurrence') {
      w.recurrence = v === null ? null : parseRecurrence(v, startTz ?? parseStartTz(body) ?? opts.defaultTimeZone ?? 'UTC');
    } else if (k === 'transactionId') {
      if (v !== null && typeof v !== 'string') throw badValue(k, 'Edm.String');
      if (v) w.transactionId = v as string;
    } else if (k === 'singleValueExtendedProperties') {
      w.ext = parseExtendedProperties(v);
    } else if (k === 'multiValueExtendedProperties' || k === 'extensions' || k === 'attachments') {
      throw badRequest('ErrorInvalidRequest', `Setting '${k}' is not supported by this emulator.`);
    } else {
      throw unknownProperty(k, 'microsoft.graph.event');
    }
  }
  if (w.recurrence) zoneOrThrow(w.recurrence.range.recurrenceTimeZone);
  return w;
}

function parseStartTz(body: unknown): string | undefined {
  const s = (body as { start?: { timeZone?: unknown } }).start;
  return typeof s?.timeZone === 'string' && s.timeZone ? s.timeZone : undefined;
}

// ---- event rendering -----------------------------------------------------------------------------

const FIELD_DEFAULTS: Array<[string, unknown]> = [
  ['reminderMinutesBeforeStart', 15],
  ['isReminderOn', true],
  ['subject', ''],
  ['importance', 'normal'],
  ['sensitivity', 'normal'],
  ['isCancelled', false],
  ['responseRequested', true],
  ['showAs', 'busy'],
  ['isOnlineMeeting', false],
  ['onlineMeetingProvider', 'unknown'],
  ['allowNewTimeProposals', true],
  ['hideAttendees', false],
];

function htmlToText(html: string): string {
  return html
    .replace(/<(br|\/p|\/div)\s*\/?>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .trim();
}

function textToHtml(text: string): string {
  const esc = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r?\n/g, '<br>\r\n');
  return `<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n<body>\r\n${esc}\r\n</body>\r\n</html>\r\n`;
}

/** Exchange keeps event bodies as HTML: a text body comes back wrapped, unless the client prefers text. */
function renderBody(stored: { contentType: string; content: string } | undefined, asText: boolean): { contentType: string; content: string } {
  const b = stored ?? { contentType: 'html', content: '' };
  if (asText) return { contentType: 'text', content: b.contentType === 'html' ? htmlToText(b.content) : b.content };
  return { contentType: 'html', content: b.contentType === 'text' ? (b.content ? textToHtml(b.content) : '') : b.content };
}

export interface RenderOptions {
  zoneName: string;
  zone: string;
  bodyText: boolean;
  select?: string[];
  expandExt?: string[] | '*';
}

function renderTime(t: EventTime, instant: number, isAllDay: boolean, opts: RenderOptions): { dateTime: string; timeZone: string } {
  // All-day events float: the same dates in every zone.
  return { dateTime: formatWall(isAllDay ? t.wall : instantToWall(opts.zone, instant)), timeZone: opts.zoneName };
}

export function renderInstance(mb: Mailbox, inst: Instance, opts: RenderOptions): Record<string, unknown> {
  const ev = inst.event;
  const ov = inst.override;
  const f = { ...ev.fields, ...(ov?.fields ?? {}) } as Record<string, unknown>;
  const isMaster = inst.type === 'singleInstance' || inst.type === 'seriesMaster';
  const changeKey = ov && !ov.cancelled ? ov.changeKey : ev.changeKey;
  const organizer = (f.organizer as { emailAddress: { address: string | null } } | undefined) ?? { emailAddress: { name: mb.displayName, address: mb.upn } };
  const isOrganizer = (organizer.emailAddress.address ?? '').toLowerCase() === mb.upn.toLowerCase();
  const body = renderBody(f.body as { contentType: string; content: string } | undefined, opts.bodyText);
  const previewSource = f.body as { contentType: string; content: string } | undefined;
  const preview = previewSource ? (previewSource.contentType === 'html' ? htmlToText(previewSource.content) : previewSource.content).slice(0, 255) : '';
  const full: Record<string, unknown> = {
    '@odata.etag': `W/"${changeKey}"`,
    id: inst.id,
    createdDateTime: ev.createdDateTime,
    lastModifiedDateTime: ov && !ov.cancelled ? ov.lastModifiedDateTime : ev.lastModifiedDateTime,
    changeKey,
    categories: f.categories ?? [],
    ...(isMaster && ev.transactionId ? { transactionId: ev.transactionId } : {}),
    originalStartTimeZone: ev.start.timeZone,
    originalEndTimeZone: ev.end.timeZone,
    iCalUId: isMaster || inst.day === undefined ? ev.iCalUId : ev.iCalUId.slice(0, -8) + (inst.day >>> 0).toString(16).toUpperCase().padStart(8, '0'),
  };
  for (const [k, d] of FIELD_DEFAULTS) full[k] = k in f ? f[k] : d;
  Object.assign(full, {
    hasAttachments: false,
    bodyPreview: preview,
    isAllDay: ev.isAllDay,
    isOrganizer,
    seriesMasterId: isMaster ? null : ev.id,
    type: inst.type,
    webLink: `https://outlook.office365.com/owa/?itemid=${encodeURIComponent(inst.id)}&exvsurl=1&path=/calendar/item`,
    onlineMeetingUrl: null,
    isDraft: false,
    responseStatus: { response: isOrganizer ? 'organizer' : 'none', time: '0001-01-01T00:00:00Z' },
    body,
    start: renderTime(inst.start, inst.startInstant, ev.isAllDay, opts),
    end: renderTime(inst.end, inst.endInstant, ev.isAllDay, opts),
    location: f.location ?? { displayName: '', locationType: 'default', uniqueIdType: 'unknown', address: {}, coordinates: {} },
    locations: f.locations ?? [],
    recurrence: inst.type === 'seriesMaster' ? ev.recurrence : null,
    attendees: f.attendees ?? [],
    organizer,
    onlineMeeting: null,
  });
  if (inst.originalStartInstant !== undefined) full.originalStart = formatInstant(inst.originalStartInstant);
  return selectAndExpand(full, full, ev.ext, opts);
}

const KNOWN_SELECT = new Set([
  'id', 'createdDateTime', 'lastModifiedDateTime', 'changeKey', 'categories', 'transactionId', 'originalStartTimeZone', 'originalEndTimeZone',
  'iCalUId', 'hasAttachments', 'bodyPreview', 'isAllDay', 'isOrganizer', 'seriesMasterId', 'type', 'webLink', 'onlineMeetingUrl', 'isDraft',
  'responseStatus', 'body', 'start', 'end', 'location', 'locations', 'recurrence', 'attendees', 'organizer', 'onlineMeeting', 'originalStart',
  ...FIELD_DEFAULTS.map(([k]) => k),
]);

function renderOptions(req: GraphRequest, p: Prefs, allowSelectExpand = true): RenderOptions {
  const select = parseSelect(req.query.get('$select'));
  if (select && !allowSelectExpand) throw badRequest('ErrorInvalidUrlQuery', '$select is not supported on this request.');
  for (const s of select ?? []) if (!KNOWN_SELECT.has(s)) throw badRequest('RequestBroker--ParseUri', `Could not find a property named '${s}' on type 'microsoft.graph.event'.`);
  return { zoneName: p.zoneName, zone: p.zone, bodyText: p.bodyText, select, expandExt: parseExpand(req.query.get('$expand')) };
}

// ---- events --------------------------------------------------------------------------------------

/** Resolves an event or occurrence id; a calendar scope limits it to that calendar. */
function resolveEvent(state: CalendarState, id: string, calendarId?: string): { ev: StoredEvent; day?: number } {
  const direct = state.events[id];
  if (direct) {
    if (calendarId && direct.calendarId !== calendarId) throw notFound();
    return { ev: direct };
  }
  const occ = parseOccurrenceId(id);
  const master = occ && state.events[occ.masterId];
  if (!occ || !master || !master.recurrence || (calendarId && master.calendarId !== calendarId)) throw notFound();
  return { ev: master, day: occ.day };
}

function sameEvent(ev: StoredEvent, w: EventWrite): boolean {
  return (
    (ev.fields.subject ?? '') === (w.fields.subject ?? '') &&
    !!w.start &&
    !!w.end &&
    instantOf(ev.start) === instantOf(w.start) &&
    instantOf(ev.end) === instantOf(w.end) &&
    ev.isAllDay === (w.isAllDay ?? false)
  );
}

/** The properties a write request sets: what decides which messages Exchange sends (meeting-messages.ts). */
function settableKeys(body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  return Object.keys(body).filter((k) => !READ_ONLY.has(k) && !k.includes('@odata.'));
}

/** An instance's fields as its attendees see them: the series' own, overridden by the occurrence's. */
function viewOf(inst: Instance): MeetingView {
  return { fields: { ...inst.event.fields, ...(inst.override?.fields ?? {}) } };
}

/** A series' modified occurrences: event-update.md says an update of the master mails one notification per each. */
function separatelyUpdated(ev: StoredEvent): Array<{ id: string; subject: string }> {
  return Object.entries(ev.exceptions)
    .filter(([, ov]) => !ov.cancelled)
    .map(([d, ov]) => ({ id: occurrenceId(ev.id, Number(d)), subject: String(ov.fields.subject ?? ev.fields.subject ?? '') }));
}

/** DELETE or cancel of an event (day undefined) or one occurrence; the organizer's attendees get a cancellation. */
function removeEvent(store: Store, state: CalendarState, mb: Mailbox, ev: StoredEvent, day: number | undefined, comment?: string): void {
  if (day === undefined) {
    recordCancel(state, mb, ev.id, ev, comment);
    deleteEvent(store, state, ev);
    return;
  }
  const inst = occurrenceInstance(ev, day);
  if (!inst) throw notFound();
  recordCancel(state, mb, inst.id, viewOf(inst), comment);
  cancelOccurrence(store, state, ev, day);
}

function cancelComment(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('RequestBodyRead', 'The request body must be a JSON object.');
  let comment: string | undefined;
  for (const [k, v] of Object.entries(body)) {
    // The documented example writes "Comment"; parameter names are matched case-insensitively.
    if (k.toLowerCase() !== 'comment') throw badRequest('RequestBodyRead', `The parameter '${k}' in the request payload is not a valid parameter for the operation 'cancel'.`);
    if (v !== null && typeof v !== 'string') throw badValue(k, 'Edm.String');
    comment = v ?? undefined;
  }
  return comment;
}

/** Creates an event, or returns the one a previous POST with the same transactionId created. */
export function createOrFindEvent(store: Store, state: CalendarState, calendarId: string, w: EventWrite): StoredEvent {
  if (w.transactionId) {
    const existing = findByTransactionId(state, w.transactionId);
    if (existing) {
      if (existing.calendarId === calendarId && sameEvent(existing, w)) return existing;
      throw new GraphHttpError(400, 'ErrorDuplicateTransactionId', "Your request can't be completed. The TransactionId specified in the request has already been used to create a different event.");
    }
  }
  return createEvent(store, state, calendarId, w);
}

function events(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: CalendarState, scope: string | undefined, rest: string[]): GraphResponse {
  const m = req.method;
  const p = preferences(req);
  const headers = appliedHeader(p, false);
  const calendarId = scope ?? state.defaultCalendarId;
  if (rest.length === 0) {
    if (m === 'GET') {
      const opts = renderOptions(req, p);
      const filter = parseItemFilter(req.query.get('$filter'));
      const list = Object.values(state.events)
        .filter((ev) => ev.calendarId === calendarId)
        .filter((ev) => !filter || filter({ fields: { ...ev.fields, transactionId: ev.transactionId }, ext: ev.ext }))
        .map((ev) => renderInstance(mb, masterInstance(ev), opts));
      const ctxPath = scope ? `users('${mb.upn}')/calendars('${scope}')/events` : `users('${mb.upn}')/events`;
      return pageOf(ctx, req, list, ctxPath, headers);
    }
    if (m === 'POST') {
      const w = parseEventBody(req.body);
      // A repeated transactionId answers with the first event: nothing new is sent.
      const repeated = w.transactionId ? findByTransactionId(state, w.transactionId) : undefined;
      const ev = createOrFindEvent(ctx.store, state, calendarId, w);
      if (!repeated) recordCreate(state, mb, ev.id, ev);
      return { status: 201, body: renderInstance(mb, masterInstance(ev), { ...renderOptions(req, p), expandExt: w.ext.length ? '*' : undefined }), headers };
    }
    throw methodNotAllowed();
  }
  const { ev, day } = resolveEvent(state, rest[0], scope);
  if (rest.length === 1) {
    if (m === 'GET') {
      const inst = day === undefined ? masterInstance(ev) : occurrenceInstance(ev, day);
      if (!inst) throw notFound();
      return ok(renderInstance(mb, inst, renderOptions(req, p)), headers);
    }
    if (m === 'PATCH') {
      if (day === undefined) {
        checkIfMatch(req, ev.changeKey);
        const w = parseEventBody(req.body, { existingAttendees: ev.fields.attendees as Array<Record<string, unknown>> | undefined, defaultTimeZone: ev.start.timeZone });
        const before: MeetingView = { fields: { ...ev.fields } };
        const updated = updateEvent(ctx.store, state, ev, w);
        recordUpdate(state, mb, ev.id, before, updated, settableKeys(req.body), separatelyUpdated(updated));
        return ok(renderInstance(mb, masterInstance(updated), renderOptions(req, p)), headers);
      }
      const current = occurrenceInstance(ev, day);
      if (!current) throw notFound();
      checkIfMatch(req, current.override?.changeKey ?? ev.changeKey);
      const existingAttendees = (current.override?.fields.attendees ?? ev.fields.attendees) as Array<Record<string, unknown>> | undefined;
      const w = parseEventBody(req.body, { existingAttendees });
      const before = viewOf(current);
      const updated = updateOccurrence(ctx.store, state, ev, day, w);
      recordUpdate(state, mb, updated.id, before, viewOf(updated), settableKeys(req.body));
      return ok(renderInstance(mb, updated, renderOptions(req, p)), headers);
    }
    if (m === 'DELETE') {
      const current = day === undefined ? masterInstance(ev) : occurrenceInstance(ev, day);
      if (!current) throw notFound();
      checkIfMatch(req, current.override?.changeKey ?? ev.changeKey);
      removeEvent(ctx.store, state, mb, ev, day);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  if (rest.length === 2 && rest[1].toLowerCase() === 'cancel') {
    if (m !== 'POST') throw methodNotAllowed();
    const comment = cancelComment(req.body);
    const inst = day === undefined ? masterInstance(ev) : occurrenceInstance(ev, day);
    if (!inst) throw notFound();
    // event-cancel.md: "An attendee calling this action gets an error (HTTP 400 Bad Request)".
    if (!organizedBy(mb, viewOf(inst))) throw badRequest('ErrorInvalidRequest', "Your request can't be completed. You need to be an organizer to cancel a meeting.");
    removeEvent(ctx.store, state, mb, ev, day, comment);
    // event-cancel.md: "If successful, this method returns 202 Accepted", and moves the event to Deleted Items.
    return { status: 202 };
  }
  if (rest.length === 2 && rest[1].toLowerCase() === 'instances') {
    if (m !== 'GET') throw methodNotAllowed();
    if (day !== undefined) return pageOf(ctx, req, [], `Collection(event)`, headers);
    const w = windowOf(req);
    const opts = renderOptions(req, p);
    const list = ev.recurrence ? instancesInWindow(ev, w).map((i) => renderInstance(mb, i, opts)) : [];
    return pageOf(ctx, req, list, `users('${mb.upn}')/events('${ev.id}')/instances`, headers);
  }
  throw noResource(rest[rest.length - 1]);
}

// ---- calendarView --------------------------------------------------------------------------------

const needsWindow = () =>
  new GraphHttpError(400, 'ErrorInvalidParameter', 'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.');

/** startDateTime/endDateTime (names case-insensitive); without an offset a value is UTC. */
export function windowOf(req: GraphRequest): Window {
  let s: string | undefined;
  let e: string | undefined;
  for (const [k, v] of req.query) {
    if (k.toLowerCase() === 'startdatetime') s = v;
    if (k.toLowerCase() === 'enddatetime') e = v;
  }
  if (!s || !e) throw needsWindow();
  const toInstant = (v: string): number => {
    const p = parseDateTime(v) ?? (/^\d{4}-\d{2}-\d{2}$/.test(v) ? parseDateTime(`${v}T00:00:00`) : undefined);
    if (!p) throw badRequest('ErrorInvalidParameter', `The value '${v}' of parameter 'StartDateTime/EndDateTime' is not a valid date-time.`);
    return 'wall' in p ? p.wall : p.instant;
  };
  const w = { start: toInstant(s), end: toInstant(e) };
  if (w.end < w.start) throw badRequest('ErrorInvalidParameter', 'The parameter EndDateTime must be after StartDateTime.');
  return w;
}

function view(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: CalendarState, calendarId: string): GraphResponse {
  if (req.method !== 'GET') throw methodNotAllowed();
  const p = preferences(req);
  const opts = renderOptions(req, p);
  const list = calendarView(state, calendarId, windowOf(req)).map((i) => renderInstance(mb, i, opts));
  return pageOf(ctx, req, list, `users('${mb.upn}')/calendarView`, appliedHeader(p, false));
}

interface ViewToken {
  t: 'n' | 'd';
  m: string;
  c: string;
  r: number;
  ws: number;
  we: number;
  from: number;
  hw: number;
  s?: number;
  i?: number;
}

function encode(t: ViewToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decode(token: string): ViewToken {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as ViewToken;
    if ((t.t !== 'n' && t.t !== 'd') || typeof t.c !== 'string' || typeof t.r !== 'number' || typeof t.ws !== 'number') throw new Error('shape');
    return t;
  } catch {
    throw badRequest('BadRequest', 'The delta token is malformed.');
  }
}

const syncStateNotFound = () => new GraphHttpError(410, 'SyncStateNotFound', 'The sync state generation is not found. Please do a full sync.');

function delta(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: CalendarState, calendarId: string): GraphResponse {
  if (req.method !== 'GET') throw methodNotAllowed();
  for (const q of ['$select', '$filter', '$expand', '$orderby', '$search']) {
    if (req.query.has(q)) throw badRequest('ErrorInvalidUrlQuery', `The query parameter '${q}' is not supported with calendarView delta.`);
  }
  const p = preferences(req);
  const pageSize = p.maxPageSize ?? ctx.maxPageSize;
  const skiptoken = req.query.get('$skiptoken');
  const deltatoken = req.query.get('$deltatoken');
  const key = roundKey(calendarId);
  let w: Window;
  let round: number;
  let from: number;
  let hw: number;
  let cursor: DeltaCursor = { seq: 0, idx: 0 };
  const token = skiptoken ?? deltatoken;
  if (token) {
    const t = decode(token);
    if (t.c !== calendarId) throw badRequest('BadRequest', 'The delta token belongs to another calendar.');
    if ((skiptoken && t.t !== 'n') || (deltatoken && t.t !== 'd')) throw badRequest('BadRequest', 'The delta token is malformed.');
    if (t.m !== mb.incarnation || !ctx.store.roundIsLive(mb, key, t.r)) throw syncStateNotFound();
    w = { start: t.ws, end: t.we };
    if (t.t === 'n') {
      round = t.r;
      from = t.from;
      hw = t.hw;
      cursor = { seq: t.s ?? 0, idx: t.i ?? 0 };
    } else {
      round = ctx.store.startRound(mb, key);
      from = t.hw;
      hw = state.seq;
    }
  } else {
    w = windowOf(req);
    round = ctx.store.startRound(mb, key);
    from = INITIAL_ROUND;
    hw = state.seq;
  }
  const pageOut = calendarDeltaPage(state, calendarId, w, from, hw, cursor, pageSize);
  const opts: RenderOptions = { zoneName: p.zoneName, zone: p.zone, bodyText: p.bodyText };
  const value = pageOut.items.map((it) =>
    'removedId' in it
      ? { '@odata.type': '#microsoft.graph.event', id: it.removedId, '@removed': { reason: 'deleted' } }
      : { '@odata.type': '#microsoft.graph.event', ...renderInstance(mb, it.instance, opts) },
  );
  const base: ViewToken = { t: 'd', m: mb.incarnation, c: calendarId, r: round, ws: w.start, we: w.end, from, hw };
  const link = `${ctx.graphBaseUrl}${req.rawPath}`;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.graphBaseUrl}/$metadata#Collection(event)`, value };
  if (pageOut.next) body['@odata.nextLink'] = `${link}?$skiptoken=${encode({ ...base, t: 'n', s: pageOut.next.seq, i: pageOut.next.idx })}`;
  else body['@odata.deltaLink'] = `${link}?$deltatoken=${encode(base)}`;
  return ok(body, appliedHeader(p, true));
}

// ---- admin (acting as the user) ------------------------------------------------------------------

export type EmulatorEvent = Record<string, unknown> & { id: string; changeKey: string; calendarId: string };

export interface CalendarAdmin {
  /** Single events and series masters of the mailbox, or of one calendar by name ('Calendar' = the default); times in UTC. */
  listEvents(upn: string, calendarName?: string): EmulatorEvent[];
  /** As the user would (organizer, isCancelled and attendee responses may be set). A missing calendar is created; null = the default one. */
  createEvent(upn: string, calendarName: string | null, event: Record<string, unknown>): EmulatorEvent;
  /** Merges fields; an occurrence id makes that occurrence an exception of its series. */
  updateEvent(upn: string, id: string, patch: Record<string, unknown>): EmulatorEvent;
  /** Deletes an event or series; an occurrence id cancels that occurrence. */
  deleteEvent(upn: string, id: string): void;
  /** The instances in [start, end) (ISO date-times; UTC without an offset), rendered in `timeZone` (default UTC). */
  calendarView(upn: string, calendarName: string | null, start: string, end: string, timeZone?: string): EmulatorEvent[];
  /**
   * Invitations, updates and cancellations Exchange sent from the mailbox because of an app's Graph writes, oldest
   * first (meeting-messages.ts). The methods above act as the user and send nothing.
   */
  sentMessages(upn: string): SentMessage[];
  clearSentMessages(upn: string): void;
}

export function calendarAdmin(store: Store): CalendarAdmin {
  const utc: RenderOptions = { zoneName: 'UTC', zone: 'UTC', bodyText: false, expandExt: '*' };
  const render = (mb: Mailbox, inst: Instance, opts = utc): EmulatorEvent => ({ ...renderInstance(mb, inst, opts), calendarId: inst.event.calendarId }) as EmulatorEvent;
  const calendarIdByName = (state: CalendarState, name: string | null | undefined, create: boolean): string => {
    if (!name) return state.defaultCalendarId;
    const c = Object.values(state.calendars).find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (c) return c.id;
    if (!create) throw new GraphHttpError(404, 'ErrorItemNotFound', `No calendar named '${name}'.`);
    return createCalendar(store, state, name).id;
  };
  const open = (upn: string) => {
    const mb = store.mailbox(upn);
    return { mb, state: calendarState(store, mb) };
  };
  return {
    listEvents(upn, name) {
      const { mb, state } = open(upn);
      const id = name === undefined ? undefined : calendarIdByName(state, name, false);
      return Object.values(state.events)
        .filter((ev) => !id || ev.calendarId === id)
        .map((ev) => render(mb, masterInstance(ev)));
    },
    createEvent(upn, name, event) {
      const { mb, state } = open(upn);
      return render(mb, masterInstance(createOrFindEvent(store, state, calendarIdByName(state, name, true), parseEventBody(event, { asUser: true }))));
    },
    updateEvent(upn, id, patch) {
      const { mb, state } = open(upn);
      const { ev, day } = resolveEvent(state, id);
      if (day === undefined) {
        const w = parseEventBody(patch, { asUser: true, existingAttendees: ev.fields.attendees as Array<Record<string, unknown>> | undefined, defaultTimeZone: ev.start.timeZone });
        return render(mb, masterInstance(updateEvent(store, state, ev, w)));
      }
      return render(mb, updateOccurrence(store, state, ev, day, parseEventBody(patch, { asUser: true })));
    },
    deleteEvent(upn, id) {
      const { state } = open(upn);
      const { ev, day } = resolveEvent(state, id);
      if (day === undefined) deleteEvent(store, state, ev);
      else cancelOccurrence(store, state, ev, day);
    },
    calendarView(upn, name, start, end, timeZone) {
      const { mb, state } = open(upn);
      const w = windowOf({ method: 'GET', rawPath: '', headers: {}, body: undefined, query: new URLSearchParams({ startDateTime: start, endDateTime: end }) });
      const opts = timeZone ? { ...utc, zoneName: timeZone, zone: zoneOrThrow(timeZone) } : utc;
      return calendarView(state, calendarIdByName(state, name, false), w).map((i) => render(mb, i, opts));
    },
    sentMessages: (upn) => sentMessages(open(upn).state),
    clearSentMessages(upn) {
      clearSentMessages(open(upn).state);
      store.changed();
    },
  };
}
