/**
 * Quiescence: faults cleared, every mailbox resumed, then whole cycles of every mailbox in turn until, after a
 * round in which no cycle asked for another at once (workRemaining), a further round plans nothing, files or
 * lists no mail, and every CRM feed has read past the last CRM write. The rounds are bounded: a re-plan loop or
 * an item that never settles is a finding (invariant "termination"), not a hang.
 */
import { sql } from 'kysely';
import type { Db } from '../../src/db/connection';
import { StuckError, type MailboxDriver } from './driver';
import type { ModelEnv } from './environment';
import type { Violation } from './invariants';

/**
 * The CRM feed reads below the oldest running transaction of the whole PostgreSQL cluster; another test file's
 * open transaction can hold a user's edit back from the next cycle. Waiting for the horizon keeps "quiet" honest.
 */
export async function waitForCrmFeed(db: Db, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await sql<{ ok: boolean }>`select coalesce((select max(change_txid) from crm.contacts) < pg_snapshot_xmin(pg_current_snapshot()), true)
      and coalesce((select max(change_txid) from crm.tasks) < pg_snapshot_xmin(pg_current_snapshot()), true)
      and coalesce((select max(change_txid) from crm.events) < pg_snapshot_xmin(pg_current_snapshot()), true) as ok`.execute(db);
    if (r.rows[0].ok) return;
    if (Date.now() > deadline) throw new Error('the CRM feed horizon did not pass the last CRM write within 30 s (a long transaction elsewhere in the cluster?)');
    await new Promise((res) => setTimeout(res, 5));
  }
}

/**
 * Every CRM change has been read by the mailbox's feed: its committed watermark is past the newest row. A cycle
 * that ran while the horizon was held back (or resumed with the watermark of an interrupted read) planned
 * nothing, yet left changes for the next one: that round is not quiet.
 */
async function feedCaughtUp(db: Db, upn: string): Promise<boolean> {
  const r = await sql<{ ok: boolean }>`select coalesce(bool_and(case c.record_type
      when 'contact' then coalesce((select max(change_txid) from crm.contacts) < c.crm_watermark::xid8, c.crm_watermark is not null or not exists (select 1 from crm.contacts))
      when 'task' then coalesce((select max(change_txid) from crm.tasks) < c.crm_watermark::xid8, c.crm_watermark is not null or not exists (select 1 from crm.tasks))
      else true end), true) as ok
    from sync.cursor c where c.mailbox_id = ${upn}`.execute(db);
  return r.rows[0].ok;
}

export interface CycleOutcome {
  mailbox: string;
  outcome: string;
  operations: string[];
  /** What the cycle's email step did (filed, listed, records created), when it did anything. */
  email?: string;
  workRemaining: boolean;
  resumed: boolean;
}

export interface Settled {
  rounds: number;
  violations: Violation[];
  /** Every cycle run while settling, for the failure report. */
  cycles: CycleOutcome[];
}

async function operationsOf(db: Db, cycleId: string): Promise<string[]> {
  const r = await sql<{ s: string }>`select kind || ' ' || side || ' [' || status || ']: ' || reason as s from sync.operation where cycle_id = ${cycleId}::bigint order by record_type, seq`.execute(db);
  return r.rows.map((x) => x.s);
}

/**
 * `until`: 'quiet' (the default) is quiescence as above; a function instead ends the rounds at the first one
 * that leaves nothing for later and after which it answers true (the echoes of the round's writes may still
 * come): enough to set up a run's first state in as few cycles as possible.
 */
export async function settle(env: ModelEnv, drivers: MailboxDriver[], maxRounds: number, until: 'quiet' | (() => Promise<boolean>) = 'quiet'): Promise<Settled> {
  env.emulator.admin.clearFaults();
  env.forgetThrottling();
  const cycles: CycleOutcome[] = [];
  const stuck = (err: unknown): Settled => {
    if (!(err instanceof StuckError)) throw err;
    return { rounds: 0, cycles, violations: [{ invariant: 'termination', message: err.message }] };
  };
  const run = async (d: MailboxDriver) => {
    await waitForCrmFeed(env.db);
    const { summary, workRemaining, resumed } = await d.finishCycle();
    const e = summary.email;
    const email = e && e.filed + e.unresolved + e.recordsCreated > 0 ? `email: ${e.filed} filed, ${e.unresolved} listed, ${e.recordsCreated} record(s) created` : undefined;
    const c = { mailbox: d.mailbox, outcome: summary.outcome, operations: await operationsOf(env.db, summary.cycleId), workRemaining, resumed, ...(email ? { email } : {}) };
    cycles.push(c);
    return c;
  };
  try {
    for (const d of drivers) {
      d.resume();
      if (!d.idle) await run(d); // the cycle under way ends first, as the workflow would end it
    }
    // A round counts as quiet only after a round that left nothing for later: a cycle that goes on with a delta
    // round begun earlier has not read what changed since that round began. Before the first round, that is each
    // mailbox's last cycle (just ended above, or before the settling began): when every one of them completed and
    // left nothing, the first round's cycles start afresh and can be the quiet round.
    let previousLeftWork = drivers.some((d) => d.state.lastCycle?.outcome !== 'completed' || d.state.workRemaining);
    for (let round = 1; round <= maxRounds; round++) {
      let quiet = !previousLeftWork;
      previousLeftWork = false;
      for (const d of drivers) {
        const c = await run(d);
        if (c.workRemaining || c.outcome !== 'completed') previousLeftWork = true;
        // A resumed cycle read both sides before its interruption: only a fresh one shows there is nothing left.
        // Filing writes no sync.operation: a cycle that filed or listed mail is not quiet either.
        if (c.outcome !== 'completed' || c.workRemaining || c.operations.length > 0 || c.resumed || c.email) quiet = false;
      }
      if (until !== 'quiet') {
        if (!previousLeftWork && (await until())) return { rounds: round, violations: [], cycles };
        continue;
      }
      for (const d of drivers) if (quiet && !(await feedCaughtUp(env.db, d.upn))) quiet = false;
      if (quiet) return { rounds: round, violations: [], cycles };
    }
  } catch (err) {
    return stuck(err);
  }
  const last = cycles.slice(-drivers.length).map((c) => `${c.mailbox}: ${c.outcome}, workRemaining ${c.workRemaining}, ${c.operations.length} op(s)${c.operations.length ? `: ${c.operations.slice(0, 4).join(' | ')}` : ''}`);
  return { rounds: maxRounds, cycles, violations: [{ invariant: 'termination', message: `no quiet round within ${maxRounds} rounds of cycles; the last: ${last.join('; ')}` }] };
}
