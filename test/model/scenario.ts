/**
 * One model run, as fast-check's model-based testing plays it (fc.asyncModelRun): the setup resets the shared
 * environment, creates and syncs the initial records and gives fast-check the model (commands.ts Model) and the
 * real system (ModelRun: the real activities, PostgreSQL and the HTTPS Graph emulator); fast-check plays the
 * commands that apply (each a workflow step or a user's action, commands.ts ModelCommand); then the run settles
 * and the invariants are checked. Returns the violations and a trace of what happened, for the failure report.
 * The same path plays a fixed list of commands.
 *
 * A run with email starts with M1 filed (dropped by A into VContacts after the initial records are synced), and is
 * checked twice: once quiet, on what delta alone must have filed (invariants.ts checkEmail,
 * 'delta'), then after time passes so that every drop folder's periodic id re-scan is due and the run is quiet
 * again, on everything.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { MailboxDriver } from './driver';
import { MAILBOXES, type Mailbox, type ModelEnv } from './environment';
import { checkEmail, checkInvariants, type Invariant, type Violation } from './invariants';
import { initialModel, ModelCommand, type Command, type MailCrmAction, type MeetingAction, type Model, type Real, type ScenarioSettings } from './commands';
import type { MessageNo } from './intent';
import { settle } from './settle';
import { World, type OutlookUnsynced } from './world';

export interface RunResult {
  violations: Violation[];
  trace: string[];
  /** The commands that ran, as they acted (B read as A in a one-mailbox run). */
  played: Command[];
}

/** Rounds of cycles quiescence may take: the writes a batch size lets through per cycle, and a margin for echoes. */
export function roundBound(records: number, batchSize: number): number {
  return 6 + 3 * Math.ceil((records + 1) / batchSize);
}

export class ModelRun implements Real {
  readonly world: World;
  readonly drivers: Record<Mailbox, MailboxDriver>;
  readonly trace: string[] = [];
  readonly played: Command[] = [];

  constructor(readonly env: ModelEnv, fields: string[], readonly mailboxes: Mailbox[]) {
    this.world = new World(env, fields);
    this.drivers = Object.fromEntries(mailboxes.map((m) => [m, new MailboxDriver(env, m)])) as Record<Mailbox, MailboxDriver>;
    // Who filed a message first (the owner of its activity) is seen right after each filing attempt.
    if (env.settings.email) {
      for (const m of mailboxes) this.drivers[m].onAttempt = async (activity) => (activity === 'fileMail' ? this.world.observeFiling(m) : undefined);
    }
  }

  private recordOf(n: number) {
    const rec = this.world.intent.byTag(`R${n}`);
    if (!rec) throw new Error(`R${n} was never created: ModelCommand.check lets no command name it`);
    return rec;
  }

  /** Plays one command; what it names exists (ModelCommand.check). */
  async apply(c: Command): Promise<string> {
    const w = this.world;
    switch (c.t) {
      case 'step':
      case 'lost-answer':
      case 'fault': {
        const d = this.drivers[c.m];
        if (c.t === 'fault' && c.applied) w.intent.lostWriteAnswers = true;
        const r = await d.step(
          c.t === 'step' ? { kind: 'normal' } : c.t === 'lost-answer' ? { kind: 'lost-answer' } : { kind: 'fault', faults: [{ status: c.status, count: c.count, retryAfterSeconds: 60, applyThenFail: c.applied }] },
        );
        return `${r.activity}: ${r.outcome}${r.error ? ` (${r.error.slice(0, 160)})` : ''}`;
      }
      case 'pause':
        this.drivers[c.m].pause();
        return 'paused';
      case 'resume':
        this.drivers[c.m].resume();
        return 'resumed';
      case 'batch':
        await this.env.setBatchSize(c.size);
        return `batch size ${c.size}`;
      case 'create': {
        // CRM contacts alternate between the two users, so the second mailbox meets contacts it does not own.
        const owner: Mailbox = this.mailboxes.length > 1 && w.intent.records.length % 2 === 1 ? 'B' : 'A';
        const rec = c.side === 'crm' ? await w.createInCrm(owner) : w.createInOutlook(c.side);
        return `created ${rec.tag}`;
      }
      default:
        break;
    }
    if (c.t === 'meeting') return this.meeting(c.owner, c.n, c.action);
    if (c.t === 'drop') return w.dropMail(c.m, c.n, c.folder);
    if (c.t === 'move') return w.moveMail(c.m, c.n, c.to);
    if (c.t === 'mail-crm') return this.mailCrm(c.n, c.action);
    const rec = this.recordOf(c.rec);
    switch (c.t) {
      case 'edit': {
        const value = c.clear ? null : w.value(rec, c.field, w.intent.next());
        return c.side === 'crm' ? w.editCrm(rec, c.field, value) : w.editOutlook(c.side, rec, c.field, value);
      }
      case 'delete':
        return c.side === 'crm' ? w.deleteInCrm(rec) : w.deleteInOutlook(c.side, rec);
      case 'reassign':
        return w.reassign(rec, c.to);
      case 'unsynced':
        if (c.side === 'crm') return w.setContactClass(rec, `class ${w.intent.next()}`);
        return w.setOutlookUnsynced(c.side, rec, c.key as OutlookUnsynced, w.intent.next());
    }
  }

  /**
   * Two meetings per user, made in the CRM a day before the mailbox was enrolled, each with two external
   * attendees: M1 starts in three days, M2 started yesterday. Under event.invitations "new-future" (the
   * default) neither may ever be written with its attendees, so nothing may be mailed.
   */
  async seedMeetings(): Promise<void> {
    for (const m of this.mailboxes) {
      for (const [n, day] of [[1, 3], [2, -1]] as const) {
        const id = (await sql<{ id: string }>`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, created_at)
          values (${this.env.users[m]}, ${`M${n}-${m} review`}, (now() at time zone 'UTC')::date + ${day}::int + time '10:00', (now() at time zone 'UTC')::date + ${day}::int + time '11:00', 'UTC', now() - interval '1 day')
          returning id::text`.execute(this.env.db)).rows[0].id;
        await sql`insert into crm.event_attendees (event_id, email, name) values (${id}::uuid, ${`guest${n}.${m.toLowerCase()}@partner.example`}, 'Guest'), (${id}::uuid, 'buyer@customer.example', 'Buyer')`.execute(this.env.db);
      }
    }
  }

  private async meeting(owner: Mailbox, n: 1 | 2, action: MeetingAction): Promise<string> {
    if (!this.env.settings.meetings) throw new Error('a meeting action in a run without meetings: ModelCommand.check lets none run');
    const db = this.env.db;
    const row = (await sql<{ id: string }>`select id::text from crm.events where subject like ${`M${n}-${owner} %`} and deleted_at is null and status <> 'Canceled'`.execute(db)).rows[0];
    if (!row) return `skipped: M${n} of ${owner} is gone`;
    switch (action) {
      case 'edit':
        await sql`update crm.events set subject = ${`M${n}-${owner} review ${this.world.intent.next()}`} where id = ${row.id}::uuid`.execute(db);
        return 'subject edited';
      case 'attendee':
        await sql`insert into crm.event_attendees (event_id, email, name) values (${row.id}::uuid, ${`new${this.world.intent.next()}@partner.example`}, 'New') on conflict do nothing`.execute(db);
        return 'attendee added';
      case 'delete':
        await sql`update crm.events set deleted_at = now() where id = ${row.id}::uuid`.execute(db);
        return 'deleted';
      case 'cancel':
        await sql`update crm.events set status = 'Canceled' where id = ${row.id}::uuid`.execute(db);
        return 'cancelled';
      case 'reassign': {
        const to = owner === 'A' ? 'B' : 'A';
        await sql`update crm.events set owner_id = ${this.env.users[to]}, subject = ${`M${n}-${to} review (from ${owner})`} where id = ${row.id}::uuid`.execute(db);
        return `given to ${to}`;
      }
    }
  }

  private mailCrm(n: MessageNo, action: MailCrmAction): Promise<string> {
    if (!this.env.settings.email) throw new Error('a mail action in a run without email: ModelCommand.check lets none run');
    const w = this.world;
    return action === 'edit' ? w.editActivity(n) : action === 'delete' ? w.deleteActivity(n) : w.deleteFiledRecord(n);
  }

  /** `until`: quiescence, every record linked (a run's first state), or the first round after which a condition holds. */
  async settle(until: 'quiet' | 'linked' | (() => Promise<boolean>) = 'quiet'): Promise<{ violations: Violation[] }> {
    // Each dropped copy may take a cycle of its own (the batch size is the filing limit too), and its records one more.
    const copies = [...this.world.intent.messages.values()].reduce((k, msg) => k + msg.copies.length, 0);
    const bound = roundBound(this.world.intent.records.length * this.mailboxes.length + 2 * copies, this.env.settings.batchSize);
    const s = await settle(this.env, this.mailboxes.map((m) => this.drivers[m]), bound, until === 'quiet' ? 'quiet' : until === 'linked' ? () => this.linked() : until);
    for (const c of s.cycles) this.trace.push(`  settle ${c.mailbox}: ${c.resumed ? 'resumed, ' : ''}${c.outcome}${c.workRemaining ? ', work remaining' : ''}, ${c.operations.length} op(s)${c.operations.length ? `: ${c.operations.join(' | ')}` : ''}${c.email ? `; ${c.email}` : ''}`);
    return s;
  }

  /** Every record is in the CRM and in every mailbox once, linked: where a run's commands start. */
  async linked(): Promise<boolean> {
    const n = this.world.intent.records.length;
    if ((await this.world.crmRows()).length !== n) return false;
    for (const m of this.mailboxes) {
      if (this.world.outlookItems(m).length !== n) return false;
      const links = await sql<{ n: number }>`select count(*)::int as n from sync.mapping where mailbox_id = ${MAILBOXES[m]} and record_type = 'contact'`.execute(this.env.db);
      if (links.rows[0].n !== n) return false;
    }
    return true;
  }

  /**
   * The invariants, once the run is quiet. With email: first what delta alone must have filed, then, after time
   * passes and every drop folder's id re-scan is due, a second quiet state checked in full.
   */
  async check(): Promise<Violation[]> {
    // Nothing dropped: a re-scan has nothing to find.
    if (!this.env.settings.email || this.world.intent.messages.size === 0) return checkInvariants(this.world, this.mailboxes);
    const delta = await checkEmail(this.world, this.mailboxes, 'delta');
    this.trace.push('-- time passes: the drop folders\' id re-scans are due; settling again --');
    await this.world.rescanDue();
    const again = await this.settle();
    if (again.violations.length) return [...delta, ...again.violations];
    return [...delta, ...(await checkInvariants(this.world, this.mailboxes))];
  }
}

/** What the sync did, for a failure's report: every operation with its outcome, and the sync log. */
async function syncJournal(env: ModelEnv): Promise<string[]> {
  const ops = await sql<{ line: string }>`select concat_ws(' ', 'op', cycle_id, mailbox_id, side, kind, status, crm_id, '|', reason, '|', error) as line
    from sync.operation order by id`.execute(env.db);
  const log = await sql<{ line: string }>`select concat_ws(' ', 'log', cycle_id, mailbox_id, level, side, item_id, message) as line from sync.log order by id`.execute(env.db);
  return ['-- sync journal --', ...ops.rows.map((r) => r.line), ...log.rows.map((r) => r.line)];
}

/** The setup failed: the initial records did not sync (violations), so there is nothing to play commands on. */
class InitialSyncFailed extends Error {
  constructor(readonly violations: Violation[]) {
    super('the initial records did not sync');
  }
}

const isCommandList = (c: Iterable<fc.AsyncCommand<Model, Real>> | readonly Command[]): c is readonly Command[] =>
  Array.isArray(c) && c.every((x) => typeof (x as Command).t === 'string');

/**
 * Plays a run: fc.asyncModelRun over `commands` (fc.commands' generated ones, or a fixed list of plain commands),
 * from a setup that resets the environment and syncs the initial records; then settles and checks.
 */
export async function runScenario(
  env: ModelEnv,
  fields: string[],
  s: ScenarioSettings,
  commands: Iterable<fc.AsyncCommand<Model, Real>> | readonly Command[],
  skip: ReadonlySet<Invariant> = new Set(),
): Promise<RunResult> {
  const cmds = isCommandList(commands) ? commands.map((c) => new ModelCommand(c)) : commands;
  const keep = (vs: Violation[]) => vs.filter((v) => !skip.has(v.invariant));
  let run: ModelRun | undefined;
  const setup = async (): Promise<{ model: Model; real: ModelRun }> => {
    // The first state is set up in as few cycles as possible: it is not what the run is about.
    await env.reset({ mailboxes: s.mailboxes, batchSize: 500, meetings: !!s.meetings, email: !!s.email });
    run = new ModelRun(env, fields, s.mailboxes);
    if (s.meetings) await run.seedMeetings();
    if (s.email) await run.world.seedMail();
    for (const side of s.initial) await run.apply({ t: 'create', side });
    const first = await run.settle('linked');
    if (keep(first.violations).length) throw new InitialSyncFailed(first.violations);
    if (s.email) {
      // A message filed before the commands start (as R1, its sender, is synced): CRM users can edit or delete its
      // activity at any step, while other copies of it are dropped, moved and filed.
      const w = run.world;
      run.trace.push(w.dropMail('A', 1, 'VContacts'));
      const filed = await run.settle(async () => (await w.activitiesOf(w.message(1))).length > 0);
      if (keep(filed.violations).length) throw new InitialSyncFailed(filed.violations);
    }
    await env.setBatchSize(s.batchSize);
    run.trace.push('-- commands --');
    run.world.intent.commandsFrom = run.world.intent.next();
    return { model: initialModel(s), real: run };
  };
  const result = (violations: Violation[]): RunResult => ({ violations, trace: run?.trace ?? [], played: run?.played ?? [] });
  try {
    await fc.asyncModelRun(setup, cmds);
    run = run!;
    run.trace.push('-- settling --');
    const settled = await run.settle();
    // A sync that never settles leaves both sides mid-flight: checking them would only add noise.
    const violations = keep(settled.violations).length ? settled.violations : [...settled.violations, ...(await run.check())];
    if (keep(violations).length) run.trace.push(...(await syncJournal(env)));
    return result(keep(violations));
  } catch (err) {
    if (err instanceof InitialSyncFailed) return result(err.violations);
    // The workflow itself failed (an activity error it does not handle): it would stop syncing the mailbox.
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return result(keep([{ invariant: 'termination', message: `the mailbox workflow failed: ${message}` }]));
  }
}
