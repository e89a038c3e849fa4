/**
 * The commands of a model run, as plain data (so fast-check can shrink a failing list) that print as a user
 * would say them: "A: step", "edit Outlook A R2.jobTitle", "pause B". Record names R1, R2, … are assigned in
 * creation order; a command naming a record that does not exist (yet, or any more on that side) is skipped.
 */
import fc from 'fast-check';
import type { Mailbox } from './environment';
import type { Side } from './intent';
import { OUTLOOK_UNSYNCED, sideName, type OutlookUnsynced } from './world';

export type Command =
  | { t: 'step'; m: Mailbox }
  /** The activity succeeds but the workflow never hears: Temporal runs it again. */
  | { t: 'lost-answer'; m: Mailbox }
  /** The next Graph operations of one activity attempt fail (applied: performed, then answered with the fault). */
  | { t: 'fault'; m: Mailbox; status: 429 | 503; applied: boolean; count: number }
  | { t: 'pause'; m: Mailbox }
  | { t: 'resume'; m: Mailbox }
  | { t: 'batch'; size: number }
  | { t: 'create'; side: Side }
  | { t: 'edit'; side: Side; rec: number; field: string; clear: boolean }
  | { t: 'delete'; side: Side; rec: number }
  | { t: 'reassign'; rec: number; to: Mailbox | 'outside' }
  /** CRM: the contact class; Outlook: a property cxsync does not sync. */
  | { t: 'unsynced'; side: Side; rec: number; key: OutlookUnsynced | 'contact_class' }
  /**
   * A CRM user acts on one of their meetings that existed before enrolment (runs with meetings only): edits it,
   * changes its attendees, deletes it, cancels it or gives it to the other user. None of this may mail anyone.
   */
  | { t: 'meeting'; owner: Mailbox; n: 1 | 2; action: MeetingAction };

export const MEETING_ACTIONS = ['edit', 'attendee', 'delete', 'cancel', 'reassign'] as const;
export type MeetingAction = (typeof MEETING_ACTIONS)[number];

export function commandText(c: Command): string {
  switch (c.t) {
    case 'step': return `${c.m}: step`;
    case 'lost-answer': return `${c.m}: step, answer lost`;
    case 'fault': return `${c.m}: step with ${c.count}× ${c.status}${c.applied ? ' after the write was done' : ''}`;
    case 'pause': return `pause ${c.m}`;
    case 'resume': return `resume ${c.m}`;
    case 'batch': return `batch size ${c.size}`;
    case 'create': return `create in ${sideName(c.side)}`;
    case 'edit': return `${c.clear ? 'clear' : 'edit'} ${sideName(c.side)} R${c.rec}.${c.field}`;
    case 'delete': return `delete ${sideName(c.side)} R${c.rec}`;
    case 'reassign': return `reassign R${c.rec} to ${c.to === 'outside' ? 'someone outside the workgroup' : `user ${c.to}`}`;
    case 'unsynced': return `set ${sideName(c.side)} R${c.rec}.${c.key} (unsynced)`;
    case 'meeting': return `CRM user ${c.owner}: ${c.action} meeting M${c.n}`;
  }
}

/** The same object, printed readably in fast-check's counterexamples. */
function printable<T extends Command>(c: T): T {
  return Object.defineProperty(c, fc.toStringMethod, { value: () => commandText(c), enumerable: false });
}

export interface Scenario {
  mailboxes: Mailbox[];
  batchSize: number;
  /** Records created (on these sides) and synced before the commands start, so edits meet linked pairs. */
  initial: Side[];
  /**
   * Calendars synced too, each user owning two CRM meetings with external attendees made before enrolment (one
   * upcoming, one past): under the default event.invitations no step, fault or user action may mail anyone.
   */
  meetings?: boolean;
  commands: Command[];
}

export function scenarioText(s: Scenario): string {
  return [`mailboxes ${s.mailboxes.join('+')}, batch size ${s.batchSize}, synced first: ${s.initial.map(sideName).join(', ') || 'nothing'}${s.meetings ? ', with meetings' : ''}`, ...s.commands.map((c, i) => `  ${i + 1}. ${commandText(c)}`)].join('\n');
}

const BATCH_SIZES = [1, 2, 3, 500];

export function commandArb(mailboxes: Mailbox[], fields: string[], maxRecords: number): fc.Arbitrary<Command> {
  const m = fc.constantFrom(...mailboxes);
  const side = fc.constantFrom<Side>('crm', ...mailboxes);
  const rec = fc.integer({ min: 1, max: maxRecords });
  const cmd = <T extends Command>(a: fc.Arbitrary<T>) => a.map(printable);
  return fc.oneof(
    { weight: 24, arbitrary: cmd(m.map((x) => ({ t: 'step' as const, m: x }))) },
    { weight: 2, arbitrary: cmd(m.map((x) => ({ t: 'lost-answer' as const, m: x }))) },
    {
      weight: 2,
      arbitrary: cmd(
        fc.record({ t: fc.constant('fault' as const), m, status: fc.constantFrom<429 | 503>(429, 503), applied: fc.boolean(), count: fc.integer({ min: 1, max: 3 }) })
          .map((f) => ({ ...f, applied: f.applied && f.status === 503 })), // a 429 is refused before any work is done
      ),
    },
    { weight: 1, arbitrary: cmd(m.map((x) => ({ t: 'pause' as const, m: x }))) },
    { weight: 1, arbitrary: cmd(m.map((x) => ({ t: 'resume' as const, m: x }))) },
    { weight: 1, arbitrary: cmd(fc.constantFrom(...BATCH_SIZES).map((size) => ({ t: 'batch' as const, size }))) },
    { weight: 2, arbitrary: cmd(side.map((s) => ({ t: 'create' as const, side: s }))) },
    {
      weight: 8,
      arbitrary: cmd(
        fc.record({ t: fc.constant('edit' as const), side, rec, field: fc.constantFrom(...fields), clear: fc.integer({ min: 0, max: 9 }).map((n) => n === 0) })
          .map((e) => ({ ...e, clear: e.clear && e.field !== 'lastName' })), // the last name carries the record's tag
      ),
    },
    { weight: 2, arbitrary: cmd(fc.record({ t: fc.constant('delete' as const), side, rec })) },
    { weight: 1, arbitrary: cmd(fc.record({ t: fc.constant('reassign' as const), rec, to: fc.constantFrom<Mailbox | 'outside'>(...mailboxes, 'outside') })) },
    { weight: 2, arbitrary: cmd(fc.record({ t: fc.constant('meeting' as const), owner: m, n: fc.constantFrom<1 | 2>(1, 2), action: fc.constantFrom(...MEETING_ACTIONS) })) },
    {
      weight: 3,
      arbitrary: cmd(
        fc.oneof(
          fc.record({ t: fc.constant('unsynced' as const), side: fc.constant<Side>('crm'), rec, key: fc.constant('contact_class' as const) }),
          fc.record({ t: fc.constant('unsynced' as const), side: m as fc.Arbitrary<Side>, rec, key: fc.constantFrom(...OUTLOOK_UNSYNCED) }),
        ),
      ),
    },
  );
}

/** The command with mailbox B read as A: a run with one mailbox (what a two-mailbox run shrinks to). */
function onlyA(c: Command): Command {
  const a = <T>(x: T) => (x === 'B' ? 'A' : x) as T;
  const copy = { ...c } as Record<string, unknown>;
  for (const k of ['m', 'side', 'to', 'owner']) if (k in copy) copy[k] = a(copy[k]);
  return printable(copy as Command);
}

/**
 * Runs of up to `maxCommands` commands (most between 5 and `maxCommands`; one at least, so a failing run can
 * shrink to the one command that matters).
 */
export function scenarioArb(fields: string[], opts: { maxCommands: number }): fc.Arbitrary<Scenario> {
  // No chain on the mailbox count, so that fast-check can shrink a failing two-mailbox run to one mailbox.
  return fc
    .record({
      two: fc.boolean(),
      batchSize: fc.constantFrom(...BATCH_SIZES),
      initial: fc.array(fc.constantFrom<Side>('crm', 'A', 'B'), { minLength: 1, maxLength: 3 }),
      // One run in four syncs calendars too (their cycles cost time; contacts carry the interleavings).
      meetings: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
      // Few records, so that the users' actions and the sync's steps keep meeting on the same ones.
      commands: fc.array(commandArb(['A', 'B'], fields, 4), { minLength: 1, maxLength: opts.maxCommands, size: 'max' }),
    })
    .map(({ two, batchSize, initial, meetings, commands }) => ({
      mailboxes: two ? (['A', 'B'] as Mailbox[]) : (['A'] as Mailbox[]),
      batchSize,
      meetings,
      initial: two ? initial : initial.map((x) => (x === 'B' ? 'A' : x)),
      commands: two ? commands : commands.map(onlyA),
    }));
}
