/**
 * Calendars and events of a mailbox, kept on the mailbox object (so state.json saves them with the rest) but
 * apart from its contact folders and items: contact routes and contact delta never see them.
 *
 * Change log: every write takes the next number of the calendar state's sequence and records it on one
 * entry per event (single instance or series master) or per modified/cancelled occurrence. A calendarView
 * delta round reads the entries in (from, hw] and expands each into the instances it stands for *within the
 * round's window*: a master's entry yields all of its current instances there, plus `@removed` for the
 * instances an earlier shape of the series had there (the client may hold them). An instance outside the
 * window yields `@removed`, as Graph documents. Delta round generations are the store's (Store.startRound).
 */
import { INITIAL_ROUND } from './delta';
import crypto from 'node:crypto';
import { GraphHttpError, notFound } from './errors';
import { occurrenceDays, type PatternedRecurrence } from './recurrence';
import { newItemId, type ExtendedProperty, type Mailbox, type Store } from './store';
import { DAY_MS, dayOfWall, formatDate, instantToWall, resolveZone, wallToInstant } from './timezones';

export interface Calendar {
  id: string;
  name: string;
  changeKey: string;
  color: string;
  hexColor: string;
  isDefault: boolean;
}

/** A wall time and the zone it was given in (Windows or IANA name, as the client wrote it). */
export interface EventTime {
  wall: number;
  timeZone: string;
}

export interface OccurrenceOverride {
  seq: number;
  changeKey: string;
  lastModifiedDateTime: string;
  cancelled: boolean;
  /** Fields that differ from the master's (subject, body, location, …). */
  fields: Record<string, unknown>;
  start?: EventTime;
  end?: EventTime;
}

/** Where a series' (or a single event's) instances fall; kept after a change so that what left can be reported. */
export interface Shape {
  start: EventTime;
  end: EventTime;
  isAllDay: boolean;
  recurrence: PatternedRecurrence | null;
  exceptions: Record<string, { cancelled: boolean; start?: EventTime; end?: EventTime }>;
}

export interface StoredEvent {
  id: string;
  calendarId: string;
  changeKey: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  seq: number;
  iCalUId: string;
  transactionId?: string;
  fields: Record<string, unknown>;
  start: EventTime;
  end: EventTime;
  isAllDay: boolean;
  recurrence: PatternedRecurrence | null;
  /** Keyed by the occurrence's original day (day number in the recurrence time zone). */
  exceptions: Record<string, OccurrenceOverride>;
  ext: Record<string, ExtendedProperty>;
  /** Earlier shapes and the sequence number that replaced each, newest last (bounded). */
  history: Array<{ until: number; shape: Shape }>;
}

interface CalendarLogEntry {
  calendarId: string;
  /** Event id, or occurrence id for a modified or cancelled occurrence (then masterId is set). */
  id: string;
  seq: number;
  removed: boolean;
  masterId?: string;
  /** Tombstones of events: every shape the event had, so their instances can be reported removed. */
  history?: Array<{ until: number; shape: Shape }>;
}

/** A meeting message the organizer's writes would have mailed (recorded by meeting-messages.ts). */
export type SentMessageKind = 'invitation' | 'update' | 'cancellation';

export interface SentMessage {
  kind: SentMessageKind;
  /** The event the message is about: a single event, a series master or an occurrence. */
  eventId: string;
  /** Lower-cased email addresses. */
  recipients: string[];
  /** As Exchange words it: the meeting's subject; cancellations "Canceled: <subject>". */
  subject: string;
  at: string;
  /** The organizer's comment sent with POST /events/{id}/cancel. */
  comment?: string;
}

export interface CalendarState {
  seq: number;
  defaultCalendarId: string;
  calendars: Record<string, Calendar>;
  events: Record<string, StoredEvent>;
  entries: Record<string, CalendarLogEntry>;
  /** What Exchange mailed on the app's writes (meeting-messages.ts); absent until the first message. */
  sent?: SentMessage[];
}

/** The mailbox object carries this state under `calendar`; JSON persistence saves it with the mailbox. */
type MailboxWithCalendar = Mailbox & { calendar?: CalendarState };

const HISTORY_LIMIT = 10;

export function newChangeKey(): string {
  return 'DwAAABYAAA' + crypto.randomBytes(18).toString('base64');
}
export function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function calendarState(store: Store, mb: Mailbox): CalendarState {
  const m = mb as MailboxWithCalendar;
  if (!m.calendar) {
    const id = newItemId();
    m.calendar = {
      seq: 0,
      defaultCalendarId: id,
      calendars: { [id]: { id, name: 'Calendar', changeKey: newChangeKey(), color: 'auto', hexColor: '', isDefault: true } },
      events: {},
      entries: {},
    };
    store.changed();
  }
  return m.calendar;
}

// ---- occurrence ids ------------------------------------------------------------------------------

/** Occurrence ids name their master and original day; '=' never occurs in a master id. */
export function occurrenceId(masterId: string, day: number): string {
  return `${masterId}AAA${formatDate(day).replace(/-/g, '')}=`;
}

export function parseOccurrenceId(id: string): { masterId: string; day: number } | undefined {
  const m = /^(.+)AAA(\d{4})(\d{2})(\d{2})=$/.exec(id);
  if (!m) return undefined;
  return { masterId: m[1], day: Date.UTC(+m[2], +m[3] - 1, +m[4]) / DAY_MS };
}

// ---- calendars -----------------------------------------------------------------------------------

const folderExists = () => new GraphHttpError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');

export function findCalendar(state: CalendarState, id: string): Calendar {
  const c = state.calendars[id];
  if (!c) throw notFound();
  return c;
}

export function createCalendar(store: Store, state: CalendarState, name: string): Calendar {
  if (Object.values(state.calendars).some((c) => c.name.toLowerCase() === name.toLowerCase())) throw folderExists();
  const c: Calendar = { id: newItemId(), name, changeKey: newChangeKey(), color: 'auto', hexColor: '', isDefault: false };
  state.calendars[c.id] = c;
  store.changed();
  return c;
}

export function renameCalendar(store: Store, state: CalendarState, id: string, name: string): Calendar {
  const c = findCalendar(state, id);
  if (Object.values(state.calendars).some((o) => o.id !== id && o.name.toLowerCase() === name.toLowerCase())) throw folderExists();
  c.name = name;
  c.changeKey = newChangeKey();
  store.changed();
  return c;
}

export function deleteCalendar(store: Store, mb: Mailbox, state: CalendarState, id: string): void {
  const c = findCalendar(state, id);
  if (c.isDefault) throw new GraphHttpError(400, 'ErrorInvalidRequest', 'The default calendar cannot be deleted.');
  for (const ev of Object.values(state.events)) if (ev.calendarId === id) delete state.events[ev.id];
  for (const [k, e] of Object.entries(state.entries)) if (e.calendarId === id) delete state.entries[k];
  delete mb.rounds[roundKey(id)];
  delete state.calendars[id];
  store.changed();
}

export function roundKey(calendarId: string): string {
  return `calendarView:${calendarId}`;
}

// ---- time ----------------------------------------------------------------------------------------

export function zoneOf(t: EventTime): string {
  return resolveZone(t.timeZone) ?? 'UTC';
}

export function instantOf(t: EventTime): number {
  return wallToInstant(zoneOf(t), t.wall);
}

// ---- instances -----------------------------------------------------------------------------------

export interface Instance {
  id: string;
  event: StoredEvent;
  type: 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';
  /** Original day of an occurrence or exception (recurrence time zone). */
  day?: number;
  override?: OccurrenceOverride;
  start: EventTime;
  end: EventTime;
  startInstant: number;
  endInstant: number;
  /** For occurrences and exceptions: where the occurrence was due before any move. */
  originalStartInstant?: number;
}

export interface Window {
  start: number;
  end: number;
}

function overlaps(startInstant: number, endInstant: number, w: Window): boolean {
  if (endInstant <= startInstant) return startInstant >= w.start && startInstant < w.end;
  return startInstant < w.end && endInstant > w.start;
}

function recurrenceZone(shape: Pick<Shape, 'start' | 'recurrence'>): { name: string; zone: string } {
  const name = shape.recurrence?.range.recurrenceTimeZone || shape.start.timeZone;
  return { name, zone: resolveZone(name) ?? zoneOf(shape.start) };
}

/** The day a series' first instance falls on, and the wall-clock start/end of an occurrence on `day`. */
function occurrenceTimes(shape: Shape, day: number): { start: EventTime; end: EventTime } {
  if (shape.isAllDay) {
    const len = shape.end.wall - shape.start.wall;
    const wall = day * DAY_MS;
    return { start: { wall, timeZone: shape.start.timeZone }, end: { wall: wall + len, timeZone: shape.end.timeZone } };
  }
  const rz = recurrenceZone(shape);
  const startWall = instantToWall(rz.zone, instantOf(shape.start));
  const endWall = instantToWall(rz.zone, instantOf(shape.end));
  const wall = day * DAY_MS + (startWall - dayOfWall(startWall) * DAY_MS);
  return { start: { wall, timeZone: rz.name }, end: { wall: wall + (endWall - startWall), timeZone: rz.name } };
}

function timeInstant(t: EventTime, isAllDay: boolean, allDayZone: string): number {
  // All-day events float: midnight to midnight in the zone they were created in.
  return isAllDay ? wallToInstant(allDayZone, t.wall) : instantOf(t);
}

/** The series' own day of its master start (recurrence time zone). */
export function masterDay(shape: Shape): number {
  if (shape.isAllDay) return dayOfWall(shape.start.wall);
  return dayOfWall(instantToWall(recurrenceZone(shape).zone, instantOf(shape.start)));
}

export function shapeOf(ev: StoredEvent): Shape {
  const exceptions: Shape['exceptions'] = {};
  for (const [d, o] of Object.entries(ev.exceptions)) exceptions[d] = { cancelled: o.cancelled, start: o.start, end: o.end };
  return { start: ev.start, end: ev.end, isAllDay: ev.isAllDay, recurrence: ev.recurrence, exceptions };
}

interface ShapeInstance {
  id: string;
  day?: number;
  start: EventTime;
  end: EventTime;
  startInstant: number;
  endInstant: number;
  originalStartInstant?: number;
  exception: boolean;
}

/** Instances of a shape that overlap the window: the event itself, or the series' occurrences and exceptions. */
function shapeInstances(id: string, shape: Shape, w: Window): ShapeInstance[] {
  const allDayZone = zoneOf(shape.start);
  if (!shape.recurrence) {
    const s = timeInstant(shape.start, shape.isAllDay, allDayZone);
    const e = timeInstant(shape.end, shape.isAllDay, allDayZone);
    return overlaps(s, e, w) ? [{ id, start: shape.start, end: shape.end, startInstant: s, endInstant: e, exception: false }] : [];
  }
  const rz = recurrenceZone(shape);
  // Occurrences may start up to a day before their window-end date in another zone; one more day is enough.
  const untilDay = dayOfWall(instantToWall(rz.zone, w.end)) + 1;
  const out: ShapeInstance[] = [];
  for (const day of occurrenceDays(shape.recurrence, untilDay)) {
    const ex = shape.exceptions[String(day)];
    if (ex) continue;
    const t = occurrenceTimes(shape, day);
    const s = timeInstant(t.start, shape.isAllDay, allDayZone);
    const e = timeInstant(t.end, shape.isAllDay, allDayZone);
    if (overlaps(s, e, w)) out.push({ id: occurrenceId(id, day), day, start: t.start, end: t.end, startInstant: s, endInstant: e, originalStartInstant: s, exception: false });
  }
  for (const [d, ex] of Object.entries(shape.exceptions)) {
    if (ex.cancelled) continue;
    const day = Number(d);
    const orig = occurrenceTimes(shape, day);
    const start = ex.start ?? orig.start;
    const end = ex.end ?? orig.end;
    const s = timeInstant(start, shape.isAllDay, allDayZone);
    const e = timeInstant(end, shape.isAllDay, allDayZone);
    if (overlaps(s, e, w)) {
      out.push({ id: occurrenceId(id, day), day, start, end, startInstant: s, endInstant: e, originalStartInstant: timeInstant(orig.start, shape.isAllDay, allDayZone), exception: true });
    }
  }
  return out.sort((a, b) => a.startInstant - b.startInstant || a.id.localeCompare(b.id));
}

function toInstance(ev: StoredEvent, si: ShapeInstance): Instance {
  if (!ev.recurrence) return { ...si, event: ev, type: 'singleInstance' };
  return { ...si, event: ev, type: si.exception ? 'exception' : 'occurrence', override: ev.exceptions[String(si.day)] };
}

/** The event's instances overlapping the window (a series master is never one). */
export function instancesInWindow(ev: StoredEvent, w: Window): Instance[] {
  return shapeInstances(ev.id, shapeOf(ev), w).map((si) => toInstance(ev, si));
}

/** Whether `day` is one of the series' pattern days. */
export function isPatternDay(rec: PatternedRecurrence, day: number): boolean {
  for (const d of occurrenceDays(rec, day)) if (d === day) return true;
  return false;
}

/** One occurrence or exception of a series by its original day; undefined when cancelled or not a pattern day. */
export function occurrenceInstance(ev: StoredEvent, day: number): Instance | undefined {
  if (!ev.recurrence) return undefined;
  const ov = ev.exceptions[String(day)];
  if (ov?.cancelled) return undefined;
  if (!ov && !isPatternDay(ev.recurrence, day)) return undefined;
  const shape = shapeOf(ev);
  const orig = occurrenceTimes(shape, day);
  const allDayZone = zoneOf(ev.start);
  const start = ov?.start ?? orig.start;
  const end = ov?.end ?? orig.end;
  return {
    id: occurrenceId(ev.id, day),
    event: ev,
    type: ov ? 'exception' : 'occurrence',
    day,
    override: ov,
    start,
    end,
    startInstant: timeInstant(start, ev.isAllDay, allDayZone),
    endInstant: timeInstant(end, ev.isAllDay, allDayZone),
    originalStartInstant: timeInstant(orig.start, ev.isAllDay, allDayZone),
  };
}

export function masterInstance(ev: StoredEvent): Instance {
  const allDayZone = zoneOf(ev.start);
  return {
    id: ev.id,
    event: ev,
    type: ev.recurrence ? 'seriesMaster' : 'singleInstance',
    start: ev.start,
    end: ev.end,
    startInstant: timeInstant(ev.start, ev.isAllDay, allDayZone),
    endInstant: timeInstant(ev.end, ev.isAllDay, allDayZone),
  };
}

/** All instances of the calendar in the window, by start time (calendarView). */
export function calendarView(state: CalendarState, calendarId: string, w: Window): Instance[] {
  return Object.values(state.events)
    .filter((ev) => ev.calendarId === calendarId)
    .flatMap((ev) => instancesInWindow(ev, w))
    .sort((a, b) => a.startInstant - b.startInstant || a.id.localeCompare(b.id));
}

// ---- writes --------------------------------------------------------------------------------------

export interface EventWrite {
  fields: Record<string, unknown>;
  start?: EventTime;
  end?: EventTime;
  isAllDay?: boolean;
  /** null removes the recurrence (the series becomes a single event). */
  recurrence?: PatternedRecurrence | null;
  ext: ExtendedProperty[];
  transactionId?: string;
}

function touchEvent(store: Store, state: CalendarState, ev: StoredEvent): void {
  ev.seq = ++state.seq;
  ev.changeKey = newChangeKey();
  ev.lastModifiedDateTime = nowIso();
  state.entries[ev.id] = { calendarId: ev.calendarId, id: ev.id, seq: ev.seq, removed: false };
  store.changed();
}

const invalidRequest = (message: string) => new GraphHttpError(400, 'ErrorInvalidRequest', message);

function checkTimes(start: EventTime, end: EventTime, isAllDay: boolean): void {
  if (isAllDay) {
    if (start.wall % DAY_MS !== 0 || end.wall % DAY_MS !== 0 || end.wall <= start.wall) {
      throw new GraphHttpError(400, 'ErrorPropertyValidationFailure', 'The start and end of an all-day event must be at midnight, and the end after the start.');
    }
    return;
  }
  if (instantOf(end) < instantOf(start)) throw new GraphHttpError(400, 'ErrorPropertyValidationFailure', 'The end time of the event is before its start time.');
}

/** A new series starts on its first pattern day: the master's start and end move there, as Exchange does. */
function alignToFirstOccurrence(ev: StoredEvent): void {
  if (!ev.recurrence) return;
  const first = occurrenceDays(ev.recurrence, dayOfWall(Date.UTC(9999, 0, 1))).next();
  if (first.done) throw new GraphHttpError(400, 'ErrorPropertyValidationFailure', 'The recurrence pattern has no occurrence in its range.');
  const shift = (first.value - masterDay(shapeOf(ev))) * DAY_MS;
  if (shift !== 0) {
    ev.start = { ...ev.start, wall: ev.start.wall + shift };
    ev.end = { ...ev.end, wall: ev.end.wall + shift };
  }
}

export function createEvent(store: Store, state: CalendarState, calendarId: string, w: EventWrite, iCalUId?: string): StoredEvent {
  findCalendar(state, calendarId);
  if (!w.start || !w.end) throw invalidRequest('An event needs a start and an end.');
  const isAllDay = w.isAllDay ?? false;
  checkTimes(w.start, w.end, isAllDay);
  const now = nowIso();
  const ev: StoredEvent = {
    id: newItemId(),
    calendarId,
    changeKey: '',
    createdDateTime: now,
    lastModifiedDateTime: now,
    seq: 0,
    iCalUId: iCalUId ?? '040000008200E00074C5B7101A82E00800000000' + crypto.randomBytes(28).toString('hex').toUpperCase(),
    ...(w.transactionId !== undefined ? { transactionId: w.transactionId } : {}),
    fields: { ...w.fields },
    start: w.start,
    end: w.end,
    isAllDay,
    recurrence: w.recurrence ?? null,
    exceptions: {},
    ext: {},
    history: [],
  };
  for (const p of w.ext) ev.ext[p.id.toLowerCase()] = p;
  alignToFirstOccurrence(ev);
  state.events[ev.id] = ev;
  touchEvent(store, state, ev);
  return ev;
}

function dropOccurrenceEntries(state: CalendarState, masterId: string): void {
  for (const [k, e] of Object.entries(state.entries)) if (e.masterId === masterId) delete state.entries[k];
}

export function updateEvent(store: Store, state: CalendarState, ev: StoredEvent, w: EventWrite): StoredEvent {
  if (w.transactionId !== undefined && w.transactionId !== ev.transactionId) {
    throw invalidRequest('The transactionId of an event cannot be changed.');
  }
  const start = w.start ?? ev.start;
  const end = w.end ?? ev.end;
  const isAllDay = w.isAllDay ?? ev.isAllDay;
  const recurrence = w.recurrence === undefined ? ev.recurrence : w.recurrence;
  checkTimes(start, end, isAllDay);
  const before = shapeOf(ev);
  const shapeChanged =
    JSON.stringify([start, end, isAllDay, recurrence]) !== JSON.stringify([ev.start, ev.end, ev.isAllDay, ev.recurrence]);
  Object.assign(ev.fields, w.fields);
  for (const p of w.ext) ev.ext[p.id.toLowerCase()] = p;
  if (shapeChanged) {
    ev.start = start;
    ev.end = end;
    ev.isAllDay = isAllDay;
    ev.recurrence = recurrence;
    // Changing a series' pattern or time discards its exceptions, as Outlook does.
    ev.exceptions = {};
    dropOccurrenceEntries(state, ev.id);
    alignToFirstOccurrence(ev);
  }
  touchEvent(store, state, ev);
  if (shapeChanged) {
    ev.history.push({ until: ev.seq, shape: before });
    if (ev.history.length > HISTORY_LIMIT) ev.history.splice(0, ev.history.length - HISTORY_LIMIT);
  }
  return ev;
}

function touchOccurrence(store: Store, state: CalendarState, ev: StoredEvent, day: number, ov: OccurrenceOverride): void {
  ov.seq = ++state.seq;
  ov.changeKey = newChangeKey();
  ov.lastModifiedDateTime = nowIso();
  const id = occurrenceId(ev.id, day);
  state.entries[id] = { calendarId: ev.calendarId, id, seq: ov.seq, removed: false, masterId: ev.id };
  store.changed();
}

/** PATCH on an occurrence: it becomes (or stays) an exception of its series. */
export function updateOccurrence(store: Store, state: CalendarState, ev: StoredEvent, day: number, w: EventWrite): Instance {
  const inst = occurrenceInstance(ev, day);
  if (!inst) throw notFound();
  if (w.recurrence !== undefined) throw invalidRequest('The recurrence of an occurrence cannot be set; change the series master.');
  if (w.isAllDay !== undefined && w.isAllDay !== ev.isAllDay) throw invalidRequest('An occurrence cannot change isAllDay; change the series master.');
  if (w.transactionId !== undefined) throw invalidRequest('The transactionId of an event cannot be changed.');
  const start = w.start ?? inst.start;
  const end = w.end ?? inst.end;
  checkTimes(start, end, ev.isAllDay);
  const ov: OccurrenceOverride = ev.exceptions[String(day)] ?? { seq: 0, changeKey: '', lastModifiedDateTime: '', cancelled: false, fields: {} };
  Object.assign(ov.fields, w.fields);
  if (w.start) ov.start = start;
  if (w.end) ov.end = end;
  ev.exceptions[String(day)] = ov;
  touchOccurrence(store, state, ev, day, ov);
  return occurrenceInstance(ev, day)!;
}

/** DELETE on an occurrence: it is cancelled and leaves the series' instances. */
export function cancelOccurrence(store: Store, state: CalendarState, ev: StoredEvent, day: number): void {
  if (!occurrenceInstance(ev, day)) throw notFound();
  const ov: OccurrenceOverride = ev.exceptions[String(day)] ?? { seq: 0, changeKey: '', lastModifiedDateTime: '', cancelled: true, fields: {} };
  ov.cancelled = true;
  ev.exceptions[String(day)] = ov;
  touchOccurrence(store, state, ev, day, ov);
}

export function deleteEvent(store: Store, state: CalendarState, ev: StoredEvent): void {
  delete state.events[ev.id];
  dropOccurrenceEntries(state, ev.id);
  const seq = ++state.seq;
  state.entries[ev.id] = { calendarId: ev.calendarId, id: ev.id, seq, removed: true, history: [...ev.history, { until: seq, shape: shapeOf(ev) }] };
  store.changed();
}

// ---- calendarView delta --------------------------------------------------------------------------

export type DeltaItem = { instance: Instance } | { removedId: string };

export interface DeltaCursor {
  /** Entries with a lower sequence number are done; of the entry with this one, `idx` items are. */
  seq: number;
  idx: number;
}

function removedIdsOf(id: string, history: Array<{ until: number; shape: Shape }>, from: number, w: Window): string[] {
  const ids = new Set<string>();
  for (const h of history) {
    if (h.until <= from) continue;
    // A single event is reported wherever it was: Graph also reports deleted events from outside the range.
    if (!h.shape.recurrence) ids.add(id);
    else for (const si of shapeInstances(id, h.shape, w)) ids.add(si.id);
  }
  return [...ids];
}

function itemsOf(state: CalendarState, e: CalendarLogEntry, w: Window, from: number, hw: number): DeltaItem[] {
  const full = from === INITIAL_ROUND;
  if (e.masterId) {
    // A full round gets every occurrence from its master's entry.
    if (full) return [];
    const master = state.events[e.masterId];
    if (!master) return [];
    const me = state.entries[master.id];
    if (me && me.seq > from && me.seq <= hw) return [];
    const inst = occurrenceInstance(master, parseOccurrenceId(e.id)!.day);
    return inst && overlaps(inst.startInstant, inst.endInstant, w) ? [{ instance: inst }] : [{ removedId: e.id }];
  }
  if (e.removed) return full ? [] : removedIdsOf(e.id, e.history ?? [], from, w).map((removedId) => ({ removedId }));
  const ev = state.events[e.id];
  if (!ev) return [];
  const current = instancesInWindow(ev, w);
  if (full) return current.map((instance) => ({ instance }));
  const have = new Set(current.map((i) => i.id));
  const gone = removedIdsOf(ev.id, ev.history, from, w).filter((id) => !have.has(id));
  // A single event that changed outside the window, or left it: Graph reports it removed.
  if (!ev.recurrence && !have.has(ev.id) && !gone.includes(ev.id)) gone.push(ev.id);
  return [...current.map((instance) => ({ instance })), ...gone.map((removedId) => ({ removedId }))];
}

/** One page of a calendarView delta round over entries in (from, hw], resuming after `cursor`. */
export function calendarDeltaPage(
  state: CalendarState,
  calendarId: string,
  w: Window,
  from: number,
  hw: number,
  cursor: DeltaCursor,
  pageSize: number,
): { items: DeltaItem[]; next?: DeltaCursor } {
  const entries = Object.values(state.entries)
    .filter((e) => e.calendarId === calendarId && e.seq > from && e.seq <= hw && e.seq >= cursor.seq)
    .sort((a, b) => a.seq - b.seq);
  const items: DeltaItem[] = [];
  let last: DeltaCursor | undefined;
  for (const e of entries) {
    const all = itemsOf(state, e, w, from, hw);
    const skip = e.seq === cursor.seq ? cursor.idx : 0;
    for (let i = skip; i < all.length; i++) {
      if (items.length === pageSize) return { items, next: last };
      items.push(all[i]);
      last = { seq: e.seq, idx: i + 1 };
    }
  }
  return { items };
}

// ---- transactionId -------------------------------------------------------------------------------

export function findByTransactionId(state: CalendarState, transactionId: string): StoredEvent | undefined {
  return Object.values(state.events).find((ev) => ev.transactionId === transactionId);
}
