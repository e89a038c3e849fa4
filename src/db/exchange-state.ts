/**
 * sync.* access for the Exchange side's cycle bookkeeping (migration 0004): full delta rounds that span
 * cycles, operations carried over to the next cycle by the batch size, and the staged rows kept for re-planning.
 * Kept next to SyncStore rather than in it so the two can change independently; same rules (only this module
 * and sync-store.ts touch sync.*).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema';

type Exec = Kysely<Database> | Transaction<Database>;

/** Error text that marks an operation skipped for re-planning (412 on a newer Exchange version). */
export const REPLAN_PREFIX = 'replan:';

export class ExchangeStateStore {
  constructor(readonly db: Kysely<Database>) {}

  /**
   * Moves the mailbox's pending operations of earlier cycles into `cycleId`, so this cycle applies them instead
   * of planning anew. Returns how many there were.
   */
  async adoptPending(mailboxId: string, recordType: string, cycleId: string): Promise<number> {
    const r = await sql`update sync.operation set cycle_id = ${cycleId}::bigint
      where mailbox_id = ${mailboxId} and record_type = ${recordType} and status = 'pending' and cycle_id <> ${cycleId}::bigint`.execute(this.db);
    return Number(r.numAffectedRows ?? 0);
  }

  async pendingAnywhere(mailboxId: string, recordType: string): Promise<number> {
    const r = await sql<{ n: string }>`select count(*)::text as n from sync.operation
      where mailbox_id = ${mailboxId} and record_type = ${recordType} and status = 'pending'`.execute(this.db);
    return Number(r.rows[0].n);
  }

  /** Writes attempted in this cycle per side (done or failed), for the per-cycle batch size. */
  async writtenThisCycle(cycleId: string, recordType: string): Promise<{ exchange: number; crm: number }> {
    const r = await sql<{ side: string; n: string }>`select side, count(*)::text as n from sync.operation
      where cycle_id = ${cycleId}::bigint and record_type = ${recordType} and status in ('done', 'failed') and side in ('exchange', 'crm')
      group by side`.execute(this.db);
    const out = { exchange: 0, crm: 0 };
    for (const row of r.rows) out[row.side as 'exchange' | 'crm'] = Number(row.n);
    return out;
  }

  async pulledThisCycle(cycleId: string, recordType: string, side: 'exchange' | 'crm'): Promise<number> {
    const key = `pulled:${recordType}:${side}`;
    const r = await sql<{ n: string | null }>`select summary->>${key}::text as n from sync.cycle where id = ${cycleId}::bigint`.execute(this.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  /** Pending operations of the cycle on the given sides, in plan order. */
  async pendingOn(cycleId: string, recordType: string, sides: string[], limit: number) {
    return this.db
      .selectFrom('sync.operation')
      .selectAll()
      .where('cycle_id', '=', cycleId)
      .where('record_type', '=', recordType)
      .where('status', '=', 'pending')
      .where('side', 'in', sides as Array<'exchange' | 'crm' | 'mapping'>)
      // Mapping operations first (an unlink before the creates that follow it), then Exchange writes before CRM
      // writes: a CRM write whose Exchange sibling met a newer version is then given back with it, unwritten.
      .orderBy(sql`case side when 'mapping' then 0 when 'exchange' then 1 else 2 end`)
      .orderBy('seq')
      .limit(limit)
      .execute();
  }

  /**
   * Pending CRM operations of the cycle whose Exchange sibling (same plan, same CRM record) is still pending: they
   * wait for it, so that a pair whose Exchange half meets a newer version is given back whole.
   */
  async crmWaitingForSibling(cycleId: string, recordType: string): Promise<Set<string>> {
    const r = await sql<{ id: string }>`select c.id::text as id from sync.operation c
      where c.cycle_id = ${cycleId}::bigint and c.record_type = ${recordType} and c.status = 'pending' and c.side = 'crm' and c.crm_id is not null
        and exists (select 1 from sync.operation x where x.mailbox_id = c.mailbox_id and x.record_type = c.record_type and x.status = 'pending'
          and x.side = 'exchange' and x.crm_id = c.crm_id and x.planned_cycle = c.planned_cycle)`.execute(this.db);
    return new Set(r.rows.map((x) => x.id));
  }

  async countPendingOn(cycleId: string, recordType: string, sides: string[]): Promise<number> {
    const r = await sql<{ n: string }>`select count(*)::text as n from sync.operation
      where cycle_id = ${cycleId}::bigint and record_type = ${recordType} and status = 'pending' and side = any(${sides}::text[])`.execute(this.db);
    return Number(r.rows[0].n);
  }

  async markAttempts(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await sql`update sync.operation set attempts = attempts + 1 where id = any(${ids}::bigint[])`.execute(this.db);
  }

  // ---- full rounds ----

  async fullRoundStartedAt(mailboxId: string, recordType: string): Promise<Date | null> {
    const r = await sql<{ at: Date | null }>`select full_round_started_at as at from sync.cursor where mailbox_id = ${mailboxId} and record_type = ${recordType}`.execute(this.db);
    return r.rows[0]?.at ?? null;
  }

  /** A full round begins (or begins again after a 410): what an earlier attempt saw no longer counts. */
  async startFullRound(exec: Exec, mailboxId: string, recordType: string): Promise<Date> {
    await sql`delete from sync.round_item where mailbox_id = ${mailboxId} and record_type = ${recordType}`.execute(exec);
    const r = await sql<{ at: Date }>`update sync.cursor set full_round_started_at = now(), updated_at = now()
      where mailbox_id = ${mailboxId} and record_type = ${recordType} returning full_round_started_at as at`.execute(exec);
    return r.rows[0].at;
  }

  async finishFullRound(exec: Exec, mailboxId: string, recordType: string): Promise<void> {
    await sql`delete from sync.round_item where mailbox_id = ${mailboxId} and record_type = ${recordType}`.execute(exec);
    await sql`update sync.cursor set full_round_started_at = null, updated_at = now() where mailbox_id = ${mailboxId} and record_type = ${recordType}`.execute(exec);
  }

  async markRoundItems(exec: Exec, mailboxId: string, recordType: string, ids: string[], state: 'seen' | 'orphan'): Promise<void> {
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 1000) {
      const chunk = unique.slice(i, i + 1000);
      await sql`insert into sync.round_item (mailbox_id, record_type, exchange_id, state)
        select ${mailboxId}, ${recordType}, x, ${state} from unnest(${chunk}::text[]) as x
        on conflict (mailbox_id, record_type, exchange_id) do update set state = case when sync.round_item.state = 'orphan' then 'orphan' else excluded.state end`.execute(exec);
    }
  }

  async orphans(mailboxId: string, recordType: string, ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const r = await sql<{ id: string }>`select exchange_id as id from sync.round_item
      where mailbox_id = ${mailboxId} and record_type = ${recordType} and state = 'orphan' and exchange_id = any(${ids}::text[])`.execute(this.db);
    return new Set(r.rows.map((x) => x.id));
  }

  /** Mapped items the completed full round did not see, whose mapping is older than the round. */
  async unseenMapped(mailboxId: string, recordType: string, startedAt: Date): Promise<Array<{ crm_id: string; exchange_id: string }>> {
    const r = await sql<{ crm_id: string; exchange_id: string }>`select m.crm_id, m.exchange_id from sync.mapping m
      where m.mailbox_id = ${mailboxId} and m.record_type = ${recordType} and m.updated_at < ${startedAt}
        and not exists (select 1 from sync.round_item i where i.mailbox_id = m.mailbox_id and i.record_type = m.record_type and i.exchange_id = m.exchange_id)
      order by m.crm_id`.execute(this.db);
    return r.rows;
  }

  /** Which of these Exchange ids / CRM ids are mapped already. */
  async mappedIds(mailboxId: string, recordType: string, exchangeIds: string[], crmIds: string[]): Promise<{ exchange: Set<string>; crm: Set<string> }> {
    const r = await sql<{ crm_id: string; exchange_id: string }>`select crm_id, exchange_id from sync.mapping
      where mailbox_id = ${mailboxId} and record_type = ${recordType} and (exchange_id = any(${exchangeIds}::text[]) or crm_id = any(${crmIds}::text[]))`.execute(this.db);
    return { exchange: new Set(r.rows.map((x) => x.exchange_id)), crm: new Set(r.rows.map((x) => x.crm_id)) };
  }
}
