/**
 * The commands of a model run, for fast-check's model-based testing (fc.commands + fc.asyncModelRun): each is
 * plain data (a Command, which fast-check shrinks through the arbitrary that made it) wrapped in a ModelCommand,
 * an fc.AsyncCommand whose check(model) says whether it applies in the state the run is in and whose run(model,
 * real) plays it on the real activities (scenario.ts ModelRun.apply) and writes the trace. They print as a user
 * would say them: "A: step", "edit Outlook A R2.jobTitle", "pause B".
 *
 * Record names R1, R2, … are assigned in creation order (the initial records first); a command naming a record
 * that was not created yet does not run (check), nor does a pause of a paused mailbox, a resume of a running one
 * a meeting action in a run without meetings, or a mail action in a run without email (or a move of, or a CRM
 * action on, a message nobody dropped yet). A command naming a record that exists but whose copy on that
 * side is gone runs and is skipped by the world (world.ts: "skipped: no CRM copy"): only the real sides know.
 * In a run with one mailbox, B's commands act on A (what a two-mailbox run shrinks to) and print so.
 *
 * Mail (runs with email, one in four): a user drops a copy of message Mn (n 1–3, one Internet message id across
 * copies and mailboxes; senders in world.ts SENDERS: a CRM contact, an unknown address, an address two records
 * share) into a drop folder of A or B; moves a copy between drop folders or to the Inbox and back; a CRM user
 * edits the subject of Mn's activity, deletes it, or deletes the record Mn was filed to.
 */
import fc from 'fast-check';
import { DROP_FOLDERS, type DropFolder, type Mailbox } from './environment';
import type { MessageNo, Side } from './intent';
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
  | { t: 'meeting'; owner: Mailbox; n: 1 | 2; action: MeetingAction }
  /** A user drags a copy of message Mn into a drop folder of their mailbox (runs with email only). */
  | { t: 'drop'; m: Mailbox; n: MessageNo; folder: DropFolder }
  /** A user moves a copy of Mn (one dropped before) to another drop folder or to the Inbox. */
  | { t: 'move'; m: Mailbox; n: MessageNo; to: DropFolder | 'Inbox' }
  /** A CRM user acts on Mn's email activity: edits its subject, deletes it, or deletes a record it was filed to. */
  | { t: 'mail-crm'; n: MessageNo; action: MailCrmAction };

export const MAIL_CRM_ACTIONS = ['edit', 'delete', 'delete-record'] as const;
export type MailCrmAction = (typeof MAIL_CRM_ACTIONS)[number];

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
    case 'drop': return `${c.m}: drop a copy of M${c.n} into ${c.folder}`;
    case 'move': return `${c.m}: move M${c.n} to ${c.to}`;
    case 'mail-crm': return c.action === 'edit' ? `CRM user: edit the subject of M${c.n}'s activity` : c.action === 'delete' ? `CRM user: delete M${c.n}'s activity` : `CRM user: delete the record M${c.n} was filed to`;
  }
}

/** A run's fixed part, drawn before its commands. */
export interface ScenarioSettings {
  mailboxes: Mailbox[];
  batchSize: number;
  /** Records created (on these sides) and synced before the commands start, so edits meet linked pairs. */
  initial: Side[];
  /**
   * Calendars synced too, each user owning two CRM meetings with external attendees made before enrolment (one
   * upcoming, one past): under the default event.invitations no step, fault or user action may mail anyone.
   */
  meetings?: boolean;
  /**
   * Dropped mail is filed (email.enabled): the mail commands apply, and the email invariants are checked. The run
   * starts with M1 dropped into A's VContacts and filed, so that CRM users can act on its activity at any step.
   */
  email?: boolean;
}

/** A run with a fixed list of commands (scenario.ts runScenario plays it as it plays generated ones). */
export interface Scenario extends ScenarioSettings {
  commands: Command[];
}

export function scenarioText(s: Scenario): string {
  return [`mailboxes ${s.mailboxes.join('+')}, batch size ${s.batchSize}, synced first: ${s.initial.map(sideName).join(', ') || 'nothing'}${s.meetings ? ', with meetings' : ''}${s.email ? ", with email (M1 dropped into A's VContacts and filed first)" : ''}`, ...s.commands.map((c, i) => `  ${i + 1}. ${commandText(c)}`)].join('\n');
}

/**
 * fast-check's model of a run: what the commands played so far imply, known before any command runs. It says
 * which commands apply (ModelCommand.check); whether the sync kept up is for the invariants to judge afterwards.
 */
export interface Model {
  readonly mailboxes: readonly Mailbox[];
  readonly meetings: boolean;
  readonly email: boolean;
  /** Records created so far, the initial ones included: R1 … R`records` exist. */
  records: number;
  paused: Set<Mailbox>;
  /** Messages dropped so far, as "A:2" (mailbox, message). */
  dropped: Set<string>;
}

export function initialModel(s: ScenarioSettings): Model {
  // A run with email starts with M1 dropped by A and filed (scenario.ts setup).
  return { mailboxes: s.mailboxes, meetings: !!s.meetings, email: !!s.email, records: s.initial.length, paused: new Set(), dropped: new Set(s.email ? ['A:1'] : []) };
}

/** The system under test as the commands see it: scenario.ts ModelRun (real activities, PostgreSQL, emulator). */
export interface Real {
  apply(c: Command): Promise<string>;
  /** What happened, for a failure's report: each command played with its outcome, then the settling cycles. */
  readonly trace: string[];
  /** The commands played, as they acted (B read as A in a one-mailbox run). */
  readonly played: Command[];
}

/** The command with mailbox B read as A: in a run with one mailbox (what a two-mailbox run shrinks to). */
export function asActing(c: Command, mailboxes: readonly Mailbox[]): Command {
  if (mailboxes.includes('B')) return c;
  const a = <T>(x: T) => (x === 'B' ? 'A' : x) as T;
  const copy = { ...c } as Record<string, unknown>;
  for (const k of ['m', 'side', 'to', 'owner']) if (k in copy) copy[k] = a(copy[k]);
  return copy as Command;
}

/** One command of a model run, as fast-check's model-based testing plays it. */
export class ModelCommand implements fc.AsyncCommand<Model, Real> {
  /** The command as it acted, once run (so a one-mailbox counterexample prints A where it was drawn as B). */
  private acted?: Command;

  constructor(readonly command: Command) {}

  check(m: Model): boolean {
    const c = asActing(this.command, m.mailboxes);
    switch (c.t) {
      case 'pause':
        return !m.paused.has(c.m);
      case 'resume':
        return m.paused.has(c.m);
      case 'meeting':
        return m.meetings;
      case 'drop':
        return m.email;
      case 'move':
        return m.email && m.dropped.has(`${c.m}:${c.n}`);
      case 'mail-crm':
        return m.email && m.mailboxes.some((x) => m.dropped.has(`${x}:${c.n}`));
      case 'edit':
      case 'delete':
      case 'reassign':
      case 'unsynced':
        return c.rec <= m.records;
      default:
        return true;
    }
  }

  async run(m: Model, r: Real): Promise<void> {
    const c = (this.acted = asActing(this.command, m.mailboxes));
    if (c.t === 'create') m.records++;
    else if (c.t === 'pause') m.paused.add(c.m);
    else if (c.t === 'resume') m.paused.delete(c.m);
    else if (c.t === 'drop') m.dropped.add(`${c.m}:${c.n}`);
    r.played.push(c);
    r.trace.push(`${commandText(c)} → ${await r.apply(c)}`);
  }

  toString(): string {
    return commandText(this.acted ?? this.command);
  }

  /** fast-check clones a run's commands before it plays them again (a shrink): each play has its own. */
  [fc.cloneMethod](): ModelCommand {
    return new ModelCommand(this.command);
  }
}

const BATCH_SIZES = [1, 2, 3, 500];
const DROP_FOLDER_NAMES = Object.keys(DROP_FOLDERS) as DropFolder[];
const messageNo = fc.constantFrom<MessageNo>(1, 2, 3);
const dropFolder = fc.constantFrom(...DROP_FOLDER_NAMES);

/** One command, drawn with the weights below: mostly steps of the sync, then users' edits, then the rest. */
export function commandArb(mailboxes: Mailbox[], fields: string[], maxRecords: number): fc.Arbitrary<ModelCommand> {
  const m = fc.constantFrom(...mailboxes);
  const side = fc.constantFrom<Side>('crm', ...mailboxes);
  const rec = fc.integer({ min: 1, max: maxRecords });
  const cmd = <T extends Command>(a: fc.Arbitrary<T>) => a.map((c) => new ModelCommand(c));
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
    // Mail (runs with email only): enough that such a run drops, moves and edits a few messages between its steps.
    { weight: 6, arbitrary: cmd(fc.record({ t: fc.constant('drop' as const), m, n: messageNo, folder: dropFolder })) },
    { weight: 3, arbitrary: cmd(fc.record({ t: fc.constant('move' as const), m, n: messageNo, to: fc.constantFrom<DropFolder | 'Inbox'>('Inbox', ...DROP_FOLDER_NAMES) })) },
    { weight: 3, arbitrary: cmd(fc.record({ t: fc.constant('mail-crm' as const), n: messageNo, action: fc.constantFrom(...MAIL_CRM_ACTIONS) })) },
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

export interface ScenarioOptions {
  /** Most commands a run draws (some may not apply: see ModelCommand.check). */
  maxCommands: number;
  /**
   * fast-check's record of which commands ran in the failing run and its shrinks (the `replayPath` its report
   * prints): a counterexample path into shrunk commands replays only with it, as nothing runs while the path is
   * walked.
   */
  replayPath?: string;
}

/**
 * The two arbitraries of a run, for fc.asyncProperty(settings, commands, …): its settings, and up to
 * `maxCommands` commands (fc.commands, the whole range drawn: size "max") over mailboxes A and B.
 */
export function scenarioArbs(fields: string[], opts: ScenarioOptions): [fc.Arbitrary<ScenarioSettings>, fc.Arbitrary<Iterable<fc.AsyncCommand<Model, Real>>>] {
  // The commands do not depend on the mailbox count (B's act on A when there is one), so that fast-check can
  // shrink a failing two-mailbox run to one mailbox in one step.
  const settings = fc
    .record({
      two: fc.boolean(),
      batchSize: fc.constantFrom(...BATCH_SIZES),
      initial: fc.array(fc.constantFrom<Side>('crm', 'A', 'B'), { minLength: 1, maxLength: 3 }),
      // One run in four syncs calendars too (their cycles cost time; contacts carry the interleavings). A failure
      // shrinks towards 0: a run without them, unless they matter.
      meetings: fc.integer({ min: 0, max: 3 }).map((n) => n === 3),
      // One run in four files dropped mail too, drawn as meetings are (a failure shrinks towards a run without).
      email: fc.integer({ min: 0, max: 3 }).map((n) => n === 3),
    })
    .map(({ two, batchSize, initial, meetings, email }) => ({
      mailboxes: two ? (['A', 'B'] as Mailbox[]) : (['A'] as Mailbox[]),
      batchSize,
      meetings,
      email,
      initial: two ? initial : initial.map((x) => (x === 'B' ? 'A' : x)),
    }));
  // Few records, so that the users' actions and the sync's steps keep meeting on the same ones.
  const commands = fc.commands([commandArb(['A', 'B'], fields, 4)], { maxCommands: opts.maxCommands, size: 'max', ...(opts.replayPath ? { replayPath: opts.replayPath } : {}) });
  return [settings, commands];
}

/**
 * A failing run's path as CXSYNC_MODEL_PATH takes it: fast-check's counterexample path (the run's index among all
 * runs, then the shrinks taken), "@", and fc.commands' replay path (which commands ran in the failing run and in
 * each shrink: walking a path runs nothing, so fast-check cannot tell otherwise which ones it may drop).
 */
export function failurePath(counterexamplePath: string, commands: unknown): string {
  const m = /\/\*replayPath=("[^"]*")\*\/$/.exec(String(commands));
  return m ? `${counterexamplePath}@${JSON.parse(m[1]) as string}` : counterexamplePath;
}

/** CXSYNC_MODEL_PATH read back: fast-check's path and fc.commands' replay path. */
export function parseFailurePath(p: string): { path: string; replayPath?: string } {
  const at = p.indexOf('@');
  return at < 0 ? { path: p } : { path: p.slice(0, at), replayPath: p.slice(at + 1) };
}
