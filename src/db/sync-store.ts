/** Database access for the engine's state (schema `sync`): the only module that reads or writes sync.* tables. */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, MappingTable, OperationTable, StagedChangeTable } from './schema';
import { CRM_VERSION_KEY, type StagedItem } from '../domain/planning';
import { REPLAN_PREFIX } from './exchange-state';
import type { MappingState } from '../domain/reconcile';
import type { Selectable } from 'kysely';

type Exec = Kysely<Database> | Transaction<Database>;

export type MappingRow = Selectable<MappingTable>;
/** A mapping as written: the base and CRM version are optional (absent: unknown, e.g. a relinked item). */
export type MappingWrite = Omit<MappingRow, 'updated_at' | 'base' | 'crm_version'> & { base?: unknown; crm_version?: string | null };
export type MappingUpdate = Partial<Pick<MappingRow, 'crm_fingerprint' | 'exchange_fingerprint' | 'exchange_change_key' | 'crm_version'>> & { base?: unknown };
export type OperationRow = Selectable<OperationTable>;

export interface StagedRow {
  externalId: string;
  removed: boolean;
  changeKey: string | null;
  payload: Record<string, unknown> | null;
}

export interface NewOperation {
  seq: number;
  side: 'exchange' | 'crm' | 'mapping';
  kind: string;
  crmId: string | null;
  exchangeId: string | null;
  syncId: string;
  payload: Record<string, unknown> | null;
  reason: string;
}

/** A mapping row as the planner reads it (the plan activity and the dry run alike). */
export function toMappingState(r: MappingRow): MappingState {
  return { crmId: r.crm_id, exchangeId: r.exchange_id, crmFingerprint: r.crm_fingerprint, exchangeFingerprint: r.exchange_fingerprint, exchangeChangeKey: r.exchange_change_key, base: r.base };
}

/** A staged row as the planner reads it. */
export function toStagedItem(r: Selectable<StagedChangeTable>): StagedItem {
  return { id: r.external_id, removed: r.removed, changeKey: r.change_key, payload: r.payload, replans: r.replans };
}

export type LogLevel = 'error' | 'warn' | 'info' | 'verbose';

export class SyncStore {
  constructor(readonly db: Kysely<Database>) {}

  // ---- mailboxes ----
  getMailbox(id: string) {
    return this.db.selectFrom('sync.mailbox').selectAll().where('id', '=', id).executeTakeFirst();
  }
  listMailboxes() {
    return this.db.selectFrom('sync.mailbox').selectAll().orderBy('id').execute();
  }
  async insertMailbox(m: { id: string; displayName: string | null; crmUserId: string; policyName: string | null }): Promise<boolean> {
    const r = await this.db
      .insertInto('sync.mailbox')
      .values({ id: m.id, display_name: m.displayName, crm_user_id: m.crmUserId, policy_name: m.policyName })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }
  async deleteMailbox(id: string): Promise<void> {
    await this.db.deleteFrom('sync.mailbox').where('id', '=', id).execute();
  }

  // ---- cursors ----
  async getCursor(mailboxId: string, recordType: string) {
    // Read first: the cursor exists after the first call, and every step of every cycle reads it.
    const read = () => this.db.selectFrom('sync.cursor').selectAll().where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).executeTakeFirst();
    const found = await read();
    if (found) return found;
    await this.db.insertInto('sync.cursor').values({ mailbox_id: mailboxId, record_type: recordType } as never).onConflict((oc) => oc.columns(['mailbox_id', 'record_type']).doNothing()).execute();
    return (await read())!;
  }
  async updateCursor(
    exec: Exec,
    mailboxId: string,
    recordType: string,
    set: Partial<{ exchange_folder_id: string | null; delta_link: string | null; pending_delta_link: string | null; next_link: string | null; crm_watermark: string | null; pending_crm_watermark: string | null; crm_watermark_origin: string | null; committed_cycle: string | null }>,
  ): Promise<void> {
    await exec.updateTable('sync.cursor').set({ ...set, updated_at: new Date() } as never).where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).execute();
  }

  // ---- staging ----
  /** Upsert: an item seen again keeps its newest state; a partial update merges into what was staged. */
  async stage(exec: Exec, mailboxId: string, recordType: string, side: 'exchange' | 'crm', rows: StagedRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await exec
        .insertInto('sync.staged_change')
        .values(chunk.map((r) => ({
          mailbox_id: mailboxId,
          record_type: recordType,
          side,
          external_id: r.externalId,
          removed: r.removed,
          change_key: r.changeKey,
          payload: r.payload === null ? null : JSON.stringify(r.payload),
        })))
        .onConflict((oc) =>
          oc.columns(['mailbox_id', 'record_type', 'side', 'external_id']).doUpdateSet({
            // A newer state of the item is a change still to plan, even if an older one was planned already.
            planned_cycle: null,
            removed: sql`excluded.removed`,
            change_key: sql`excluded.change_key`,
            payload: sql`case when excluded.removed or sync.staged_change.removed or sync.staged_change.payload is null then excluded.payload
                              else sync.staged_change.payload || excluded.payload end`,
            staged_at: sql`now()`,
          }),
        )
        .execute();
    }
  }
  /** Rows still to plan (a plan marks what it consumed; commit deletes only those). */
  staged(mailboxId: string, recordType: string, side: 'exchange' | 'crm') {
    return this.db
      .selectFrom('sync.staged_change')
      .selectAll()
      .where('mailbox_id', '=', mailboxId)
      .where('record_type', '=', recordType)
      .where('side', '=', side)
      .where('planned_cycle', 'is', null)
      .orderBy('external_id')
      .execute();
  }
  /** The rows a plan consumed, in the plan's transaction. */
  async markPlanned(exec: Exec, mailboxId: string, recordType: string, cycleId: string, rows: Array<{ side: 'exchange' | 'crm'; id: string }>): Promise<void> {
    for (const side of ['exchange', 'crm'] as const) {
      const ids = rows.filter((r) => r.side === side).map((r) => r.id);
      for (let i = 0; i < ids.length; i += 1000) {
        await exec.updateTable('sync.staged_change').set({ planned_cycle: cycleId })
          .where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('side', '=', side)
          .where('external_id', '=', sql<string>`any(${ids.slice(i, i + 1000)}::text[])`).execute();
      }
    }
  }
  /**
   * Gives a planned row back to the next plan (the other side's write met a newer version). Counts the times,
   * so an item that can never be settled is skipped instead of re-planned for ever.
   */
  async unplan(exec: Exec, mailboxId: string, recordType: string, side: 'exchange' | 'crm', externalId: string): Promise<void> {
    await exec.updateTable('sync.staged_change').set((eb) => ({ planned_cycle: null, replans: eb('replans', '+', 1) }))
      .where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('side', '=', side).where('external_id', '=', externalId).execute();
  }
  /**
   * Gives a planned CRM row back to the next plan unless the sync has written that CRM record since the row was
   * read (the mapping's version is newer than the row's; the built-in CRM's versions are transaction ids): the
   * row would then be stale, and re-planning it would write the old values back over the sync's own write.
   */
  async unplanCrmIfCurrent(exec: Exec, mailboxId: string, recordType: string, crmId: string): Promise<void> {
    await sql`update sync.staged_change s set planned_cycle = null, replans = s.replans + 1
      where s.mailbox_id = ${mailboxId} and s.record_type = ${recordType} and s.side = 'crm' and s.external_id = ${crmId}
        and not exists (select 1 from sync.mapping m where m.mailbox_id = s.mailbox_id and m.record_type = s.record_type and m.crm_id = s.external_id
          and m.crm_version ~ '^[0-9]+$' and s.payload->>${CRM_VERSION_KEY}::text ~ '^[0-9]+$'
          and (s.payload->>${CRM_VERSION_KEY}::text)::numeric < m.crm_version::numeric)`.execute(exec);
  }
  /** Deletes the rows plans consumed; returns how many rows are left for the next plan. */
  async clearPlanned(exec: Exec, mailboxId: string, recordType: string): Promise<number> {
    await exec.deleteFrom('sync.staged_change').where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('planned_cycle', 'is not', null).execute();
    const r = await exec.selectFrom('sync.staged_change').select((eb) => eb.fn.countAll<string>().as('n')).where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  // ---- mappings ----
  /** Mappings touching any of the given ids (either side). */
  async mappingsFor(mailboxId: string, recordType: string, crmIds: string[], exchangeIds: string[]): Promise<MappingRow[]> {
    if (crmIds.length === 0 && exchangeIds.length === 0) return [];
    return this.db
      .selectFrom('sync.mapping')
      .selectAll()
      .where('mailbox_id', '=', mailboxId)
      .where('record_type', '=', recordType)
      .where((eb) =>
        eb.or([
          ...(crmIds.length ? [eb('crm_id', '=', sql<string>`any(${crmIds}::text[])`)] : []),
          ...(exchangeIds.length ? [eb('exchange_id', '=', sql<string>`any(${exchangeIds}::text[])`)] : []),
        ]),
      )
      .execute();
  }
  mappingByCrmId(exec: Exec, mailboxId: string, recordType: string, crmId: string) {
    return exec.selectFrom('sync.mapping').selectAll().where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('crm_id', '=', crmId).executeTakeFirst();
  }
  countMappings(mailboxId: string, recordType: string) {
    return this.db.selectFrom('sync.mapping').select((eb) => eb.fn.countAll<string>().as('n')).where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).executeTakeFirstOrThrow();
  }
  async upsertMapping(exec: Exec, m: MappingWrite): Promise<void> {
    await exec
      .insertInto('sync.mapping')
      .values({ ...m, base: m.base == null ? null : JSON.stringify(m.base), crm_version: m.crm_version ?? null })
      .onConflict((oc) =>
        oc.columns(['mailbox_id', 'record_type', 'crm_id']).doUpdateSet({
          base: sql`excluded.base`,
          crm_version: sql`excluded.crm_version`,
          exchange_id: sql`excluded.exchange_id`,
          crm_fingerprint: sql`excluded.crm_fingerprint`,
          exchange_change_key: sql`excluded.exchange_change_key`,
          exchange_fingerprint: sql`excluded.exchange_fingerprint`,
          updated_at: sql`now()`,
        }),
      )
      .execute();
  }
  async updateMapping(
    exec: Exec,
    mailboxId: string,
    recordType: string,
    crmId: string,
    set: MappingUpdate,
  ): Promise<void> {
    const clean = Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined).map(([k, v]) => [k, k === 'base' ? JSON.stringify(v) : v]));
    if (Object.keys(clean).length === 0) return;
    await exec.updateTable('sync.mapping').set({ ...clean, updated_at: new Date() }).where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('crm_id', '=', crmId).execute();
  }
  async deleteMapping(exec: Exec, mailboxId: string, recordType: string, crmId: string): Promise<void> {
    await exec.deleteFrom('sync.mapping').where('mailbox_id', '=', mailboxId).where('record_type', '=', recordType).where('crm_id', '=', crmId).execute();
  }

  // ---- cycles and operations ----
  async openCycle(mailboxId: string): Promise<{ id: string; startedAt: Date; resumed: boolean }> {
    const running = await this.db.selectFrom('sync.cycle').select(['id', 'started_at']).where('mailbox_id', '=', mailboxId).where('status', '=', 'running').executeTakeFirst();
    if (running) return { id: running.id, startedAt: running.started_at, resumed: true };
    const created = await this.db
      .insertInto('sync.cycle')
      .values({ mailbox_id: mailboxId, status: 'running' })
      .onConflict((oc) => oc.column('mailbox_id').where('status', '=', 'running').doNothing())
      .returning(['id', 'started_at'])
      .executeTakeFirst();
    if (!created) return this.openCycle(mailboxId);
    return { id: created.id, startedAt: created.started_at, resumed: false };
  }
  getCycle(id: string) {
    return this.db.selectFrom('sync.cycle').selectAll().where('id', '=', id).executeTakeFirst();
  }
  async closeCycle(id: string, status: 'done' | 'running' | 'failed', summary: Record<string, unknown>): Promise<Date> {
    const r = await this.db
      .updateTable('sync.cycle')
      .set({ status, summary: JSON.stringify(summary), ended_at: status === 'running' ? null : new Date() })
      .where('id', '=', id)
      .returning('ended_at')
      .executeTakeFirstOrThrow();
    return r.ended_at ?? new Date();
  }
  lastCycles(mailboxId: string, limit: number) {
    return this.db.selectFrom('sync.cycle').selectAll().where('mailbox_id', '=', mailboxId).orderBy('id', 'desc').limit(limit).execute();
  }
  async hasOperations(cycleId: string, recordType: string): Promise<boolean> {
    const r = await this.db.selectFrom('sync.operation').select('id').where('cycle_id', '=', cycleId).where('record_type', '=', recordType).limit(1).executeTakeFirst();
    return !!r;
  }
  async insertOperations(exec: Exec, cycleId: string, mailboxId: string, recordType: string, ops: NewOperation[]): Promise<void> {
    for (let i = 0; i < ops.length; i += 500) {
      await exec
        .insertInto('sync.operation')
        .values(ops.slice(i, i + 500).map((o) => ({
          cycle_id: cycleId,
          mailbox_id: mailboxId,
          record_type: recordType,
          seq: o.seq,
          side: o.side,
          kind: o.kind,
          crm_id: o.crmId,
          exchange_id: o.exchangeId,
          sync_id: o.syncId,
          payload: o.payload === null ? null : JSON.stringify(o.payload),
          reason: o.reason,
          error: null,
          done_at: null,
          planned_cycle: cycleId,
        })))
        .execute();
    }
  }
  pendingOperations(cycleId: string, recordType: string, limit: number) {
    return this.db.selectFrom('sync.operation').selectAll().where('cycle_id', '=', cycleId).where('record_type', '=', recordType).where('status', '=', 'pending').orderBy('seq').limit(limit).execute();
  }
  async countPending(cycleId: string, recordType: string): Promise<number> {
    const r = await this.db.selectFrom('sync.operation').select((eb) => eb.fn.countAll<string>().as('n')).where('cycle_id', '=', cycleId).where('record_type', '=', recordType).where('status', '=', 'pending').executeTakeFirstOrThrow();
    return Number(r.n);
  }
  async markAttempt(id: string): Promise<void> {
    await this.db.updateTable('sync.operation').set((eb) => ({ attempts: eb('attempts', '+', 1) })).where('id', '=', id).execute();
  }
  /**
   * Whether a write of the same plan to the other side of this CRM record was given back for re-planning: the
   * pair is then planned again as a whole (writing one half would make the given-back change stale).
   */
  async siblingGivenBack(exec: Exec, op: { planned_cycle: string | null; mailbox_id: string; record_type: string; crm_id: string | null; side: string }): Promise<boolean> {
    if (!op.planned_cycle || !op.crm_id) return false;
    const r = await exec.selectFrom('sync.operation').select('id')
      .where('planned_cycle', '=', op.planned_cycle).where('mailbox_id', '=', op.mailbox_id).where('record_type', '=', op.record_type)
      .where('crm_id', '=', op.crm_id).where('side', '!=', op.side as 'crm').where('side', '!=', 'mapping')
      .where('status', '=', 'skipped').where('error', 'like', `${REPLAN_PREFIX}%`).limit(1).executeTakeFirst();
    return !!r;
  }
  /** Counts an error about this operation (migration 0011); returns how many it has met. */
  async addOperationFailure(exec: Exec, id: string, error: string): Promise<number> {
    const r = await exec.updateTable('sync.operation').set((eb) => ({ failures: eb('failures', '+', 1), error })).where('id', '=', id).returning('failures').executeTakeFirst();
    return r?.failures ?? 0;
  }

  /**
   * `cxsync retry`: the mailbox's failed operations go back to pending (the next cycle adopts and applies them,
   * each still conditional on the version its plan saw). Left out: an operation whose item a later operation
   * already handled, and a create whose item is linked by now (it would make a second copy).
   */
  async retryFailed(mailboxId: string): Promise<number> {
    const r = await sql`
      update sync.operation o set status = 'pending', failures = 0, error = null, done_at = null
      where o.mailbox_id = ${mailboxId} and o.status = 'failed'
        and not exists (
          select 1 from sync.operation later where later.mailbox_id = o.mailbox_id and later.record_type = o.record_type and later.id > o.id
            and ((o.crm_id is not null and later.crm_id = o.crm_id) or (o.exchange_id is not null and later.exchange_id = o.exchange_id)))
        and not (o.kind = 'create' and exists (
          select 1 from sync.mapping m where m.mailbox_id = o.mailbox_id and m.record_type = o.record_type
            and ((o.side = 'exchange' and m.crm_id = o.crm_id) or (o.side = 'crm' and m.exchange_id = o.exchange_id))))`.execute(this.db);
    return Number(r.numAffectedRows ?? 0n);
  }

  async finishOperation(exec: Exec, id: string, status: 'done' | 'failed' | 'skipped', error?: string): Promise<void> {
    await exec.updateTable('sync.operation').set({ status, error: error ?? null, done_at: new Date() }).where('id', '=', id).execute();
  }
  operationCounts(cycleId: string) {
    return this.db
      .selectFrom('sync.operation')
      .select(['record_type', 'side', 'kind', 'status', (eb) => eb.fn.countAll<string>().as('n')])
      .where('cycle_id', '=', cycleId)
      .groupBy(['record_type', 'side', 'kind', 'status'])
      .execute();
  }

  async addPulled(cycleId: string, recordType: string, side: 'exchange' | 'crm', n: number): Promise<void> {
    await this.addCount(cycleId, `pulled:${recordType}:${side}`, n);
  }
  /** Adds `n` to a count of the cycle's summary (finishCycle reads them into the CycleSummary). */
  async addCount(cycleId: string, key: string, n: number): Promise<void> {
    await sql`update sync.cycle set summary = coalesce(summary, '{}'::jsonb)
      || jsonb_build_object(${key}::text, coalesce((summary->>${key}::text)::int, 0) + ${n}::int) where id = ${cycleId}`.execute(this.db);
  }
  async insertConflicts(exec: Exec, rows: { cycleId: string; mailboxId: string; recordType: string; crmId: string; exchangeId: string; rule: string; outcome: string; crmVersion: unknown; exchangeVersion: unknown }[]): Promise<void> {
    if (rows.length === 0) return;
    await exec
      .insertInto('sync.conflict')
      .values(rows.map((r) => ({
        cycle_id: r.cycleId, mailbox_id: r.mailboxId, record_type: r.recordType, crm_id: r.crmId, exchange_id: r.exchangeId,
        rule: r.rule, outcome: r.outcome,
        crm_version: r.crmVersion == null ? null : JSON.stringify(r.crmVersion),
        exchange_version: r.exchangeVersion == null ? null : JSON.stringify(r.exchangeVersion),
      })))
      .execute();
  }
  conflictCounts(cycleId: string) {
    return this.db.selectFrom('sync.conflict').select(['record_type', (eb) => eb.fn.countAll<string>().as('n')]).where('cycle_id', '=', cycleId).groupBy('record_type').execute();
  }
  listConflicts(mailboxId: string, limit: number) {
    return this.db.selectFrom('sync.conflict').selectAll().where('mailbox_id', '=', mailboxId).orderBy('id', 'desc').limit(limit).execute();
  }

  // ---- sync log ----
  async log(exec: Exec, e: { mailboxId: string; cycleId: string | null; level: LogLevel; recordType?: string; side?: string; itemId?: string; message: string }): Promise<void> {
    await exec
      .insertInto('sync.log')
      .values({ mailbox_id: e.mailboxId, cycle_id: e.cycleId, level: e.level, record_type: e.recordType ?? null, side: e.side ?? null, item_id: e.itemId ?? null, message: e.message })
      .execute();
  }
  logCounts(cycleId: string) {
    return this.db
      .selectFrom('sync.log')
      .select(['record_type', 'level', 'message', (eb) => eb.fn.countAll<string>().as('n')])
      .where('cycle_id', '=', cycleId)
      .groupBy(['record_type', 'level', 'message'])
      .execute();
  }
  readLog(mailboxId: string, limit: number) {
    return this.db.selectFrom('sync.log').selectAll().where('mailbox_id', '=', mailboxId).orderBy('id', 'desc').limit(limit).execute();
  }
}
