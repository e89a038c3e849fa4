/**
 * A PostgreSQL restart and a Temporal server restart in the middle of a cycle heal by themselves (issue 9, "every
 * failure lands in one of two places"): the cycle carries on once the server is back, nothing is lost or
 * duplicated on either side, and the mailbox does not end in needs-attention (the retry budget outlasts the outage).
 *
 * The shared PostgreSQL of npm test and the SDK's in-memory Temporal test server cannot be restarted, so this file
 * builds its own stack: the project's embedded PostgreSQL (src/db/embedded.ts, as `npm start` uses) on a private
 * port and data directory, and a Temporal CLI dev server with a SQLite file (as `npm start` runs it), which keeps
 * its state across a SIGKILL. The worker is the real one (createWorker) with its own NativeConnection.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { sql } from 'kysely';
import { Operator } from '../../src/client/operator';
import { migrate, openDb, type Db } from '../../src/db/connection';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { isListening } from '../../src/util/net';
import { findTemporalCli } from '../../src/worker/temporal-cli';
import { createWorker } from '../../src/worker/worker';
import { mailboxWorkflowId } from '../../src/workflows/mailbox';
import { emulatorGraphSettings, eventually, freePort } from '../helpers/stack';

const CONTACTS_CRM = 60;
const CONTACTS_OUTLOOK = 20;
const TOTAL = CONTACTS_CRM + CONTACTS_OUTLOOK;
/** At most this many writes per side and cycle: the 80 contacts take several cycles, the restarts land in one. */
const BATCH_SIZE = 20;
const PG_OUTAGE_MS = 5_000;
const TEMPORAL_OUTAGE_MS = 20_000;
/**
 * Longer than the outages and the recovery after them (a PostgreSQL restart strands the mailbox lease of the attempt
 * it interrupted: up to 30 s more): the mailbox must heal without passing through needs-attention.
 */
const RETRY_BUDGET_SECONDS = 120;

/** The Temporal CLI dev server with a SQLite file: killed and started again on the same port, it keeps its state. */
class TemporalServer {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  readonly address: string;
  constructor(private readonly cli: string, readonly port: number, private readonly dbFile: string) {
    this.address = `127.0.0.1:${port}`;
  }
  async start(): Promise<void> {
    const child = spawn(this.cli, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(this.port), '--headless', '--db-filename', this.dbFile, '--log-level', 'error'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!(await isListening('127.0.0.1', this.port))) {
      if (child.exitCode !== null) throw new Error(`the Temporal dev server exited at start: ${stderr}`);
      if (Date.now() > deadline) throw new Error('the Temporal dev server did not start within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** As a crash or an OOM kill would: no chance to finish anything in flight. */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** test/helpers/held-connection.ts in a child process, driven a line at a time. */
class HeldConnection {
  private readonly answers: string[] = [];
  private waiting?: (line: string) => void;
  private stderr = '';
  private constructor(private readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(line);
      else this.answers.push(line);
    });
    child.stderr?.on('data', (d) => (this.stderr = (this.stderr + d).slice(-2000)));
    child.stdin?.on('error', () => undefined); // EPIPE once it has died: the exit code tells
  }
  static async start(url: string): Promise<HeldConnection> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'helpers', 'held-connection.ts'), url], { stdio: ['pipe', 'pipe', 'pipe'] });
    const h = new HeldConnection(child);
    assert.equal(await h.answer(), 'held');
    return h;
  }
  private answer(): Promise<string> {
    const ready = this.answers.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from held-connection (exit ${this.child.exitCode}): ${this.stderr}`)), 30_000);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.child.once('exit', () => setTimeout(() => reject(new Error(`held-connection exited ${this.child.exitCode}: ${this.stderr}`)), 100));
    });
  }
  send(line: string): Promise<string> {
    this.child.stdin!.write(`${line}\n`);
    return this.answer();
  }
  exitCode(): number | null {
    return this.child.exitCode;
  }
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

interface RestartableStack {
  dir: string;
  db: Db;
  dbUrl: string;
  emulator: GraphEmulator;
  temporal: TemporalServer;
  client: Client;
  operator: Operator;
  /**
   * A new client connection, as each `cxsync` command opens. A long-lived one backs off from a server that was
   * away (gRPC reconnect backoff, up to 2 min), which says nothing about the worker.
   */
  reconnectClient(): Promise<void>;
  worker: Worker;
  /** worker.run(); rejects if the worker dies. */
  running: Promise<void>;
  workerError?: unknown;
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  teardown(): Promise<void>;
}

async function startRestartableStack(): Promise<RestartableStack> {
  const cli = findTemporalCli({ explicit: process.env.TEMPORAL_CLI_PATH, build: false });
  if (!cli) throw new Error('no Temporal CLI (TEMPORAL_CLI_PATH, temporal on PATH or a go install): run the tests with npm test, which builds it');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-restarts-'));
  // PostgreSQL runs as the `postgres` user when the tests run as root (src/db/embedded.ts): it must reach its data dir.
  fs.chmodSync(dir, 0o755);
  const pgDir = path.join(dir, 'pg');
  const pgPort = await freePort();
  let pg: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dir: pgDir, port: pgPort });
  let stopping: Promise<void> | undefined;
  const db = openDb(pg.url);
  await migrate(db);
  const emulator = await startGraphEmulator({ port: 0 });
  const temporal = new TemporalServer(cli, await freePort(), path.join(dir, 'temporal.db'));
  await temporal.start();
  const taskQueue = `cxsync-restarts-${randomBytes(4).toString('hex')}`;
  const { worker, connection } = await createWorker({
    db,
    graph: emulatorGraphSettings(emulator),
    graphCaPem: emulator.caCertPem,
    temporal: { address: temporal.address, namespace: 'default', taskQueue },
    settings: { intervalSeconds: 3600, batchSize: BATCH_SIZE, retryBudgetSeconds: RETRY_BUDGET_SECONDS },
  });
  let clientConnection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection: clientConnection, namespace: 'default' });
  const stack: RestartableStack = {
    dir,
    db,
    dbUrl: pg.url,
    emulator,
    temporal,
    client,
    operator: new Operator(client, db, taskQueue),
    async reconnectClient() {
      await clientConnection.close().catch(() => undefined);
      clientConnection = await Connection.connect({ address: temporal.address });
      stack.client = new Client({ connection: clientConnection, namespace: 'default' });
      stack.operator = new Operator(stack.client, db, taskQueue);
    },
    worker,
    running: Promise.resolve(),
    async stopPostgres() {
      const running = pg;
      pg = undefined;
      await (stopping = running?.stop());
    },
    async startPostgres() {
      await stopping;
      pg ??= await startEmbeddedPostgres({ dir: pgDir, port: pgPort });
    },
    async teardown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await stack.running.catch(() => undefined);
      await connection.close().catch(() => undefined);
      await clientConnection.close().catch(() => undefined);
      await temporal.kill();
      await emulator.close().catch(() => undefined);
      await db.destroy().catch(() => undefined);
      await stopping;
      await pg?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  stack.running = worker.run().catch((err) => {
    stack.workerError = err;
    throw err;
  });
  stack.running.catch(() => undefined);
  return stack;
}

describe('PostgreSQL and Temporal restarted mid-cycle', () => {
  let s: RestartableStack;
  before(async () => {
    s = await startRestartableStack();
  });
  after(async () => s?.teardown());
  // A failed test must not leave the next one without its servers.
  afterEach(async () => {
    await s?.startPostgres();
    if (!(await isListening('127.0.0.1', s.temporal.port))) await s.temporal.start();
  });

  async function seed(upn: string): Promise<string> {
    s.emulator.admin.ensureMailbox(upn, upn);
    const owner = (await sql<{ id: string }>`insert into crm.users (email, display_name) values (${upn}, ${upn}) returning id`.execute(s.db)).rows[0].id;
    const values = Array.from({ length: CONTACTS_CRM }, (_, i) => sql`(${owner}::uuid, ${'Crm' + i}, 'Export', ${`crm${i}.${upn}`})`);
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values ${sql.join(values)}`.execute(s.db);
    for (let i = 0; i < CONTACTS_OUTLOOK; i++) s.emulator.admin.createContact(upn, 'VContacts', { givenName: `Ex${i}`, surname: 'Import', emailAddresses: [{ address: `ex${i}.${upn}` }] });
    return owner;
  }
  /** Writes applied to either side (one per contact, TOTAL in all), or to one side. */
  const doneOps = async (upn: string, side?: 'exchange' | 'crm') =>
    Number(
      (await sql<{ n: string }>`select count(*)::text as n from sync.operation where mailbox_id = ${upn} and side in (${sql.join(side ? [side] : ['exchange', 'crm'])}) and status = 'done'`.execute(s.db)).rows[0].n,
    );
  const pendingActivity = async (upn: string) => (await s.client.workflow.getHandle(mailboxWorkflowId(upn)).describe()).raw.pendingActivities?.[0];

  /** Both sides and the mappings hold each contact exactly once, and the mailbox is idle after a quiet cycle. */
  async function assertHealed(upn: string, owner: string): Promise<void> {
    const crmCount = async () => Number((await sql<{ n: string }>`select count(*)::text as n from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db)).rows[0].n);
    await eventually(async () => [s.emulator.admin.listContacts(upn, 'VContacts').length, await crmCount()], ([ex, crm]) => ex >= TOTAL && crm >= TOTAL, {
      what: `both sides of ${upn} to reach ${TOTAL} contacts`,
      timeoutMs: 90_000,
    });
    // A quiet cycle: nothing left to write on either side, so nothing is still on its way to a duplicate.
    await eventually(
      () => s.operator.syncNow(upn, { wait: true, timeoutMs: 60_000 }),
      (st) => {
        const t = st?.lastCycle?.types.contact;
        return st?.lastCycle?.outcome === 'completed' && !!t && t.exchange.created + t.exchange.updated + t.crm.created + t.crm.updated === 0;
      },
      { what: `a quiet cycle of ${upn}`, timeoutMs: 60_000 },
    );
    const outlook = s.emulator.admin.listContacts(upn, 'VContacts').map((c) => `${c.givenName} ${c.surname}`);
    assert.equal(outlook.length, TOTAL, 'Outlook holds each contact once');
    assert.equal(new Set(outlook).size, TOTAL, 'no duplicate in Outlook');
    const crm = (await sql<{ name: string }>`select first_name || ' ' || last_name as name from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db)).rows.map((r) => r.name);
    assert.equal(crm.length, TOTAL, 'the CRM holds each contact once');
    assert.deepEqual([...crm].sort(), [...outlook].sort(), 'the same contacts on both sides');
    const mappings = await sql<{ n: string; crm: string; ex: string }>`
      select count(*)::text as n, count(distinct crm_id)::text as crm, count(distinct exchange_id)::text as ex
      from sync.mapping where mailbox_id = ${upn} and record_type = 'contact'`.execute(s.db);
    assert.deepEqual(mappings.rows[0], { n: String(TOTAL), crm: String(TOTAL), ex: String(TOTAL) }, 'one mapping per pair');
    // A cycle asked for while one ran may still follow: idle once it is done, never needs-attention.
    const st = await eventually(() => s.operator.status(upn), (x) => x.state !== 'syncing', { what: `${upn} idle`, timeoutMs: 60_000 });
    assert.equal(st.state, 'idle', `the mailbox is idle: ${JSON.stringify(st)}`);
    assert.equal(st.needsAttentionReason ?? null, null);
    assert.equal(st.retrying, undefined, 'the failure streak is over');
    assert.equal(s.workerError, undefined, 'the worker kept running');
  }

  /**
   * Enrols the mailbox with Graph slowed down and returns once a $batch of creates is half done: Graph has made
   * contacts whose operations are not committed yet. A restart there is the worst moment for duplicates.
   */
  async function midApply(upn: string): Promise<void> {
    s.emulator.admin.setLatency(upn, 300);
    await s.operator.enroll(upn);
    await eventually(
      async () => ({ created: s.emulator.admin.listContacts(upn, 'VContacts').length - CONTACTS_OUTLOOK, committed: await doneOps(upn, 'exchange') }),
      ({ created, committed }) => created > committed && created < CONTACTS_CRM,
      { what: `Graph writes of ${upn} under way`, timeoutMs: 60_000 },
    );
  }

  it('PostgreSQL restarted while applyBatch writes: Temporal retries the step, the cycle completes, nothing lost or duplicated', async () => {
    const upn = 'pia@contoso.com';
    const owner = await seed(upn);
    // A process holding a connection inside a transaction across the stop, as an activity does between two
    // queries: pg-pool watches idle connections only, and this one's 'error' event ended the process until
    // src/db/connection.ts listened on every connection. A process of its own: in this test's process, such an
    // uncaught error of the in-process worker's pool did not fail the test.
    const holder = await HeldConnection.start(s.dbUrl);
    try {
      await midApply(upn);
      await s.stopPostgres();
      const outageStart = Date.now();
      // The database is down, so is the operator's view of the mailbox; Temporal's pending-activity information (what
      // `status` shows as the running step) says the step is retried and why.
      const retried = await eventually(() => pendingActivity(upn), (a) => !!a && (a.attempt ?? 1) >= 2, { what: 'a retried step during the outage', timeoutMs: 30_000 });
      assert.equal(retried!.activityType?.name, 'applyBatch');
      assert.match(retried!.lastFailure?.message ?? '', /ECONNREFUSED|PostgreSQL 57P0[13]|Connection terminated|not queryable/, `the last failure is the database: ${retried!.lastFailure?.message}`);
      assert.equal(holder.exitCode(), null, 'a process whose connection died in use lives on');
      assert.match(await holder.send('go'), /^transaction failed: (terminating connection|Connection terminated|Client has encountered a connection error)/);
      await new Promise((r) => setTimeout(r, Math.max(0, PG_OUTAGE_MS - (Date.now() - outageStart))));
      await s.startPostgres();
      assert.equal(await holder.send('again'), 'queried: 42', 'and its pool connects again');
      const left = TOTAL - (await doneOps(upn));
      assert.ok(left > 0, 'work was left for after the restart');
      console.log(`PostgreSQL down for ${((Date.now() - outageStart) / 1000).toFixed(1)} s, ${left} writes left`);
      s.emulator.admin.setLatency(upn, 0);
      await assertHealed(upn, owner);
    } finally {
      holder.kill();
    }
  });

  it('Temporal server killed (SIGKILL) while applyBatch writes and started again: the worker reconnects, the cycle completes, nothing lost or duplicated', async () => {
    const upn = 'tom@contoso.com';
    const owner = await seed(upn);
    await midApply(upn);
    const { runId } = await s.client.workflow.getHandle(mailboxWorkflowId(upn)).describe();
    await s.temporal.kill();
    const outageStart = Date.now();
    // Longer than the heartbeat timeout and than the SDK's retries of an activity's completion: the step running at
    // the kill finishes its batch alone, its result is lost, and the restarted server times it out and runs it again.
    await new Promise((r) => setTimeout(r, TEMPORAL_OUTAGE_MS));
    assert.equal(s.worker.getState(), 'RUNNING', 'the worker survives the server going away');
    assert.equal(s.workerError, undefined);
    const left = TOTAL - (await doneOps(upn));
    assert.ok(left > 0, 'work was left for after the restart: cycles need the server again');
    await s.temporal.start();
    await s.reconnectClient();
    console.log(`Temporal down for ${((Date.now() - outageStart) / 1000).toFixed(1)} s, ${left} writes left`);
    s.emulator.admin.setLatency(upn, 0);
    await assertHealed(upn, owner);
    // The interrupted step ran again after the restart, because its first attempt timed out while the server was away.
    const history = await s.client.workflow.getHandle(mailboxWorkflowId(upn), runId).fetchHistory();
    const scheduled = new Map((history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]));
    const retried = (history.events ?? [])
      .map((e) => e.activityTaskStartedEventAttributes)
      .filter((a) => a && (a.attempt ?? 1) >= 2)
      .map((a) => ({ step: scheduled.get(String(a!.scheduledEventId)), timedOut: !!a!.lastFailure?.timeoutFailureInfo }));
    // Or, on a loaded machine, the worker was still reporting that step's completion when the server came back,
    // and it was delivered then: recorded after the outage, on its first attempt. Either way nothing was lost or
    // done twice (assertHealed above); what must not happen is a step that neither completed nor ran again.
    const at = (e: (typeof history.events & object)[number]) => Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    const events = history.events ?? [];
    const interrupted = events.filter((e) => e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'applyBatch' && at(e) < outageStart).at(-1);
    const deliveredLate = events.some((e) => e.activityTaskCompletedEventAttributes && String(e.activityTaskCompletedEventAttributes.startedEventId) === String(interrupted?.eventId) && at(e) >= outageStart + TEMPORAL_OUTAGE_MS);
    assert.ok(
      retried.some((r) => r.step === 'applyBatch' && r.timedOut) || deliveredLate,
      `applyBatch retried after a timeout, or its completion delivered after the restart: ${JSON.stringify(retried)}`,
    );
  });
});
