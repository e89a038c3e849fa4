/**
 * The messages Exchange sends on its own when an app writes a meeting, kept per mailbox so tests can assert
 * that cxsync mails nobody by surprise (DESIGN.md "No surprise messages"). Graph offers no way to suppress any of
 * them (microsoftgraph/microsoft-graph-docs issue #2309: adding or removing attendees without mailing "is
 * actually not possible"), so the emulator records exactly what the documentation says is sent:
 *
 * - create: "When an event is sent, the server sends invitations to all the attendees."
 *   (api-reference/v1.0/api/user-post-events.md)
 * - update: "An event update that includes only the attendees property in the request body sends a meeting
 *   update to only the attendees that have changed." Any other update of a meeting therefore reaches every
 *   attendee; and for a series master "that has instances that have been updated separately, multiple
 *   notification emails will be sent out: one for the master series and one per instance that has been
 *   updated." (api-reference/v1.0/api/event-update.md)
 * - delete: "If the event is a meeting, deleting the event on the organizer's calendar sends a cancellation
 *   message to the meeting attendees." (api-reference/v1.0/api/event-delete.md)
 * - cancel: "allows the organizer of a meeting to send a cancellation message and cancel the event"; an
 *   attendee calling it gets 400. (api-reference/v1.0/api/event-cancel.md)
 *
 * Where the documents are silent the emulator errs towards recording a message, so a test cannot pass on a
 * message real Exchange would send: an attendee added by an update gets an invitation and a removed one a
 * cancellation (what Outlook sends them as "the attendees that have changed"); properties that are the
 * organizer's own (categories, reminder, free/busy, extended properties) are assumed to mail nobody. Only what an
 * app does through Graph is recorded: the admin API acts as the user in Outlook, who chooses to send or not.
 */
import { nowIso, type CalendarState, type SentMessage, type SentMessageKind } from './calendar-store';
import type { Mailbox } from './store';

// Declared with the calendar state that keeps them, so calendar-store.ts need not import this module back.
export type { SentMessage, SentMessageKind } from './calendar-store';

/** What the messages of one write depend on: the meeting's organizer, attendees and subject. */
export interface MeetingView {
  fields: Record<string, unknown>;
}

/** Bounded, so a long-running emulator with persisted state does not grow without end. */
const KEEP = 10_000;

/** Properties of the organizer's own copy: setting them alone is assumed to mail nobody (the docs are silent). */
const OWN_COPY = new Set(['categories', 'isReminderOn', 'reminderMinutesBeforeStart', 'showAs', 'singleValueExtendedProperties', 'transactionId']);

export function sentMessages(state: CalendarState | undefined): SentMessage[] {
  return (state?.sent ?? []).map((m) => ({ ...m, recipients: [...m.recipients] }));
}

export function clearSentMessages(state: CalendarState | undefined): void {
  if (state) delete state.sent;
}

function record(state: CalendarState, messages: SentMessage[]): void {
  if (!messages.length) return;
  state.sent = [...(state.sent ?? []), ...messages].slice(-KEEP);
}

/** Only the organizer's calendar sends: an attendee's copy mails nobody when the app changes or deletes it (nor may it cancel). */
export function organizedBy(mb: Mailbox, m: MeetingView): boolean {
  const o = m.fields.organizer as { emailAddress?: { address?: string | null } } | undefined;
  const address = o?.emailAddress?.address;
  return !address || address.toLowerCase() === mb.upn.toLowerCase();
}

function recipientsOf(mb: Mailbox, m: MeetingView): string[] {
  const out = new Set<string>();
  for (const a of (m.fields.attendees as Array<{ emailAddress?: { address?: string | null } }> | undefined) ?? []) {
    const address = a.emailAddress?.address?.trim().toLowerCase();
    // Exchange does not invite the organizer to their own meeting.
    if (address && address !== mb.upn.toLowerCase()) out.add(address);
  }
  return [...out];
}

function subjectOf(m: MeetingView): string {
  return typeof m.fields.subject === 'string' ? m.fields.subject : '';
}

function message(kind: SentMessageKind, eventId: string, recipients: string[], subject: string, comment?: string): SentMessage {
  return { kind, eventId, recipients, subject: kind === 'cancellation' ? `Canceled: ${subject}` : subject, at: nowIso(), ...(comment !== undefined ? { comment } : {}) };
}

/** POST of a new event (not the one a repeated transactionId returns). */
export function recordCreate(state: CalendarState, mb: Mailbox, eventId: string, m: MeetingView): void {
  const to = organizedBy(mb, m) ? recipientsOf(mb, m) : [];
  if (to.length) record(state, [message('invitation', eventId, to, subjectOf(m))]);
}

/**
 * PATCH of an event or occurrence. `bodyKeys` are the settable properties the request carried; `exceptions`
 * the separately updated occurrences of a series master, each of which gets an update of its own.
 */
export function recordUpdate(
  state: CalendarState,
  mb: Mailbox,
  eventId: string,
  before: MeetingView,
  after: MeetingView,
  bodyKeys: string[],
  exceptions: Array<{ id: string; subject: string }> = [],
): void {
  if (!organizedBy(mb, after)) return;
  const was = new Set(recipientsOf(mb, before));
  const now = recipientsOf(mb, after);
  const added = now.filter((r) => !was.has(r));
  const removed = [...was].filter((r) => !now.includes(r));
  const kept = now.filter((r) => was.has(r));
  const others = bodyKeys.filter((k) => k !== 'attendees');
  const toEveryone = others.some((k) => !OWN_COPY.has(k)) || (bodyKeys.includes('attendees') && others.length > 0);
  const subject = subjectOf(after);
  const out: SentMessage[] = [];
  if (added.length) out.push(message('invitation', eventId, added, subject));
  if (removed.length) out.push(message('cancellation', eventId, removed, subjectOf(before)));
  if (toEveryone && kept.length) {
    out.push(message('update', eventId, kept, subject));
    for (const ex of exceptions) out.push(message('update', ex.id, kept, ex.subject));
  }
  record(state, out);
}

/** DELETE, or POST …/cancel (with its comment), of an event or occurrence. */
export function recordCancel(state: CalendarState, mb: Mailbox, eventId: string, m: MeetingView, comment?: string): void {
  const to = organizedBy(mb, m) ? recipientsOf(mb, m) : [];
  if (to.length) record(state, [message('cancellation', eventId, to, subjectOf(m), comment)]);
}
