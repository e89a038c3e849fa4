/**
 * The calendar event as cxsync understands it, on neither side's terms, and the mapping to and from Microsoft
 * Graph events and CRM event rows.
 *
 * Times are local wall time + zone (`start: '2025-03-31T09:00:00'`, `timeZone: 'Europe/Berlin'`), never an
 * instant: a 09:00 Berlin meeting stays 09:00 Berlin on both sides whatever the DST state or the zone of the
 * person looking. Zones are compared in canonical form (`canonicalTimeZone`), so a zone Exchange reports under
 * its Windows name is the same zone.
 *
 * Categories are not a synced field (as for contacts): Exchange's carry the marking category and the user's
 * own; the policy's scope rules read them from the raw items (DoNotSync).
 *
 * A recurring series is one record: the master's fields, its recurrence, and its exceptions — occurrences moved
 * or changed, and occurrences cancelled — keyed by the occurrence's original start. Only exceptions whose
 * original date lies in the sync window are part of the record (both sides apply the same window); see
 * docs/RECORD_TYPES.md.
 */
import { bodyText, graphBody, normalizeText } from './body';
import { fail, ok, type Result } from './result';
import { normalizeRecurrence, occurrenceDates, toGraphRecurrence, type Recurrence } from './recurrence';
import {
  addDays,
  addSecondsToWall,
  canonicalTimeZone,
  convertWallTime,
  instantToWall,
  parseWallTime,
  resolveTimeZone,
  wallSecondsBetween,
  wallToInstant,
  windowsTimeZone,
  type DateOnly,
  type WallTime,
} from './timezone';

export const SENSITIVITIES = ['normal', 'personal', 'private', 'confidential'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];
export const ATTENDEE_TYPES = ['required', 'optional', 'resource'] as const;
export type AttendeeType = (typeof ATTENDEE_TYPES)[number];
export const RESPONSES = ['none', 'organizer', 'tentativelyAccepted', 'accepted', 'declined', 'notResponded'] as const;
export type ResponseStatus = (typeof RESPONSES)[number];

export interface Attendee {
  email: string;
  name?: string;
  type: AttendeeType;
  /** Exchange owns it (invitees answer there); the CRM shows it. Graph does not let a client set it. */
  response: ResponseStatus;
}

export interface EventException {
  /** The occurrence's start before it was moved or cancelled: its identity within the series. */
  originalStart: WallTime;
  cancelled?: true;
  start?: WallTime;
  end?: WallTime;
  /** Present only when the occurrence differs from the series. */
  subject?: string;
  location?: string;
}

export interface EventRecord {
  subject: string;
  body?: string;
  location?: string;
  allDay: boolean;
  /** Local wall time in `timeZone`; all-day events start and end at midnight (end exclusive). */
  start: WallTime;
  end: WallTime;
  /** Canonical IANA zone of start and end. */
  timeZone: string;
  sensitivity: Sensitivity;
  /** Sorted by email. */
  attendees: Attendee[];
  /** Someone other than the mailbox's owner organises the event; absent when the owner does. */
  organizer?: { email: string; name?: string };
  recurrence?: Recurrence;
  /** Sorted by original start; only for series. */
  exceptions?: EventException[];
}

/** The dates whose occurrences (by original start) the sync looks after; `end` is exclusive. */
export interface SyncWindow {
  start: DateOnly;
  end: DateOnly;
}

export const EVENT_LIMITS = { subject: 255, location: 255, body: 32_000, attendees: 500 } as const;

// Pragmatic address check, the same as contacts'.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// ---- text ---------------------------------------------------------------------------------------------

// Bodies live in ./body (HTML ⇄ text, links kept); re-exported for the callers that import them from here.
export { bodyText, htmlToText, normalizeText } from './body';

function clean(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

// ---- validation ---------------------------------------------------------------------------------------

/** Input to `validateEvent`: what either side's mapper read, not yet normalised. */
export interface EventDraft {
  subject?: string | null;
  body?: string | null;
  location?: string | null;
  allDay?: boolean | null;
  start?: string | null;
  end?: string | null;
  timeZone?: string | null;
  sensitivity?: string | null;
  attendees?: { email?: string | null; name?: string | null; type?: string | null; response?: string | null }[] | null;
  organizer?: { email?: string | null; name?: string | null } | null;
  recurrence?: unknown;
  exceptions?: EventException[] | null;
}

/** Normalises and validates; the one gate every event passes on its way in from either side. */
export function validateEvent(d: EventDraft): Result<EventRecord> {
  const subject = clean(d.subject) ?? '';
  if (subject.length > EVENT_LIMITS.subject) {
    return fail(`field subject is ${subject.length} characters long; the limit is ${EVENT_LIMITS.subject}: shorten it`);
  }
  const zone = canonicalTimeZone(d.timeZone);
  if (!zone) return fail(`time zone "${d.timeZone ?? ''}" is not a known IANA or Windows time zone: correct it`);
  const allDay = !!d.allDay;
  let start = parseWallTime(d.start);
  let end = parseWallTime(d.end);
  if (!start) return fail(`start "${d.start ?? ''}" is not a date and time: correct it`);
  if (!end) return fail(`end "${d.end ?? ''}" is not a date and time: correct it`);
  if (allDay) {
    start = `${start.slice(0, 10)}T00:00:00`;
    end = `${end.slice(0, 10)}T00:00:00`;
    if (end <= start) end = `${addDays(start.slice(0, 10), 1)}T00:00:00`;
  } else if (wallToInstant(end, zone) < wallToInstant(start, zone)) {
    return fail(`the event ends (${end}) before it starts (${start}): correct it`);
  }

  const rec: EventRecord = { subject, allDay, start, end, timeZone: zone, sensitivity: 'normal', attendees: [] };
  const body = normalizeText(d.body);
  // Cut over the limit, then normalised again: a cut ending in blanks would not read back as written.
  if (body) rec.body = body.length > EVENT_LIMITS.body ? normalizeText(body.slice(0, EVENT_LIMITS.body)) : body;
  const location = clean(d.location);
  if (location) rec.location = location.slice(0, EVENT_LIMITS.location);
  const sens = (clean(d.sensitivity) ?? 'normal').toLowerCase() as Sensitivity;
  rec.sensitivity = SENSITIVITIES.includes(sens) ? sens : 'normal';

  const byEmail = new Map<string, Attendee>();
  for (const a of d.attendees ?? []) {
    const email = clean(a.email)?.toLowerCase();
    if (!email) continue;
    if (!EMAIL.test(email)) return fail(`attendee "${email}" is not a valid email address: correct or remove it`);
    const type = (clean(a.type) ?? 'required').toLowerCase() as AttendeeType;
    const response = (clean(a.response) ?? 'none') as ResponseStatus;
    const name = clean(a.name);
    byEmail.set(email, {
      email,
      ...(name && name.toLowerCase() !== email ? { name } : {}),
      type: ATTENDEE_TYPES.includes(type) ? type : 'required',
      response: RESPONSES.includes(response) ? response : 'none',
    });
  }
  if (byEmail.size > EVENT_LIMITS.attendees) return fail(`the event has ${byEmail.size} attendees; the limit is ${EVENT_LIMITS.attendees}`);
  rec.attendees = [...byEmail.values()].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0));

  const orgEmail = clean(d.organizer?.email)?.toLowerCase();
  if (orgEmail) {
    const name = clean(d.organizer?.name);
    rec.organizer = { email: orgEmail, ...(name && name.toLowerCase() !== orgEmail ? { name } : {}) };
  }
  if (d.recurrence != null) {
    const r = normalizeRecurrence(d.recurrence);
    if (!r.ok) return fail(r.error);
    // Graph requires the range to start on the master's start date; so does the canonical form.
    rec.recurrence = { ...r.value, range: { ...r.value.range, startDate: start.slice(0, 10) } };
    if (rec.recurrence.range.endDate && rec.recurrence.range.endDate < rec.recurrence.range.startDate) {
      return fail('the series ends before its first occurrence: correct its end date');
    }
    const ex = normalizeExceptions(rec, d.exceptions ?? []);
    if (!ex.ok) return fail(ex.error);
    if (ex.value.length) rec.exceptions = ex.value;
  }
  return ok(rec);
}

/** Sorted, one per original start, and without "exceptions" that match the series exactly. */
function normalizeExceptions(master: EventRecord, input: EventException[]): Result<EventException[]> {
  const duration = wallSecondsBetween(master.start, master.end);
  const time = master.start.slice(11);
  const byStart = new Map<string, EventException>();
  for (const e of input) {
    let original = parseWallTime(e.originalStart);
    if (!original) return fail(`exception original start "${e.originalStart}" is not a date and time`);
    // An occurrence is identified by its original date: the time is the series'.
    original = `${original.slice(0, 10)}T${time}`;
    if (e.cancelled) {
      byStart.set(original, { originalStart: original, cancelled: true });
      continue;
    }
    let start = parseWallTime(e.start) ?? original;
    let end = parseWallTime(e.end) ?? addSecondsToWall(start, duration);
    if (master.allDay) {
      start = `${start.slice(0, 10)}T00:00:00`;
      end = `${end.slice(0, 10)}T00:00:00`;
      if (end <= start) end = `${addDays(start.slice(0, 10), 1)}T00:00:00`;
    }
    if (end < start) return fail(`the occurrence of ${original.slice(0, 10)} ends before it starts`);
    const subject = clean(e.subject);
    const location = clean(e.location);
    const out: EventException = { originalStart: original };
    const moved = start !== original || end !== addSecondsToWall(original, duration);
    if (moved) Object.assign(out, { start, end });
    if (subject !== undefined && subject !== master.subject) out.subject = subject.slice(0, EVENT_LIMITS.subject);
    if (location !== undefined && location !== (master.location ?? undefined)) out.location = location.slice(0, EVENT_LIMITS.location);
    if (!moved && out.subject === undefined && out.location === undefined) continue;
    if (!moved) Object.assign(out, { start, end });
    byStart.set(original, out);
  }
  return ok([...byStart.values()].sort((a, b) => (a.originalStart < b.originalStart ? -1 : 1)));
}

export function eventLabel(e: EventRecord): string {
  const when = e.allDay ? e.start.slice(0, 10) : `${e.start.slice(0, 16).replace('T', ' ')} ${e.timeZone}`;
  return `${e.subject || '(no subject)'} (${when}${e.recurrence ? ', series' : ''})`;
}

export function isPrivate(e: EventRecord): boolean {
  return e.sensitivity === 'private';
}

/** Original starts of the series' occurrences whose date lies in the window. */
export function expectedOccurrences(e: EventRecord, window: SyncWindow): WallTime[] {
  if (!e.recurrence) return [];
  const time = e.start.slice(11);
  return occurrenceDates(e.recurrence, window.start, addDays(window.end, -1)).map((d) => `${d}T${time}`);
}

export function inWindow(wall: WallTime, window: SyncWindow): boolean {
  const d = wall.slice(0, 10);
  return d >= window.start && d < window.end;
}

/**
 * The window of dates the sync looks at: `pastDays` before today to `futureDays` after, widened to whole
 * weeks on a fixed grid (Monday 1970-01-05) so it moves once a week, not every day: every move starts a new
 * calendarView round.
 */
export function syncWindow(now: number, pastDays: number, futureDays: number): SyncWindow {
  const today = new Date(now).toISOString().slice(0, 10);
  const grid = (d: DateOnly) => {
    const n = Math.round(Date.parse(`${d}T00:00:00Z`) / 86_400_000) - 4; // days since Monday 1970-01-05
    return addDays(d, -(((n % 7) + 7) % 7));
  };
  // Derived from this week's Monday only, so the window stays put all week.
  const monday = grid(today);
  return { start: grid(addDays(monday, -pastDays)), end: addDays(grid(addDays(monday, 6 + futureDays)), 7) };
}

// ---- Microsoft Graph ----------------------------------------------------------------------------------

export interface GraphDateTimeTimeZone {
  dateTime?: string | null;
  timeZone?: string | null;
}

export interface GraphEvent {
  id?: string;
  changeKey?: string;
  type?: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster' | string | null;
  seriesMasterId?: string | null;
  subject?: string | null;
  body?: { contentType?: string | null; content?: string | null } | null;
  start?: GraphDateTimeTimeZone | null;
  end?: GraphDateTimeTimeZone | null;
  originalStart?: string | null;
  originalStartTimeZone?: string | null;
  originalEndTimeZone?: string | null;
  isAllDay?: boolean | null;
  isCancelled?: boolean | null;
  isOrganizer?: boolean | null;
  location?: { displayName?: string | null } | null;
  sensitivity?: string | null;
  attendees?: { emailAddress?: { address?: string | null; name?: string | null } | null; type?: string | null; status?: { response?: string | null } | null }[] | null;
  organizer?: { emailAddress?: { address?: string | null; name?: string | null } | null } | null;
  categories?: string[] | null;
  recurrence?: unknown;
  transactionId?: string | null;
  lastModifiedDateTime?: string | null;
  /** Added by cxsync when it reads a series: its exceptions in the sync window, already in the series' zone. */
  cxsyncExceptions?: EventException[];
  /** Added by cxsync when it reads an event: the body as plain text (the policy's field limits apply to it). */
  bodyText?: string | null;
  /** Added by cxsync when it reads an event: the mailbox user's zone, for an event Graph gives no zone for. */
  cxsyncUserZone?: string | null;
  [other: string]: unknown;
}

/**
 * A Graph date-time as wall time in `zone`. Graph answers in the zone the `Prefer: outlook.timezone` header
 * asked for (cxsync asks for UTC); all-day events are floating dates and are not converted unless Graph moved
 * them off midnight.
 */
export function graphWallTime(dt: GraphDateTimeTimeZone | null | undefined, zone: string, allDay: boolean): WallTime | undefined {
  const wall = parseWallTime(dt?.dateTime);
  if (!wall) return undefined;
  const from = resolveTimeZone(dt?.timeZone) ?? 'UTC';
  if (allDay) {
    const local = wall.endsWith('T00:00:00') ? wall : convertWallTime(wall, from, zone);
    return `${local.slice(0, 10)}T00:00:00`;
  }
  return convertWallTime(wall, from, zone);
}

/**
 * The zone an event is kept in: the one it was created in (`originalStartTimeZone`), else the one Graph wrote
 * its times in unless that is just the UTC cxsync asked for, else the fallback (the user's zone).
 */
export function graphEventZone(g: GraphEvent, fallbackZone?: string): string {
  const original = canonicalTimeZone(g.originalStartTimeZone);
  if (original) return original;
  const written = canonicalTimeZone(g.start?.timeZone);
  if (written && written !== 'UTC') return written;
  return canonicalTimeZone(fallbackZone) ?? written ?? 'UTC';
}

export function fromGraphEvent(g: GraphEvent, opts: { fallbackZone?: string } = {}): Result<EventRecord> {
  const zone = graphEventZone(g, opts.fallbackZone ?? g.cxsyncUserZone ?? undefined);
  const allDay = !!g.isAllDay;
  return validateEvent({
    subject: g.subject,
    body: typeof g.bodyText === 'string' ? g.bodyText : bodyText(g.body),
    location: g.location?.displayName,
    allDay,
    start: graphWallTime(g.start, zone, allDay),
    end: graphWallTime(g.end, zone, allDay),
    timeZone: zone,
    sensitivity: g.sensitivity,
    attendees: (g.attendees ?? []).map((a) => ({ email: a.emailAddress?.address, name: a.emailAddress?.name, type: a.type, response: a.status?.response })),
    organizer: g.isOrganizer === false ? { email: g.organizer?.emailAddress?.address, name: g.organizer?.emailAddress?.name } : null,
    recurrence: g.type === 'seriesMaster' || (g.recurrence && g.type == null) ? g.recurrence ?? null : null,
    exceptions: g.cxsyncExceptions ?? [],
  });
}

/** The name a zone is written to Graph under: its Windows name when it has one (what Outlook itself uses). */
export function graphZoneName(zone: string): string {
  return windowsTimeZone(zone) ?? resolveTimeZone(zone) ?? zone;
}

/**
 * The Graph body for a create or a full update. Every synced property is sent, cleared ones as empty, so an
 * update also clears what the other side cleared. Response status and organizer are Exchange's to set.
 */
export function toGraphEvent(e: EventRecord): GraphEvent {
  const tz = graphZoneName(e.timeZone);
  return {
    subject: e.subject,
    // HTML, links as anchors; an update sends it only when the text changed (changedProperties), so the
    // user's own HTML (formatting, Teams blocks) stays as it is until the synced text itself changes.
    body: graphBody(e.body),
    start: { dateTime: e.start, timeZone: tz },
    end: { dateTime: e.end, timeZone: tz },
    isAllDay: e.allDay,
    location: { displayName: e.location ?? '' },
    sensitivity: e.sensitivity,
    attendees: e.attendees.map((a) => ({ emailAddress: { address: a.email, ...(a.name ? { name: a.name } : {}) }, type: a.type })),
    recurrence: e.recurrence ? toGraphRecurrence(e.recurrence, tz) : null,
  };
}

/** An occurrence or exception of a series as Graph lists it (`/events/{master}/instances`). */
export interface GraphInstance {
  id: string;
  type?: string | null;
  originalStart?: string | null;
  start?: GraphDateTimeTimeZone | null;
  end?: GraphDateTimeTimeZone | null;
  subject?: string | null;
  location?: { displayName?: string | null } | null;
  isCancelled?: boolean | null;
}

/** The original start of an instance as wall time in the series' zone (Graph gives an instant, or nothing for a plain occurrence). */
export function instanceOriginalStart(i: GraphInstance, master: EventRecord): WallTime | undefined {
  if (i.originalStart) {
    const t = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(i.originalStart) ? i.originalStart : `${i.originalStart}Z`);
    if (Number.isFinite(t)) {
      const wall = instantToWall(t, master.timeZone);
      return master.allDay ? `${wall.slice(0, 10)}T00:00:00` : wall;
    }
  }
  return graphWallTime(i.start, master.timeZone, master.allDay);
}

/**
 * The exceptions of a series as Exchange has them, from the master (its pattern) and the instances Graph lists
 * in the window: an expected occurrence with no instance was cancelled; an instance off its pattern slot, or
 * with its own subject or location, is an exception.
 */
export function exceptionsFromInstances(master: EventRecord, instances: GraphInstance[], window: SyncWindow): EventException[] {
  if (!master.recurrence) return [];
  const duration = wallSecondsBetween(master.start, master.end);
  const byDate = new Map<DateOnly, GraphInstance>();
  for (const i of instances) {
    const o = instanceOriginalStart(i, master);
    if (o && !i.isCancelled) byDate.set(o.slice(0, 10), i);
  }
  const out: EventException[] = [];
  for (const original of expectedOccurrences(master, window)) {
    const i = byDate.get(original.slice(0, 10));
    if (!i) {
      out.push({ originalStart: original, cancelled: true });
      continue;
    }
    const start = graphWallTime(i.start, master.timeZone, master.allDay) ?? original;
    const end = graphWallTime(i.end, master.timeZone, master.allDay) ?? addSecondsToWall(start, duration);
    const subject = clean(i.subject);
    const location = clean(i.location?.displayName);
    const ex: EventException = { originalStart: original };
    const moved = start !== original || end !== addSecondsToWall(original, duration);
    const subjectDiffers = subject !== undefined && subject !== master.subject;
    const locationDiffers = (location ?? undefined) !== (master.location ?? undefined) && location !== undefined;
    if (!moved && !subjectDiffers && !locationDiffers) continue;
    ex.start = start;
    ex.end = end;
    if (subjectDiffers) ex.subject = subject;
    if (locationDiffers) ex.location = location;
    out.push(ex);
  }
  return out;
}

export type InstanceWrite =
  | { kind: 'delete'; instanceId: string; originalStart: WallTime }
  | { kind: 'patch'; instanceId: string; originalStart: WallTime; body: GraphEvent }
  /** Graph has no way to bring a cancelled occurrence back. */
  | { kind: 'cannot-restore'; originalStart: WallTime };

/**
 * What to do to a series' instances in Exchange so its exceptions in the window become the record's: cancel,
 * move or change the ones the record says, and put back on their slot the ones Exchange moved but the record
 * does not. Run after the master itself was written.
 */
export function planInstanceWrites(record: EventRecord, instances: GraphInstance[], window: SyncWindow): InstanceWrite[] {
  if (!record.recurrence) return [];
  const duration = wallSecondsBetween(record.start, record.end);
  const tz = graphZoneName(record.timeZone);
  const current = new Map(exceptionsFromInstances(record, instances, window).map((e) => [e.originalStart, e]));
  const desired = new Map((record.exceptions ?? []).filter((e) => inWindow(e.originalStart, window)).map((e) => [e.originalStart, e]));
  const instanceAt = new Map<string, GraphInstance>();
  for (const i of instances) {
    const o = instanceOriginalStart(i, record);
    if (o && !i.isCancelled) instanceAt.set(o.slice(0, 10), i);
  }
  const out: InstanceWrite[] = [];
  const keys = [...new Set([...current.keys(), ...desired.keys()])].sort();
  for (const original of keys) {
    const want = desired.get(original);
    const have = current.get(original);
    if (want && have && sameException(want, have)) continue;
    const inst = instanceAt.get(original.slice(0, 10));
    if (want?.cancelled) {
      if (inst) out.push({ kind: 'delete', instanceId: inst.id, originalStart: original });
      continue;
    }
    if (!inst) {
      out.push({ kind: 'cannot-restore', originalStart: original });
      continue;
    }
    const start = want?.start ?? original;
    const end = want?.end ?? addSecondsToWall(start, duration);
    const body: GraphEvent = { start: { dateTime: start, timeZone: tz }, end: { dateTime: end, timeZone: tz } };
    // Subject and location only when the occurrence's differ from what it should have: a location sent is
    // replaced whole, and the address, coordinates and link Outlook keeps with its name would be lost.
    const subject = want?.subject ?? record.subject;
    if ((clean(inst.subject) ?? '') !== subject) body.subject = subject;
    const location = want?.location ?? record.location ?? '';
    if ((clean(inst.location?.displayName) ?? '') !== location) body.location = { displayName: location };
    out.push({ kind: 'patch', instanceId: inst.id, originalStart: original, body });
  }
  return out;
}

function sameException(a: EventException, b: EventException): boolean {
  return !!a.cancelled === !!b.cancelled && a.start === b.start && a.end === b.end && a.subject === b.subject && a.location === b.location;
}

// ---- CRM rows -----------------------------------------------------------------------------------------

/** Event types the CRM knows out of the box; any other text is a custom type. 'Todo' rows are tasks, never events. */
export const CRM_EVENT_TYPES = ['Meeting', 'Call'] as const;
export const CRM_TODO_TYPE = 'Todo';
export const CRM_EVENT_STATUSES = ['Open', 'Completed', 'Canceled'] as const;
export type CrmEventStatus = (typeof CRM_EVENT_STATUSES)[number];

export interface CrmAttendeeRow {
  email: string;
  name: string | null;
  attendance: string;
  response: string;
}

export interface CrmExceptionRow {
  original_start: string;
  start_local: string;
  end_local: string;
  /**
   * The occurrence's own subject and location; empty or null when it has the series' (crm.events.subject is
   * `not null`, so an inheriting row stores ''). A copy of the series' value would turn into an
   * occurrence-specific one the moment the series is renamed.
   */
  subject: string | null;
  location: string | null;
  status: string;
}

/** The columns of crm.events the sync reads and writes (times as `YYYY-MM-DDTHH:mm:ss` text, zone as IANA). */
export interface CrmEventFields {
  subject: string;
  description: string | null;
  location: string | null;
  all_day: boolean;
  start_local: string;
  end_local: string;
  time_zone: string;
  visibility: Sensitivity;
  organizer_email: string | null;
  organizer_name: string | null;
  recurrence: Recurrence | null;
}

/** What the CRM change feed stages for an event: its row, its attendees and (for a series) its exception rows. */
export interface CrmEventPayload extends Partial<Omit<CrmEventFields, 'recurrence'>> {
  recurrence?: unknown;
  attendees?: CrmAttendeeRow[];
  exceptions?: CrmExceptionRow[];
}

export function fromCrmEvent(p: CrmEventPayload): Result<EventRecord> {
  const master = validateEvent({
    subject: p.subject,
    body: p.description,
    location: p.location,
    allDay: p.all_day,
    start: p.start_local,
    end: p.end_local,
    timeZone: p.time_zone,
    sensitivity: p.visibility,
    attendees: (p.attendees ?? []).map((a) => ({ email: a.email, name: a.name, type: a.attendance, response: a.response })),
    organizer: p.organizer_email ? { email: p.organizer_email, name: p.organizer_name } : null,
    recurrence: p.recurrence ?? null,
    exceptions: (p.exceptions ?? []).map((x) =>
      x.status === 'Canceled'
        ? { originalStart: x.original_start, cancelled: true as const }
        : { originalStart: x.original_start, start: x.start_local, end: x.end_local, subject: x.subject || undefined, location: x.location || undefined },
    ),
  });
  return master;
}

export interface CrmEventWrite {
  fields: CrmEventFields;
  attendees: { email: string; name: string | null; attendance: AttendeeType; response: ResponseStatus }[];
  /** Exception rows of a series, one per original start. */
  exceptions: CrmExceptionRow[];
}

export function toCrmEvent(e: EventRecord): CrmEventWrite {
  const duration = wallSecondsBetween(e.start, e.end);
  return {
    fields: {
      subject: e.subject,
      description: e.body ?? null,
      location: e.location ?? null,
      all_day: e.allDay,
      start_local: e.start,
      end_local: e.end,
      time_zone: e.timeZone,
      visibility: e.sensitivity,
      organizer_email: e.organizer?.email ?? null,
      organizer_name: e.organizer?.name ?? null,
      recurrence: e.recurrence ?? null,
    },
    attendees: e.attendees.map((a) => ({ email: a.email, name: a.name ?? null, attendance: a.type, response: a.response })),
    exceptions: (e.exceptions ?? []).map((x) => ({
      original_start: x.originalStart,
      start_local: x.cancelled ? x.originalStart : x.start ?? x.originalStart,
      end_local: x.cancelled ? addSecondsToWall(x.originalStart, duration) : x.end ?? addSecondsToWall(x.start ?? x.originalStart, duration),
      // Only what differs from the series (the record holds nothing else): the rest inherits, renames included.
      subject: x.subject ?? null,
      location: x.location ?? null,
      status: x.cancelled ? 'Canceled' : 'Open',
    })),
  };
}
