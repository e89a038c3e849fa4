/**
 * How a meeting's attendee handling (src/domain/invitations.ts, policy `event.invitations`) shows in the event
 * records both sides are compared in, and in what cxsync writes to Outlook.
 *
 * A meeting whose attendees are listed in the body ('list-in-body') is written to Outlook without the
 * `attendees` property, its attendees as the body's last line. Read back, the line is taken out of the body and
 * its attendees put back into the record, so the record read from the Outlook copy equals the CRM's record when
 * nobody changed anything — the three-way merge compares them field by field, and any difference would be
 * written back every cycle. Two things make that hold:
 *
 * - The record carries `attendeesInBody: true` exactly when its attendees are listed in the body and it has
 *   some (the body has no block without attendees). The CRM side sets it from the stored decision, the Outlook
 *   side from the block; Exchange writes read it to leave `attendees` out.
 * - The line keeps what the CRM knows of each attendee beyond address and name: an attendance other than
 *   required and a response other than none ride along after the name, `Ann Lee (optional; accepted)
 *   <ann@example.com>`. Nobody was invited, so these are the CRM's own values, shown to the user and read back.
 *
 * Pure: no I/O, no clock.
 */
import { bodyText, fromGraphEvent, toGraphEvent, type Attendee, type AttendeeType, type EventRecord, type GraphEvent, type ResponseStatus } from './event';
import { ATTENDEE_BLOCK_LABEL, handlingShownBy, hasAttendeeBlock, splitAttendeeBlock, withAttendeeBlock, type AttendeeHandling, type ListedAttendee } from './invitations';
import { ok, type Result } from './result';

/** An event record that may carry the list-in-body mark. */
export type MeetingRecord = EventRecord & { attendeesInBody?: true };

/** Staged Exchange payload key: the attendees the body's block listed (the block itself is out of `bodyText`). */
export const LISTED_ATTENDEES_KEY = 'cxsyncListedAttendees';
/** Staged CRM payload key: the meeting's attendee handling, as the CRM feed decided it. */
export const ATTENDEE_HANDLING_KEY = 'cxsyncAttendeeHandling';

export function listedInBody(r: EventRecord): boolean {
  return (r as MeetingRecord).attendeesInBody === true;
}

/** The record marked for `handling`: the mark only when the attendees are listed in the body and there are some. */
export function withHandling(r: EventRecord, handling: AttendeeHandling | undefined): MeetingRecord {
  const { attendeesInBody: _mark, ...rest } = r as MeetingRecord;
  return handling === 'list-in-body' && rest.attendees.length > 0 ? { ...rest, attendeesInBody: true } : rest;
}

/** `handlingShownBy` for a record read from an Outlook copy (or a mapping's base): the mark stands for the block. */
export function handlingOf(r: EventRecord): AttendeeHandling | undefined {
  const marked = listedInBody(r);
  return handlingShownBy({ attendeeCount: marked ? 0 : r.attendees?.length ?? 0, body: marked ? ATTENDEE_BLOCK_LABEL : undefined });
}

// ---- attendance and response after the name -----------------------------------------------------------

const TYPE_TAGS: Record<AttendeeType, string> = { required: 'required', optional: 'optional', resource: 'resource' };
const RESPONSE_TAGS: Partial<Record<ResponseStatus, string>> = {
  organizer: 'organizer',
  accepted: 'accepted',
  tentativelyAccepted: 'tentative',
  declined: 'declined',
  notResponded: 'not responded',
};
const TYPE_BY_TAG = new Map(Object.entries(TYPE_TAGS).map(([k, v]) => [v, k as AttendeeType]));
const RESPONSE_BY_TAG = new Map(Object.entries(RESPONSE_TAGS).map(([k, v]) => [v!, k as ResponseStatus]));
const TAG_GROUP = /\s*\(([^()]*)\)$/;

/** The name without its trailing tag group, and what the group says; undefined when it does not end in one. */
function readTags(shown: string): { name: string; type?: AttendeeType; response?: ResponseStatus } | undefined {
  const m = TAG_GROUP.exec(shown);
  if (!m) return undefined;
  let type: AttendeeType | undefined;
  let response: ResponseStatus | undefined;
  for (const part of m[1].split(';').map((p) => p.trim().toLowerCase())) {
    const t = TYPE_BY_TAG.get(part);
    const r = RESPONSE_BY_TAG.get(part);
    if (t && !type) type = t;
    else if (r && !response) response = r;
    else return undefined; // not ours: "(Sales)", "(EMEA; optional)" are part of a name
  }
  return { name: shown.slice(0, m.index).trim(), type, response };
}

/** The attendees as the body's line lists them. */
export function listedOf(attendees: readonly Attendee[]): ListedAttendee[] {
  return attendees.map((a) => {
    const tags = [...(a.type !== 'required' ? [TYPE_TAGS[a.type]] : []), ...(RESPONSE_TAGS[a.response] ? [RESPONSE_TAGS[a.response]!] : [])];
    const name = a.name ?? '';
    // A name that itself ends like a tag group ("Ann (optional)") gets an explicit one, so it is read back whole.
    if (tags.length === 0 && readTags(name)) tags.push(TYPE_TAGS.required);
    const shown = [name, tags.length ? `(${tags.join('; ')})` : ''].filter(Boolean).join(' ');
    return shown ? { email: a.email, name: shown } : { email: a.email };
  });
}

// The same pragmatic check as event attendees' (src/domain/event.ts): an entry a user typed that fails it is
// left out rather than making the whole meeting unreadable.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Listed attendees as Graph attendees, their attendance and response read back from after the name. */
function graphAttendeesOf(listed: readonly ListedAttendee[]): NonNullable<GraphEvent['attendees']> {
  return listed
    .filter((l) => EMAIL.test(l.email.trim()))
    .map((l) => {
      const tags = l.name ? readTags(l.name) : undefined;
      const name = tags ? tags.name : l.name;
      return { emailAddress: { address: l.email, ...(name ? { name } : {}) }, type: tags?.type ?? 'required', status: { response: tags?.response ?? 'none' } };
    });
}

// ---- Outlook → record ----------------------------------------------------------------------------------

/**
 * A staged Exchange payload with the block taken out of `bodyText` (its attendees under LISTED_ATTENDEES_KEY),
 * so the policy's body limit, which cuts `bodyText`, can never cut the list off.
 */
export function liftAttendeeBlock(payload: Record<string, unknown>): Record<string, unknown> {
  const text = payload.bodyText;
  if (typeof text !== 'string' || !hasAttendeeBlock(text)) return payload;
  const split = splitAttendeeBlock(text);
  return { ...payload, bodyText: split.body ?? '', [LISTED_ATTENDEES_KEY]: split.attendees ?? [] };
}

/**
 * The record of an Outlook copy: the block out of the body, its attendees back in the record (with those
 * invited in Outlook; on the same address the invited one wins: Exchange knows its response), marked when the
 * block was there. Reads payloads with the block lifted out or still in the body alike.
 */
export function fromGraphMeeting(payload: Record<string, unknown>): Result<MeetingRecord> {
  const g = payload as GraphEvent;
  const text = typeof g.bodyText === 'string' ? g.bodyText : bodyText(g.body);
  let body: string | undefined;
  let listed: ListedAttendee[] | undefined;
  if (Array.isArray(payload[LISTED_ATTENDEES_KEY])) {
    body = text;
    listed = payload[LISTED_ATTENDEES_KEY] as ListedAttendee[];
  } else {
    ({ body, attendees: listed } = splitAttendeeBlock(text));
  }
  const r = fromGraphEvent({ ...g, bodyText: body ?? '', attendees: [...graphAttendeesOf(listed ?? []), ...(g.attendees ?? [])] });
  if (!r.ok) return r;
  return ok(withHandling(r.value, listed !== undefined ? 'list-in-body' : undefined));
}

// ---- record → Outlook ----------------------------------------------------------------------------------

/**
 * The Graph body for a create or an update. `inBody`: no `attendees` property at all (an empty list would
 * cancel anyone the user invited by hand), and the attendees as the body's last line.
 */
export function toGraphMeeting(r: EventRecord, inBody: boolean): GraphEvent {
  const { attendeesInBody: _mark, ...rec } = r as MeetingRecord;
  if (!inBody) return toGraphEvent(rec);
  const g = toGraphEvent({ ...rec, body: withAttendeeBlock(rec.body, listedOf(rec.attendees)), attendees: [] });
  delete g.attendees;
  return g;
}
