/**
 * Benchmarks of the Exchange side (issue 3), on the real stack: Temporal dev server, PostgreSQL, the HTTPS Graph
 * emulator through @microsoft/microsoft-graph-client, the per-mailbox gate and JSON batches.
 *
 *   DATABASE_URL=postgres://… TEMPORAL_CLI_PATH=… npx tsx bench/exchange-contacts.ts initial [options]
 *   DATABASE_URL=postgres://… TEMPORAL_CLI_PATH=… npx tsx bench/exchange-contacts.ts steady [options]
 *
 * initial — 10,000 CRM contacts into one empty mailbox at Outlook's limits: 4 operations in flight and
 *   10,000 requests per 10 minutes, or the same rate over a shorter window (--window-s 60 → 1,000 per minute,
 *   the default, so that the budget of the first window is a small part of the run). The emulator enforces the
 *   limits and answers 429 over them; cxsync's gate is told the same limits. Reported: wall time until every
 *   contact is in Exchange and mapped, and until the echo round is done; Graph operations (every $batch
 *   sub-request counts, as Outlook counts them); 429s; the achieved rate as a share of the limit; duplicates.
 * steady — a mailbox with 10,000 synced contacts (set up without limits), then: an idle cycle (Graph operations
 *   per record type, SQL statements, wall time), and 200 changes on each side with 20 conflicting pairs (wall
 *   time and Graph operations until both sides agree), at Outlook's limits.
 *
 * Options: --contacts N (10000), --window-s S (60; 600 = the real window), --latency-ms L (20) and --jitter-ms J
 * (20): per-operation latency of the emulator; --batch N (500): the policy's batch size.
 * Cycles are driven with sync-now, one after another, until a cycle finds nothing to do.
 */
import pg from 'pg';
import { sql } from 'kysely';
import { configureMailboxLimits, mailboxLimits } from '../src/activities/exchange/gate';
import type { TypeSummary } from '../src/domain/status';
import { startStack, type Stack } from '../test/helpers/stack';
import { arg, countStatements } from './kit';

const UPN = 'bench@contoso.com';

const scenario = process.argv[2] === 'steady' ? 'steady' : 'initial';
const CONTACTS = arg('contacts', 10_000);
const WINDOW_S = arg('window-s', 60);
const LIMIT = Math.round((10_000 * WINDOW_S) / 600);
const LATENCY = arg('latency-ms', 20);
const JITTER = arg('jitter-ms', 20);
const BATCH = arg('batch', 500);

/** SQL statements sent by this process, counted at the pg client. */
const statements = countStatements();

const secs = (ms: number) => (ms / 1000).toFixed(1);

async function seedCrm(s: Stack, owner: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, n - i) }, (_, k) => {
      const j = i + k;
      return sql`(${owner}::uuid, ${`First${j}`}, ${`Last${j}`}, ${`c${j}@example.org`}, ${`+49 30 ${String(1000000 + j)}`}, ${`Company ${j % 300}`}, ${j % 7 === 0 ? 'Buyer' : null}, 'Berlin')`;
    });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, phone, company, job_title, city) values ${sql.join(rows)}`.execute(s.db);
  }
}

interface Cycle {
  ms: number;
  t: TypeSummary;
  types: string[];
}

async function cycleOnce(s: Stack): Promise<Cycle> {
  const t0 = Date.now();
  const st = await s.operator.syncNow(UPN, { wait: true, timeoutMs: 30 * 60_000 });
  const lc = st?.lastCycle;
  if (lc?.outcome !== 'completed') throw new Error(`cycle did not complete: ${JSON.stringify(lc)} ${st?.needsAttentionReason ?? ''}`);
  return { ms: Date.now() - t0, t: lc.types.contact!, types: Object.keys(lc.types) };
}

const moved = (t: TypeSummary) => t.pulled.exchange + t.pulled.crm + t.exchange.created + t.exchange.updated + t.exchange.deleted + t.crm.created + t.crm.updated + t.crm.deleted;

async function untilIdle(s: Stack, label: string, onCycle?: (c: Cycle, i: number) => Promise<void>): Promise<Cycle[]> {
  const cycles: Cycle[] = [];
  for (let i = 0; i < 500; i++) {
    const c = await cycleOnce(s);
    cycles.push(c);
    await onCycle?.(c, i);
    const t = c.t;
    console.log(`  ${label} cycle ${i + 1}: ${secs(c.ms)} s; pulled ex ${t.pulled.exchange} crm ${t.pulled.crm}; exchange +${t.exchange.created} ~${t.exchange.updated} -${t.exchange.deleted}; crm +${t.crm.created} ~${t.crm.updated} -${t.crm.deleted}; conflicts ${t.conflicts}; errors ${t.errors}; ops so far ${s.emulator.requestCount(UPN)}`);
    if (moved(t) === 0) return cycles;
  }
  throw new Error('no idle cycle after 500 cycles');
}

async function count(s: Stack, q: ReturnType<typeof sql<{ n: string }>>): Promise<number> {
  return Number((await q.execute(s.db)).rows[0].n);
}

function duplicates(values: unknown[]): number {
  return values.length - new Set(values).size;
}

async function initial(): Promise<void> {
  configureMailboxLimits({ concurrency: 4, requestsPerWindow: LIMIT, windowMs: WINDOW_S * 1000 });
  const s = await startStack({
    emulator: { throttle: { concurrentRequests: 4, requestsPer10Minutes: LIMIT, windowMs: WINDOW_S * 1000 } },
    worker: { batchSize: BATCH },
  });
  try {
    await s.operator.createPolicy('contacts-only', { event: { enabled: false }, task: { enabled: false }, batchSize: BATCH });
    const owner = await s.addUser(UPN, 'Bench User');
    await seedCrm(s, owner, CONTACTS);
    s.emulator.admin.setLatency(UPN, LATENCY, JITTER);
    console.log(`initial sync: ${CONTACTS} CRM contacts → empty mailbox; limits ${LIMIT} requests / ${WINDOW_S} s (= ${(LIMIT / WINDOW_S).toFixed(2)}/s) and 4 in flight, enforced by the emulator and known to the gate ${JSON.stringify(mailboxLimits())}; emulator latency ${LATENCY}+0..${JITTER} ms per operation; batch size ${BATCH}`);
    const t0 = Date.now();
    await s.operator.enroll(UPN, { policy: 'contacts-only' });
    let allMappedAt = 0;
    let opsAtMapped = 0;
    const cycles = await untilIdle(s, 'initial', async () => {
      if (!allMappedAt && (await count(s, sql<{ n: string }>`select count(*)::text as n from sync.mapping where mailbox_id = ${UPN}`)) >= CONTACTS) {
        allMappedAt = Date.now() - t0;
        opsAtMapped = s.emulator.requestCount(UPN);
      }
    });
    const wall = Date.now() - t0;
    const ops = s.emulator.requestCount(UPN);
    const throttled = s.emulator.throttledCount(UPN);
    const ex = s.emulator.admin.listContacts(UPN, 'VContacts');
    const crm = await count(s, sql<{ n: string }>`select count(*)::text as n from crm.contacts where owner_id = ${owner} and deleted_at is null`);
    const rate = (n: number, ms: number) => n / (ms / 1000);
    const limitRate = LIMIT / WINDOW_S;
    console.log('\nRESULT initial');
    console.log(`  contacts in Exchange: ${ex.length} (duplicates by email: ${duplicates(ex.map((c) => (c.emailAddresses as Array<{ address: string }>)[0]?.address))}); CRM: ${crm}`);
    console.log(`  all ${CONTACTS} created and mapped after ${secs(allMappedAt)} s, ${opsAtMapped} Graph operations → ${rate(opsAtMapped, allMappedAt).toFixed(2)}/s = ${((100 * rate(opsAtMapped, allMappedAt)) / limitRate).toFixed(1)} % of the limit's rate`);
    console.log(`  idle (echo round done) after ${secs(wall)} s, ${cycles.length} cycles, ${ops} Graph operations → ${rate(ops, wall).toFixed(2)}/s = ${((100 * rate(ops, wall)) / limitRate).toFixed(1)} % of the limit's rate`);
    console.log(`  429 answers: ${throttled} (${((100 * throttled) / ops).toFixed(2)} % of operations)`);
    console.log(`  HTTP requests to /v1.0 (a $batch counts once): ${s.emulator.requestCount()}`);
  } finally {
    await s.teardown();
  }
}

async function steady(): Promise<void> {
  // Setting up 10,000 synced contacts at Outlook's rate takes 10 minutes; the setup runs without limits.
  configureMailboxLimits({ concurrency: 4, requestsPerWindow: 1_000_000, windowMs: 600_000 });
  const s = await startStack({ emulator: { throttle: { concurrentRequests: 4, requestsPer10Minutes: 0 } }, worker: { batchSize: BATCH } });
  try {
    await s.operator.createPolicy('contacts-only', { event: { enabled: false }, task: { enabled: false }, batchSize: BATCH });
    const owner = await s.addUser(UPN, 'Bench User');
    await seedCrm(s, owner, CONTACTS);
    await s.operator.enroll(UPN, { policy: 'contacts-only' });
    const t0 = Date.now();
    await untilIdle(s, 'setup');
    console.log(`setup: ${CONTACTS} contacts synced in ${secs(Date.now() - t0)} s`);
    // From here on, Outlook's real limits (the window does not matter for these small volumes).
    configureMailboxLimits({ concurrency: 4, requestsPerWindow: 10_000, windowMs: 600_000 });
    s.emulator.admin.setLatency(UPN, LATENCY, JITTER);

    // ---- idle cycle ----
    const idle: Array<{ ms: number; ops: number; sql: number }> = [];
    for (let i = 0; i < 3; i++) {
      const ops0 = s.emulator.requestCount(UPN);
      const sql0 = statements();
      const c = await cycleOnce(s);
      idle.push({ ms: c.ms, ops: s.emulator.requestCount(UPN) - ops0, sql: statements() - sql0 });
      if (moved(c.t)) throw new Error(`the idle cycle had work: ${JSON.stringify(c.t)}`);
    }
    const recent = s.emulator.recentRequests().slice(-idle[2].ops);

    // ---- 200 changes each side, 20 conflicting pairs ----
    const ex = s.emulator.admin.listContacts(UPN, 'VContacts');
    const byEmail = new Map(ex.map((c) => [(c.emailAddresses as Array<{ address: string }>)[0].address, c]));
    const crmSide = Array.from({ length: 200 }, (_, i) => i); // contacts 0..199 change in the CRM
    const exSide = Array.from({ length: 200 }, (_, i) => 180 + i); // 180..379 change in Outlook: 180..199 on both sides
    await sql`update crm.contacts set job_title = 'Changed in CRM' where owner_id = ${owner} and email = any(${crmSide.map((i) => `c${i}@example.org`)}::text[])`.execute(s.db);
    for (const i of exSide) s.emulator.admin.updateContact(UPN, byEmail.get(`c${i}@example.org`)!.id, { jobTitle: 'Changed in Outlook', department: 'Field' });
    const ops0 = s.emulator.requestCount(UPN);
    const sql0 = statements();
    const t1 = Date.now();
    const cycles = await untilIdle(s, 'changes');
    const changeMs = Date.now() - t1;
    const changeOps = s.emulator.requestCount(UPN) - ops0;
    const after = s.emulator.admin.listContacts(UPN, 'VContacts');
    const rows = (await sql<{ email: string; job_title: string | null }>`select email, job_title from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db)).rows;
    const crmBy = new Map(rows.map((r) => [r.email, r.job_title]));
    const disagree = after.filter((c) => (crmBy.get((c.emailAddresses as Array<{ address: string }>)[0].address) ?? null) !== ((c.jobTitle as string | null) ?? null)).length;
    const conflicts = cycles.reduce((n, c) => n + c.t.conflicts, 0);

    console.log('\nRESULT steady');
    console.log(`  idle cycle, ${CONTACTS} synced contacts (3 runs): Graph operations ${idle.map((x) => x.ops).join(', ')}; SQL statements ${idle.map((x) => x.sql).join(', ')}; wall ${idle.map((x) => secs(x.ms)).join(', ')} s`);
    console.log(`    the operations: ${recent.map((r) => r.replace(/\?.*/, '?…')).join(' | ')}`);
    console.log(`  200 changes per side, 20 conflicting pairs: ${secs(changeMs)} s over ${cycles.length} cycles (the last one idle); ${changeOps} Graph operations; ${statements() - sql0} SQL statements; conflicts ${conflicts}; contacts disagreeing afterwards: ${disagree}`);
    console.log(`  per cycle: ${cycles.map((c) => `${secs(c.ms)} s ex+${c.t.exchange.created}~${c.t.exchange.updated} crm~${c.t.crm.updated} pulled ${c.t.pulled.exchange}/${c.t.pulled.crm}`).join('; ')}`);
  } finally {
    await s.teardown();
  }
}

(scenario === 'steady' ? steady() : initial()).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
