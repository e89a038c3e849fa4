/**
 * The real stack for integration tests: a Temporal CLI dev server, a fresh PostgreSQL database, the HTTPS Graph
 * emulator reached through @microsoft/microsoft-graph-client + @azure/msal-node, and a cxsync worker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { sql } from 'kysely';
import { EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, type GraphSettings } from '../../src/config';
import { Operator } from '../../src/client/operator';
import type { Db } from '../../src/db/connection';
import { startGraphEmulator, type EmulatorOptions, type GraphEmulator } from '../../src/emulator';
import type { ActivitySettings } from '../../src/activities/mailbox-activities';
import { createWorker } from '../../src/worker/worker';
import { freshDatabase } from './database';
import { waitForCrmFeed } from '../model/settle';
import { freePort } from './ports';

export { freePort };

// Worker lifecycle chatter drowns test output; warnings and errors still show.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  /* already installed by another helper in this process */
}

export async function startTemporal(): Promise<{ env: TestWorkflowEnvironment; address: string }> {
  const cli = process.env.TEMPORAL_CLI_PATH;
  const port = await freePort();
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: cli ? { type: 'existing-path', path: cli } : { type: 'cached-download' }, ip: '127.0.0.1', port },
  });
  return { env, address: `127.0.0.1:${port}` };
}

export function emulatorGraphSettings(emu: GraphEmulator): GraphSettings {
  return { baseUrl: emu.graphBaseUrl, authorityHost: emu.authorityHost, tenantId: emu.tenantId, clientId: EMULATOR_CLIENT_ID, clientSecret: EMULATOR_CLIENT_SECRET, usesEmulator: true };
}

export interface Stack {
  db: Db;
  dbUrl: string;
  emulator: GraphEmulator;
  temporal: TestWorkflowEnvironment;
  temporalAddress: string;
  taskQueue: string;
  operator: Operator;
  worker?: Worker;
  startWorker(settings?: Partial<ActivitySettings>): Promise<void>;
  stopWorker(): Promise<void>;
  /** A CRM user whose mailbox exists in the emulator. */
  addUser(email: string, name?: string): Promise<string>;
  /** Writes the emulator's certificate to a file, for a worker in another process (GRAPH_CA_FILE). */
  caFile(): string;
  teardown(): Promise<void>;
}

export async function startStack(opts: { emulator?: EmulatorOptions; worker?: Partial<ActivitySettings>; startWorker?: boolean; pageSize?: number; codec?: PayloadCodec } = {}): Promise<Stack> {
  const database = await freshDatabase();
  const emulator = await startGraphEmulator({ port: 0, ...opts.emulator });
  const { env: temporal, address } = await startTemporal();
  const taskQueue = `cxsync-test-${randomBytes(4).toString('hex')}`;
  // With payload encryption the operator's client needs the worker's codec, as the CLI has (src/client/connect.ts).
  const client = opts.codec ? new Client({ connection: temporal.connection, namespace: 'default', dataConverter: { payloadCodecs: [opts.codec] } }) : temporal.client;
  const operator = new Operator(client, database.db, taskQueue);
  // The CRM feed reads below the oldest transaction running anywhere in the PostgreSQL cluster, and test files run
  // two at a time against one cluster: another file's transaction can hold a CRM edit a test just made back from
  // the cycle it asks for (in production it simply comes a cycle later). sync-now waits for the feed to see it.
  const syncNow = operator.syncNow.bind(operator);
  operator.syncNow = async (...args: Parameters<Operator['syncNow']>) => {
    await waitForCrmFeed(database.db).catch(() => undefined);
    return syncNow(...args);
  };
  let running: Promise<void> | undefined;
  let tmpCa: string | undefined;

  const stack: Stack = {
    db: database.db,
    dbUrl: database.url,
    emulator,
    temporal,
    temporalAddress: address,
    taskQueue,
    operator,
    async startWorker(settings) {
      const { worker } = await createWorker({
        db: database.db,
        graph: emulatorGraphSettings(emulator),
        graphCaPem: emulator.caCertPem,
        temporal: { connection: temporal.nativeConnection, address, namespace: 'default', taskQueue },
        codec: opts.codec,
        settings: { intervalSeconds: 3600, batchSize: 100, ...opts.worker, ...settings },
        pageSize: opts.pageSize,
      });
      stack.worker = worker;
      running = worker.run();
    },
    async stopWorker() {
      if (stack.worker && stack.worker.getState() === 'RUNNING') stack.worker.shutdown();
      await running;
      stack.worker = undefined;
      running = undefined;
    },
    async addUser(email, name) {
      emulator.admin.ensureMailbox(email, name ?? email);
      const r = await sql<{ id: string }>`insert into crm.users (email, display_name) values (${email}, ${name ?? email}) returning id`.execute(database.db);
      return r.rows[0].id;
    },
    caFile() {
      if (!tmpCa) {
        tmpCa = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-ca-')), 'cert.pem');
        fs.writeFileSync(tmpCa, emulator.caCertPem);
      }
      return tmpCa;
    },
    async teardown() {
      await stack.stopWorker().catch(() => undefined);
      await temporal.teardown().catch(() => undefined);
      await emulator.close().catch(() => undefined);
      await database.drop().catch(() => undefined);
    },
  };
  if (opts.startWorker !== false) await stack.startWorker();
  return stack;
}

export async function eventually<T>(fn: () => Promise<T>, check: (v: T) => boolean, { timeoutMs = 60_000, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (check(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
