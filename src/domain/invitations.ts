/**
 * "No surprise messages" (DESIGN.md): Exchange mails every attendee of a meeting its organizer's mailbox
 * creates or re-invites, and mails cancellations when it is deleted, with no way to turn that off. So whether
 * cxsync writes a CRM meeting's attendees to Outlook at all is decided here, per meeting, once: the policy
 * `event.invitations` says what to do with a meeting cxsync writes for the first time, and that decision sticks
 * for the meeting's life. A meeting written without attendees carries them in its body instead, as one line
 * that this module also recognises and strips when the body is read back, so it never reaches the CRM's
 * description as user text. Pure: no clock, no I/O (callers pass `now`), so workflow code may use it too.
 */

export const INVITATION_POLICIES = ['new-future', 'never', 'always'] as const;
export type InvitationPolicy = (typeof INVITATION_POLICIES)[number];

/** 'invite': attendees are written to Outlook (Exchange mails them); 'list-in-body': they are only listed in the body. */
export const ATTENDEE_HANDLINGS = ['invite', 'list-in-body'] as const;
export type AttendeeHandling = (typeof ATTENDEE_HANDLINGS)[number];

/** An instant: a Date, or an ISO 8601 string with `Z` or an offset (a wall time without one names no instant). */
export type Instant = Date | string;

export interface InvitationFacts {
  policy: InvitationPolicy;
  /** When the CRM event was created. */
  crmCreatedAt: Instant;
  /** When the meeting starts; for a series, its first occurrence. */
  start: Instant;
  /** When the mailbox was enrolled (sync.mailbox.enrolled_at). */
  enrolledAt: Instant;
  now: Instant;
  /** The handling cxsync applied when it first wrote this meeting; absent when it never wrote it. */
  previous?: AttendeeHandling | null;
}

export interface InvitationDecision {
  handling: AttendeeHandling;
  reason: string;
}

const OFFSET = /(?:Z|[+-]\d{2}:?\d{2})$/i;

function instantMs(v: Instant): number | undefined {
  if (v instanceof Date) {
    const t = v.getTime();
    return Number.isNaN(t) ? undefined : t;
  }
  // Date.parse reads an offset-less string in the process's zone: a DST- and host-dependent answer.
  if (typeof v !== 'string' || !OFFSET.test(v.trim())) return undefined;
  const t = Date.parse(v.trim());
  return Number.isNaN(t) ? undefined : t;
}

/**
 * What to do with a meeting's attendees when cxsync writes it to Outlook. A previous decision always wins:
 * adding attendees later would invite people about a meeting they were never told of, and removing them would
 * mail cancellations, so a policy change only applies to meetings written from then on. Under "new-future" a
 * meeting is invited only when created strictly after enrolment and starting strictly after `now`; equal
 * instants, and times that cannot be read, list the attendees in the body (when in doubt, mail nobody).
 */
export function decideInvitations(f: InvitationFacts): InvitationDecision {
  if (f.previous === 'invite') return { handling: 'invite', reason: 'kept: cxsync wrote this meeting with its attendees before' };
  if (f.previous === 'list-in-body') return { handling: 'list-in-body', reason: 'kept: cxsync wrote this meeting without attendees before (listed in the body)' };
  if (f.policy === 'always') return { handling: 'invite', reason: 'event.invitations "always": attendees are written to Outlook' };
  if (f.policy === 'never') return { handling: 'list-in-body', reason: 'event.invitations "never": attendees are listed in the body' };
  const created = instantMs(f.crmCreatedAt);
  const enrolled = instantMs(f.enrolledAt);
  const start = instantMs(f.start);
  const now = instantMs(f.now);
  if (created === undefined || enrolled === undefined || start === undefined || now === undefined) {
    return { handling: 'list-in-body', reason: 'event.invitations "new-future": creation, start, enrolment or current time unknown' };
  }
  if (created <= enrolled) return { handling: 'list-in-body', reason: 'event.invitations "new-future": created before the mailbox was enrolled' };
  if (start <= now) return { handling: 'list-in-body', reason: 'event.invitations "new-future": already started' };
  return { handling: 'invite', reason: 'event.invitations "new-future": created after enrolment, starts in the future' };
}

/**
 * The handling an Outlook copy shows, for a meeting whose decision was not stored: the body block means
 * 'list-in-body' (even when the user has since invited people by hand in Outlook), attendees without it mean
 * 'invite'; neither (a meeting without attendees) decides nothing.
 */
export function handlingShownBy(written: { attendeeCount: number; body?: string | null }): AttendeeHandling | undefined {
  if (hasAttendeeBlock(written.body)) return 'list-in-body';
  return written.attendeeCount > 0 ? 'invite' : undefined;
}

// ---- the attendee block ----------------------------------------------------------------------------------

export interface ListedAttendee {
  email: string;
  name?: string;
}

/** Starts the one line that lists attendees in a body; recognised at the start of any line. */
export const ATTENDEE_BLOCK_LABEL = 'Attendees (not invited by cxsync):';

// The same normal form as event bodies are compared in (src/domain/event.ts normalizeText), kept here so that
// stripping the block and re-adding it round-trips exactly.
function normalize(s: string): string {
  return s.replace(/\r\n?/g, '\n').replace(/[ \t\u00a0]+\n/g, '\n').replace(/\n{3,}/g, '\n\n').trim();
}

function isBlockLine(line: string): boolean {
  return line.trimStart().startsWith(ATTENDEE_BLOCK_LABEL);
}

function formatAttendee(a: ListedAttendee): string {
  const name = (a.name ?? '').replace(/\s+/g, ' ').trim();
  if (!name || name.toLowerCase() === a.email.toLowerCase()) return a.email;
  // A comma, quote or angle bracket in a bare name would split or end the entry when read back.
  if (/[,"<>\\]/.test(name)) return `"${name.replace(/["\\]/g, (c) => `\\${c}`)}" <${a.email}>`;
  return `${name} <${a.email}>`;
}

/** The block line for these attendees, or undefined when there are none. */
export function renderAttendeeLine(attendees: readonly ListedAttendee[]): string | undefined {
  const listed = attendees.filter((a) => a.email.trim() !== '');
  if (listed.length === 0) return undefined;
  return `${ATTENDEE_BLOCK_LABEL} ${listed.map((a) => formatAttendee({ ...a, email: a.email.trim() })).join(', ')}`;
}

function splitEntries(list: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angled = false;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (quoted && c === '\\' && i + 1 < list.length) {
      cur += c + list[++i];
      continue;
    }
    if (c === '"' && !angled) quoted = !quoted;
    else if (c === '<' && !quoted) angled = true;
    else if (c === '>' && !quoted) angled = false;
    else if (c === ',' && !quoted && !angled) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((e) => e.trim()).filter((e) => e !== '');
}

function parseEntry(entry: string): ListedAttendee | undefined {
  const m = /^(?:"((?:[^"\\]|\\.)*)"|([^<>]*?))\s*<([^<>\s]+)>$/.exec(entry);
  if (m) {
    const name = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2];
    return name ? { email: m[3], name } : { email: m[3] };
  }
  return /^[^\s<>",]+@[^\s<>",]+$/.test(entry) ? { email: entry } : undefined;
}

/** Whether the body carries an attendee block. */
export function hasAttendeeBlock(body: string | null | undefined): boolean {
  return typeof body === 'string' && body.split(/\r\n?|\n/).some(isBlockLine);
}

/**
 * The body without its attendee block (normalised; undefined when nothing else is left), and the attendees the
 * block lists (undefined when there is no block). Every block line is removed, wherever a user's edit in
 * Outlook moved it; the last one is the list.
 */
export function splitAttendeeBlock(body: string | null | undefined): { body: string | undefined; attendees: ListedAttendee[] | undefined } {
  if (typeof body !== 'string') return { body: undefined, attendees: undefined };
  const lines = body.replace(/\r\n?/g, '\n').split('\n');
  const blockLines = lines.filter(isBlockLine);
  const rest = normalize(blockLines.length ? lines.filter((l) => !isBlockLine(l)).join('\n') : body);
  if (blockLines.length === 0) return { body: rest || undefined, attendees: undefined };
  const list = blockLines[blockLines.length - 1].trimStart().slice(ATTENDEE_BLOCK_LABEL.length);
  const attendees = splitEntries(list).flatMap((e) => parseEntry(e) ?? []);
  return { body: rest || undefined, attendees };
}

/**
 * The body to write for a meeting whose attendees are not invited: the user's text (any earlier block removed)
 * and, after a blank line, the block. Idempotent: a body read back from Outlook gives the same result again.
 */
export function withAttendeeBlock(body: string | null | undefined, attendees: readonly ListedAttendee[]): string | undefined {
  const text = splitAttendeeBlock(body).body;
  const line = renderAttendeeLine(attendees);
  if (!line) return text;
  return text ? `${text}\n\n${line}` : line;
}
