/**
 * `cxsync dev` (what `npm start` runs): everything on embedded defaults in one process tree — a Temporal dev
 * server, PostgreSQL (DATABASE_URL or embedded), migrations, the Graph emulator with demo mailboxes and demo
 * CRM data, and a worker; enrols the demo mailboxes. Ctrl-C stops it all; data stays under CXSYNC_DATA_DIR.
 */
import { sql } from 'kysely';
import fs from 'node:fs';
import path from 'node:path';
import { Connection, type Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { dataDir, graphSettings, type Env } from '../config';
import { checkDb, migrate, openDb } from '../db/connection';
import { resolveDatabase } from '../db/resolve';
import { startGraphEmulator, type GraphEmulator } from '../emulator';
import { createWorker } from '../worker/worker';
import { findTemporalCli } from '../worker/temporal-cli';
import { startDevServer } from '../worker/dev-server';
import { quietTemporalSdk } from '../worker/logging';
import { startWorkerMetrics } from '../worker/metrics';
import { DEMO_EXCHANGE_CONTACTS, DEMO_MAILBOXES, DEMO_POLICY, dropDemoMail, seedDemoCrm } from './demo';
import { Operator } from './operator';
import { isListening } from '../util/net';
import { temporalClient } from './connect';
import { payloadCodec } from '../security/codec';
import { temporalConnectionOptions } from '../security/temporal-connection';


function emulatorPortInUse(port: number): Error {
  return new Error(
    `port ${port} (CXSYNC_EMULATOR_PORT, the Graph emulator) is in use: cxsync is probably running already (npm start in another terminal: ` +
      `use that one, or stop it with Ctrl-C), or another program holds the port: set CXSYNC_EMULATOR_PORT to a free port`,
  );
}

export async function runDev(env: Env, say: (line: string) => void): Promise<void> {
  const dir = dataDir(env);
  fs.mkdirSync(dir, { recursive: true });
  // A second `npm start` would get as far as the emulator's port (or a metrics port) before failing: say why at once.
  if (graphSettings(env).usesEmulator && (await isListening('127.0.0.1', env.CXSYNC_EMULATOR_PORT))) throw emulatorPortInUse(env.CXSYNC_EMULATOR_PORT);
  quietTemporalSdk(env);
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      await c().catch((e) => say(`shutdown: ${(e as Error).message}`));
    }
  };
  try {
    // PostgreSQL
    const database = await resolveDatabase(env, { start: true });
    cleanups.push(database.stop);
    const db = openDb(database.url);
    cleanups.push(() => db.destroy());
    await checkDb(db, database.url).catch((err: Error) => {
      throw new Error(`${err.message} (${database.embedded ? 'the embedded PostgreSQL' : 'DATABASE_URL; unset it to use the embedded PostgreSQL'})`);
    });
    const applied = await migrate(db);
    say(`PostgreSQL: ${database.embedded ? `embedded, data in ${path.join(dir, 'pg')}` : 'DATABASE_URL'}${applied.length ? ` (migrated: ${applied.join(', ')})` : ''}`);

    // Temporal
    const [host, portText] = env.TEMPORAL_ADDRESS.split(':');
    const port = Number(portText);
    let client: Client;
    let uiUrl: string;
    if (await isListening(host, port)) {
      const connection = await Connection.connect(temporalConnectionOptions(env));
      cleanups.push(() => connection.close());
      client = temporalClient(env, connection);
      uiUrl = `(the Temporal server at ${env.TEMPORAL_ADDRESS} was already running; its UI is wherever it serves it)`;
      say(`Temporal: using the server already listening at ${env.TEMPORAL_ADDRESS}`);
    } else {
      const cli = findTemporalCli({ explicit: env.TEMPORAL_CLI_PATH, log: say });
      const ip = host === 'localhost' ? '127.0.0.1' : host;
      if (cli) {
        say(`Temporal: starting the dev server (${cli})…`);
        const server = await startDevServer({ cli, ip, port, uiPort: env.TEMPORAL_UI_PORT, dbFile: path.join(dir, 'temporal.db'), namespace: env.TEMPORAL_NAMESPACE });
        cleanups.push(() => server.stop());
        const connection = await Connection.connect(temporalConnectionOptions(env));
        cleanups.push(() => connection.close());
        client = temporalClient(env, connection);
      } else {
        // No CLI and no Go: the Temporal SDK downloads the CLI (needs internet) and runs it for us.
        say('Temporal: starting the dev server downloaded by the Temporal SDK…');
        const testEnv = await TestWorkflowEnvironment.createLocal({
          server: { executable: { type: 'cached-download' }, ip, port, ui: true, uiPort: env.TEMPORAL_UI_PORT, dbFilename: path.join(dir, 'temporal.db'), namespace: env.TEMPORAL_NAMESPACE },
        });
        cleanups.push(() => testEnv.teardown());
        client = temporalClient(env, testEnv.connection);
      }
      uiUrl = `http://localhost:${env.TEMPORAL_UI_PORT}`;
    }

    // Microsoft Graph: the emulator unless an Azure tenant is configured.
    const graph = graphSettings(env);
    let emulator: GraphEmulator | undefined;
    if (graph.usesEmulator) {
      emulator = await startGraphEmulator({ port: env.CXSYNC_EMULATOR_PORT, dataDir: path.join(dir, 'emulator'), log: () => undefined }).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EADDRINUSE' ? emulatorPortInUse(env.CXSYNC_EMULATOR_PORT) : err;
      });
      cleanups.push(() => emulator!.close());
      for (const m of DEMO_MAILBOXES) {
        if (!emulator.admin.listMailboxes().includes(m.email)) {
          emulator.admin.ensureMailbox(m.email, m.displayName);
          for (const c of DEMO_EXCHANGE_CONTACTS[m.email]) emulator.admin.createContact(m.email, 'VContacts', c);
        }
      }
      say(`Graph emulator: ${emulator.graphBaseUrl} (admin API at ${emulator.origin}/admin/mailboxes)`);
    } else {
      say(`Microsoft Graph: ${graph.baseUrl} (tenant ${graph.tenantId})`);
    }
    if (await seedDemoCrm(db)) say(`demo CRM seeded: users ${DEMO_MAILBOXES.map((m) => m.email).join(', ')}`);

    // Worker
    const metrics = await startWorkerMetrics(env, say);
    if (metrics) cleanups.push(metrics.close);
    const { worker, connection } = await createWorker({
      db,
      graph,
      graphCaPem: emulator?.caCertPem,
      temporal: { connection: undefined, ...temporalConnectionOptions(env), namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TEMPORAL_TASK_QUEUE },
      codec: payloadCodec(env),
      settings: { intervalSeconds: env.CXSYNC_SYNC_INTERVAL_SECONDS, batchSize: env.CXSYNC_BATCH_SIZE, retryBudgetSeconds: env.CXSYNC_RETRY_BUDGET_SECONDS, operationAttempts: env.CXSYNC_OPERATION_ATTEMPTS, mailRescanSeconds: env.CXSYNC_MAIL_RESCAN_SECONDS },
      retentionDays: env.CXSYNC_RETENTION_DAYS,
      // Ctrl-C should not keep a developer waiting: an activity cut short is retried at the next start.
      shutdownGraceTime: '5 seconds',
    });
    const running = worker.run();
    cleanups.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    });

    if (graph.usesEmulator) {
      const operator = new Operator(client, db, env.TEMPORAL_TASK_QUEUE);
      // The demo policy turns email filing on; an operator who changed or removed it keeps their choice.
      if (!(await operator.listPolicies()).some((p) => p.name === DEMO_POLICY.name)) await operator.createPolicy(DEMO_POLICY.name, DEMO_POLICY.doc);
      for (const m of DEMO_MAILBOXES) {
        const known = await db.selectFrom('sync.mailbox').select('id').where('id', '=', m.email).executeTakeFirst();
        await operator.enroll(m.email, known ? {} : { policy: DEMO_POLICY.name });
      }
      // In the background: the mail is dropped once the first cycles have made the drop folders. It counts them
      // in the database, not with a workflow query, which no worker answers once stopping began; stopping ends
      // it before the Temporal connection closes (a call on a closed channel throws outside any promise).
      const stopDropping = new AbortController();
      const dropping = dropDemoMail(
        {
          admin: emulator!.admin,
          cyclesCompleted: async (mb) => (await sql<{ n: number }>`select count(*)::int as n from sync.cycle where mailbox_id = ${mb} and status = 'done'`.execute(db)).rows[0].n,
          syncNow: (mb) => operator.syncNow(mb),
        },
        { signal: stopDropping.signal },
      ).then(
        (mailboxes) => mailboxes.length && say(`demo mail dropped into VLeads of ${mailboxes.join(', ')}: see npx cxsync status ${mailboxes[0]}`),
        (err: Error) => stopDropping.signal.aborted || say(`demo mail not dropped: ${err.message}`),
      );
      cleanups.push(async () => {
        stopDropping.abort();
        await dropping;
      });
    }

    say('');
    say(`cxsync is running. Temporal UI: ${uiUrl}`);
    say('In another terminal:');
    say('  npx cxsync list');
    say(`  npx cxsync status ${DEMO_MAILBOXES[0].email}`);
    say(`  npx cxsync sync-now ${DEMO_MAILBOXES[0].email} --wait`);
    say('  npx cxsync --help');
    say('Press Ctrl-C to stop (data stays in ' + dir + ').');

    await new Promise<void>((resolve) => {
      // The worker also stops itself on SIGINT/SIGTERM; whichever comes first, we then stop the rest. The
      // handlers stay for the whole shutdown: a second Ctrl-C must not kill us before the children are stopped.
      let stopping = false;
      const onSignal = () => {
        if (stopping) return say('still stopping (the Temporal server and PostgreSQL shut down cleanly)…');
        stopping = true;
        resolve();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      running.then(() => resolve(), () => resolve());
    });
    say('stopping…');
  } finally {
    await cleanup();
  }
}
