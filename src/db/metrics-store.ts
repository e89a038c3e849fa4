/**
 * The database side of cxsync's Prometheus metrics (src/activities/metrics.ts): what a scrape reads (mailboxes by
 * state, sync lag), what an apply batch finished, and the one write the state gauge needs. Every read here runs
 * on each scrape of every worker, so each is an index lookup or a scan of small tables only.
 */
import { sql } from 'kysely';
import type { Db } from './connection';
import { REPLAN_PREFIX } from './exchange-state';
import { RECORD_TYPES, type MailboxState } from '../domain/status';

export interface FleetSnapshot {
  /** Enrolled mailboxes per state, every state present (0 when none). */
  mailboxes: Record<MailboxState, number>;
  /** Per record type and the side a change was read from: seconds since the oldest change still staged (0: none). */
  lag: Array<{ recordType: string; side: 'exchange' | 'crm'; seconds: number }>;
}

export interface FinishedOperations {
  side: string;
  kind: string;
  status: 'done' | 'failed' | 'skipped';
  /** A skipped operation given back for re-planning (REPLAN_PREFIX) rather than skipped for good. */
  replanned: boolean;
  n: number;
}

export class MetricsStore {
  constructor(private readonly db: Db) {}

  /**
   * The fleet as PostgreSQL knows it, read in one transaction with a statement timeout so a slow database makes
   * a scrape fail fast instead of hanging it. A mailbox's state comes from its open cycle (at most one, the
   * partial index cycle_one_running): closed as failed is needs-attention, closed as interrupted is paused, open
   * otherwise is syncing; no open cycle is idle. A mailbox paused between cycles has no open cycle and counts as
   * idle: the workflow alone knows it (`cxsync list`).
   */
  async snapshot(timeoutMs = 5_000): Promise<FleetSnapshot> {
    return this.db.transaction().execute(async (tx) => {
      await sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`.execute(tx);
      const states = await sql<{ state: MailboxState; n: string }>`
        select case
                 when c.id is null then 'idle'
                 when c.summary->>'outcome' = 'failed' then 'needs-attention'
                 when c.summary->>'outcome' = 'interrupted' then 'paused'
                 else 'syncing'
               end as state,
               count(*) as n
        from sync.mailbox m
        left join sync.cycle c on c.mailbox_id = m.id and c.status = 'running'
        group by 1`.execute(tx);
      const mailboxes: Record<MailboxState, number> = { idle: 0, syncing: 0, paused: 0, 'needs-attention': 0 };
      for (const r of states.rows) mailboxes[r.state] = Number(r.n);
      // One min() per (type, side): each is the first entry of staged_change_age (0012), not a table scan.
      const types = sql.join(RECORD_TYPES.map((t) => sql`(${t})`));
      const lag = await sql<{ record_type: string; side: 'exchange' | 'crm'; seconds: string | null }>`
        select t.record_type, s.side,
               extract(epoch from now() - (select min(sc.staged_at) from sync.staged_change sc
                                            where sc.record_type = t.record_type and sc.side = s.side)) as seconds
        from (values ${types}) as t(record_type)
        cross join (values ('exchange'), ('crm')) as s(side)`.execute(tx);
      return {
        mailboxes,
        lag: lag.rows.map((r) => ({ recordType: r.record_type, side: r.side, seconds: r.seconds === null ? 0 : Math.max(0, Number(r.seconds)) })),
      };
    });
  }

  /**
   * The operations of one cycle and record type finished at or after `since` (by this apply attempt: the
   * mailbox's lease lets no other attempt write meanwhile), by side, kind and outcome.
   */
  async finishedSince(cycleId: string, recordType: string, since: Date): Promise<FinishedOperations[]> {
    const r = await sql<{ side: string; kind: string; status: 'done' | 'failed' | 'skipped'; replanned: boolean; n: string }>`
      select side, kind, status, coalesce(error like ${`${REPLAN_PREFIX}%`}, false) as replanned, count(*) as n
      from sync.operation
      where cycle_id = ${cycleId} and record_type = ${recordType} and status <> 'pending' and done_at >= ${since}
      group by 1, 2, 3, 4`.execute(this.db);
    return r.rows.map((row) => ({ ...row, n: Number(row.n) }));
  }

  /**
   * A resumed cycle is running again: the outcome it was closed with (interrupted by a pause, failed into
   * needs-attention) no longer describes the mailbox, so it is dropped until finishCycle writes the next one.
   */
  async reopenCycle(cycleId: string): Promise<void> {
    await sql`update sync.cycle set summary = summary - 'outcome' - 'detail'
              where id = ${cycleId} and status = 'running' and summary ? 'outcome'`.execute(this.db);
  }
}
