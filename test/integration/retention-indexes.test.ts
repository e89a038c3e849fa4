/**
 * The hot queries on the history tables use indexes at a realistic size (issue 9, "Retention"): 100 mailboxes,
 * 30,000 cycles, 210,000 operations, 20,000 conflicts and 210,000 log lines spread over 60 days. Each query is
 * captured as the store really sends it (kysely's query log) and EXPLAINed; the plans before migration 0010's
 * indexes (dropped inside a rolled-back transaction) are printed next to them for comparison. Then pruneHistory
 * (30 days) is run on the same data: what it must keep, it keeps.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type RawBuilder } from 'kysely';
import pg from 'pg';
import type { Database } from '../../src/db/schema';
import { SyncStore } from '../../src/db/sync-store';
import { ExchangeStateStore } from '../../src/db/exchange-state';
import { pruneHistory, removeMailboxRows } from '../../src/db/retention-store';
import { freshDatabase } from '../helpers/database';

const NEW_INDEXES = ['log_by_cycle', 'log_at', 'conflict_by_cycle', 'conflict_by_mailbox', 'cycle_by_mailbox', 'cycle_done_ended', 'operation_by_plan'];

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(p: PlanNode): PlanNode[] {
  return [p, ...(p.Plans ?? []).flatMap(nodes)];
}

const describePlan = (ns: PlanNode[]) =>
  ns.filter((n) => n['Relation Name'] || n['Index Name']).map((n) => `${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}`).join(', ');

describe('retention: indexes of the hot queries at 200,000 log lines across 100 mailboxes', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let pool: pg.Pool;
  let captured: CompiledQuery[] = [];
  let logged: Kysely<Database>;
  const report: string[] = [];

  before(async () => {
    database = await freshDatabase();
    const db = database.db;
    await sql`insert into crm.users (email, display_name) select 'user' || i || '@contoso.com', 'User ' || i from generate_series(1, 100) i`.execute(db);
    await sql`insert into sync.mailbox (id, display_name, crm_user_id) select email, display_name, id from crm.users`.execute(db);
    // 300 done cycles per mailbox, every 4.8 hours over 60 days, ids ascending with time; then one running cycle each.
    await sql`insert into sync.cycle (mailbox_id, started_at, ended_at, status, summary)
      select 'user' || m || '@contoso.com', now() - (60 - k * 0.2) * interval '1 day' - interval '1 minute', now() - (60 - k * 0.2) * interval '1 day', 'done', '{"outcome":"completed"}'
      from generate_series(0, 299) k, generate_series(1, 100) m order by k, m`.execute(db);
    await sql`insert into sync.cycle (mailbox_id, status) select id, 'running' from sync.mailbox`.execute(db);
    await sql`insert into sync.operation (cycle_id, mailbox_id, record_type, seq, side, kind, crm_id, exchange_id, sync_id, payload, reason, status, done_at, planned_cycle)
      select c.id, c.mailbox_id, 'contact', s, case when s % 2 = 0 then 'exchange' else 'crm' end, 'update', gen_random_uuid()::text, 'AAMk' || md5(c.id || '-' || s),
        gen_random_uuid(), jsonb_build_object('record', jsonb_build_object('firstName', 'First' || s, 'lastName', 'Last' || c.id, 'email', 'p' || c.id || '.' || s || '@fabrikam.example', 'company', 'Fabrikam', 'phone', '+49 30 1234567')),
        'changed in CRM (phone)', 'done', c.ended_at, c.id
      from sync.cycle c, generate_series(1, 7) s where c.status = 'done'`.execute(db);
    await sql`insert into sync.conflict (cycle_id, mailbox_id, record_type, crm_id, exchange_id, rule, outcome, crm_version, exchange_version, at)
      select c.id, c.mailbox_id, 'contact', gen_random_uuid()::text, 'AAMk' || md5(c.id || '-c' || s), 'crm-wins', 'CRM version kept',
        jsonb_build_object('lastName', 'Last' || c.id, 'email', 'c' || c.id || '@fabrikam.example'), jsonb_build_object('lastName', 'Other' || c.id), c.ended_at
      from sync.cycle c, generate_series(1, 2) s where c.status = 'done' and c.id % 3 = 0`.execute(db);
    await sql`insert into sync.log (mailbox_id, cycle_id, at, level, record_type, side, item_id, message)
      select c.mailbox_id, c.id, c.ended_at, 'info', 'contact', 'crm', gen_random_uuid()::text, 'update not applied: the CRM record changed; planned again against what is there now'
      from sync.cycle c, generate_series(1, 7) s where c.status = 'done'`.execute(db);
    // Work carried over by the batch size: pending operations in the running cycles of ten mailboxes.
    await sql`insert into sync.operation (cycle_id, mailbox_id, record_type, seq, side, kind, crm_id, exchange_id, sync_id, payload, reason, planned_cycle)
      select c.id, c.mailbox_id, 'contact', s, case when s % 2 = 0 then 'exchange' else 'crm' end, 'update', 'crm-' || c.id || '-' || (s / 2), 'ex-' || s, gen_random_uuid(), '{}', 'changed in CRM', c.id
      from sync.cycle c, generate_series(1, 6) s where c.status = 'running' and c.mailbox_id in (select id from sync.mailbox order by id limit 10)`.execute(db);
    await sql`analyze`.execute(db);

    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    logged = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 2 }) }),
      log: (e) => { if (e.level === 'query') captured.push(e.query); },
    });
  });
  after(async () => {
    if (report.length) console.log(['', 'query | plan with 0010 (time) | plan before 0010 (time)', ...report].join('\n'));
    await logged?.destroy();
    await pool?.end();
    await database?.drop();
  });

  async function explain(q: CompiledQuery, opts: { analyze: boolean; withoutNewIndexes?: boolean }) {
    const c = await pool.connect();
    try {
      await c.query('begin');
      if (opts.withoutNewIndexes) for (const i of NEW_INDEXES) await c.query(`drop index sync.${i}`);
      const r = await c.query(`explain (format json${opts.analyze ? ', analyze' : ''}) ${q.sql}`, q.parameters as unknown[]);
      const out = (r.rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode; 'Execution Time'?: number }>)[0];
      return { nodes: nodes(out.Plan), ms: out['Execution Time'] };
    } finally {
      await c.query('rollback');
      c.release();
    }
  }

  /** Runs `call` through the logging connection and EXPLAINs every statement it sent. */
  async function check(name: string, call: () => Promise<unknown>, expectIndex: string, opts: { analyze?: boolean } = { analyze: true }) {
    captured = [];
    await call();
    assert.ok(captured.length > 0, `${name}: no query captured`);
    for (const q of captured) {
      const now = await explain(q, { analyze: !!opts.analyze });
      const seq = now.nodes.filter((n) => n['Node Type'] === 'Seq Scan' && /^(log|conflict|operation|cycle)$/.test(n['Relation Name'] ?? ''));
      assert.deepEqual(seq.map((n) => n['Relation Name']), [], `${name}: sequential scan on a history table: ${describePlan(now.nodes)}`);
      assert.ok(now.nodes.some((n) => n['Index Name'] === expectIndex), `${name}: expected index ${expectIndex}, plan: ${describePlan(now.nodes)}`);
      const was = await explain(q, { analyze: !!opts.analyze, withoutNewIndexes: true });
      const t = (ms?: number) => (ms === undefined ? '' : ` (${ms.toFixed(2)} ms)`);
      report.push(`${name} | ${describePlan(now.nodes)}${t(now.ms)} | ${describePlan(was.nodes)}${t(was.ms)}`);
    }
  }

  it('has the data it claims', async () => {
    const n = async (t: string) => Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(t)}`.execute(database.db)).rows[0].n);
    assert.equal(await n('sync.mailbox'), 100);
    assert.equal(await n('sync.log'), 210_000);
    assert.equal(await n('sync.operation'), 210_060);
    assert.equal(await n('sync.conflict'), 20_000);
  });

  it('finishCycle, `cxsync log`, `cxsync conflicts` and the per-cycle operation queries use indexes', async () => {
    const store = new SyncStore(logged);
    const ex = new ExchangeStateStore(logged);
    const mid = (await sql<{ id: string; mailbox_id: string }>`select id::text, mailbox_id from sync.cycle where status = 'done' order by id offset 15000 limit 1`.execute(database.db)).rows[0];
    const running = (await sql<{ id: string; mailbox_id: string }>`select c.id::text, c.mailbox_id from sync.cycle c where c.status = 'running' order by c.mailbox_id limit 1`.execute(database.db)).rows[0];

    // finishCycle (mailbox-activities.ts), on every cycle of every mailbox
    await check('finishCycle logCounts', () => store.logCounts(mid.id), 'log_by_cycle');
    await check('finishCycle conflictCounts', () => store.conflictCounts(mid.id), 'conflict_by_cycle');
    await check('finishCycle operationCounts', () => store.operationCounts(mid.id), 'operation_cycle_id_record_type_seq_key');
    // operator queries
    await check('cxsync log (readLog)', () => store.readLog(mid.mailbox_id, 50), 'log_by_mailbox');
    await check('cxsync conflicts (listConflicts)', () => store.listConflicts(mid.mailbox_id, 100), 'conflict_by_mailbox');
    // per-cycle operation queries of apply
    await check('siblingGivenBack (every CRM write)', () => store.siblingGivenBack(logged, { planned_cycle: running.id, mailbox_id: running.mailbox_id, record_type: 'contact', crm_id: `crm-${running.id}-1`, side: 'crm' }), 'operation_by_plan');
    await check('writtenThisCycle', () => ex.writtenThisCycle(running.id, 'contact'), 'operation_cycle_id_record_type_seq_key');
    await check('pendingOn', () => ex.pendingOn(running.id, 'contact', ['mapping', 'exchange', 'crm'], 100), 'operation_pending');
    await check('crmWaitingForSibling', () => ex.crmWaitingForSibling(running.id, 'contact'), 'operation_pending');
    await check('countPending', () => store.countPending(running.id, 'contact'), 'operation_pending');
    await check('pendingAnywhere', () => ex.pendingAnywhere(running.mailbox_id, 'contact'), 'operation_pending_by_mailbox');
    await check('lastCycles', () => store.lastCycles(mid.mailbox_id, 10), 'cycle_by_mailbox');
  });

  it('prunes 30 days in batches with index and TID scans, and keeps what is still needed', async () => {
    const count = async (q: RawBuilder<{ n: string }>) => Number((await q.execute(database.db)).rows[0].n);
    const oldPending = (await sql<{ id: string; mailbox_id: string }>`select id::text, mailbox_id from sync.cycle where status = 'done' order by id limit 1`.execute(database.db)).rows[0];
    // A done cycle 60 days old still holding an operation carried over, and an old skipped half of a plan whose
    // other half is still pending: both stay, with their cycles.
    await sql`update sync.operation set status = 'pending', done_at = null where cycle_id = ${oldPending.id}::bigint and seq = 1`.execute(database.db);
    const sibling = (await sql<{ id: string; cycle_id: string }>`select id::text, cycle_id::text from sync.operation where cycle_id = (select id from sync.cycle where status = 'done' order by id offset 5 limit 1) and seq = 2`.execute(database.db)).rows[0];
    await sql`update sync.operation set status = 'skipped', error = 'replan: 412' where id = ${sibling.id}::bigint`.execute(database.db);
    await sql`update sync.operation set planned_cycle = ${sibling.cycle_id}::bigint where id = (select id from sync.operation where status = 'pending' and cycle_id <> ${oldPending.id}::bigint order by id limit 1)`.execute(database.db);
    // An old line of a cycle still open (paused for weeks): finishCycle will count it.
    await sql`insert into sync.log (mailbox_id, cycle_id, at, level, message) select mailbox_id, id, now() - interval '45 days', 'error', 'skipped: too long' from sync.cycle where status = 'running' limit 1`.execute(database.db);
    await sql`analyze`.execute(database.db);
    const olderDone = await count(sql<{ n: string }>`select count(*)::text as n from sync.cycle where status = 'done' and ended_at < now() - interval '30 days'`);
    const newerOps = await count(sql<{ n: string }>`select count(*)::text as n from sync.operation o join sync.cycle c on c.id = o.cycle_id where c.status = 'running' or c.ended_at >= now() - interval '30 days'`);

    captured = [];
    const started = Date.now();
    let batches = 0;
    const r = await pruneHistory(logged, { days: 30, onBatch: () => batches++ });
    const ms = Date.now() - started;
    console.log(`pruneHistory(30 days): ${JSON.stringify(r)} in ${batches} batches, ${ms} ms`);
    assert.equal(r.cycles, olderDone - 2, 'every old done cycle but the two still needed');
    assert.ok(r.log >= 100_000 && r.conflicts >= 9_000 && r.operations >= 100_000, JSON.stringify(r));
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.cycle where id in (${oldPending.id}::bigint, ${sibling.cycle_id}::bigint)`), 2);
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.operation where cycle_id = ${oldPending.id}::bigint`), 7, 'a cycle holding a pending operation keeps all of it');
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.operation where id = ${sibling.id}::bigint`), 1, 'the given-back half of a pending plan stays');
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.log where message = 'skipped: too long'`), 1, "an open cycle's old line stays");
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.log l where l.at < now() - interval '30 days' and l.message <> 'skipped: too long'`), 0);
    assert.equal(await count(sql<{ n: string }>`select count(*)::text as n from sync.operation o join sync.cycle c on c.id = o.cycle_id where c.status = 'running' or c.ended_at >= now() - interval '30 days'`), newerOps, 'nothing newer is touched');

    // The statements pruneHistory sent (the last batch of each table), as planned for the next hourly run (statistics
    // of the pruned tables): index scans feeding a TID scan. A first run over a backlog of half the table may
    // rightly prefer a sequential scan and a hash join per batch of 10,000.
    await sql`analyze`.execute(database.db);
    const deletes = captured.filter((q) => /^\s*delete from sync\.(operation|conflict|cycle|log)/.test(q.sql));
    const lastOf = new Map(deletes.map((q) => [/delete from sync\.(\w+)/.exec(q.sql)![1], q]));
    for (const [table, q] of lastOf) {
      const p = await explain(q, { analyze: false });
      assert.ok(p.nodes.some((n) => n['Node Type'] === 'Tid Scan'), `prune ${table}: ${describePlan(p.nodes)}`);
      const seq = p.nodes.filter((n) => n['Node Type'] === 'Seq Scan' && /^(log|conflict|operation)$/.test(n['Relation Name'] ?? ''));
      assert.deepEqual(seq.map((n) => n['Relation Name']), [], `prune ${table}: ${describePlan(p.nodes)}`);
      report.push(`prune ${table} (one batch) | ${describePlan(p.nodes)} | -`);
    }
    assert.equal(lastOf.size, 4);
  });

  it('removes a mailbox with index scans and batches', async () => {
    const victim = 'user42@contoso.com';
    captured = [];
    const deleted = await removeMailboxRows(logged, victim);
    assert.ok((deleted.log ?? 0) > 0 && (deleted.cycle ?? 0) > 0, JSON.stringify(deleted));
    const perTable = new Map(captured.filter((q) => /^\s*delete from "sync"\."(\w+)"/.test(q.sql)).map((q) => [/"sync"\."(\w+)"/.exec(q.sql)![1], q]));
    for (const t of ['operation', 'conflict', 'cycle', 'log']) {
      const p = await explain(perTable.get(t)!, { analyze: false });
      assert.ok(!p.nodes.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === t), `remove ${t}: ${describePlan(p.nodes)}`);
      report.push(`remove ${t} (one batch) | ${describePlan(p.nodes)} | -`);
    }
  });
});
