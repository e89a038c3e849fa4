/** Worker bootstrap: connects to Temporal and PostgreSQL, wires the activities, and runs until shut down. */
import fs from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createMailboxActivities, type ActivitySettings } from '../activities/mailbox-activities';
import { graphAdapters } from '../activities/graph-adapters';
import { graphConnection } from '../activities/exchange/graph-client';
import type { GraphSettings } from '../config';
import type { Db } from '../db/connection';
import { createRetentionActivities } from '../activities/retention-activities';
import { DEFAULT_RETENTION_DAYS } from '../db/retention-store';
import { ensureRetentionWorkflow } from './retention';
import { observeDatabase } from '../activities/metrics';
import { scrubbingInterceptor } from '../activities/scrub';
import { dataConverterFor } from '../security/codec';
import type { Duration, PayloadCodec } from '@temporalio/common';
import type { TemporalConnectionOptions } from '../security/temporal-connection';

export interface WorkerParams {
  db: Db;
  graph: GraphSettings;
  /** PEM to trust for Graph, when not read from graph.caFile (tests pass the emulator's directly). */
  graphCaPem?: string;
  temporal: { connection?: NativeConnection; address: string; namespace: string; taskQueue: string } & Pick<TemporalConnectionOptions, 'tls' | 'apiKey'>;
  /** Payload encryption (src/security/codec.ts); absent: payloads travel as plain JSON. */
  codec?: PayloadCodec;
  settings: Partial<ActivitySettings>;
  /** Days of sync history kept (CXSYNC_RETENTION_DAYS); the retention workflow prunes what is older. */
  retentionDays?: number;
  /** Delta page size requested from Graph. */
  pageSize?: number;
  /** On shutdown, how long activities in flight get to finish before they are cancelled (default 30 s). */
  shutdownGraceTime?: Duration;
}

export const DEFAULT_ACTIVITY_SETTINGS: ActivitySettings = {
  intervalSeconds: 300,
  batchSize: 500,
  containerNames: { contact: 'VContacts', event: 'VEvents', task: 'VTasks' },
  maxConcurrency: 4,
  retryBudgetSeconds: 1800,
  operationAttempts: 5,
};

/** The prebuilt bundle (npm run build) when present, otherwise bundle the workflow sources at start-up. */
export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = path.join(__dirname, '..', 'workflow-bundle.js');
  if (fs.existsSync(bundle)) return { workflowBundle: { codePath: bundle } };
  return { workflowsPath: require.resolve('../workflows') };
}

export async function createWorker(p: WorkerParams): Promise<{ worker: Worker; connection: NativeConnection; ownsConnection: boolean }> {
  const ownsConnection = !p.temporal.connection;
  const connection = p.temporal.connection ?? (await NativeConnection.connect({ address: p.temporal.address, tls: p.temporal.tls, apiKey: p.temporal.apiKey }));
  const graph = graphConnection(p.graph, p.graphCaPem);
  // The fleet gauges (mailboxes by state, sync lag) read this worker's database at each scrape.
  observeDatabase(p.db);
  const activities = createMailboxActivities({
    db: p.db,
    ...graphAdapters(p.db, graph.client, { pageSize: p.pageSize }),
    settings: { ...DEFAULT_ACTIVITY_SETTINGS, ...p.settings },
  });
  const worker = await Worker.create({
    connection,
    namespace: p.temporal.namespace,
    taskQueue: p.temporal.taskQueue,
    ...workflowSource(),
    activities: { ...activities, ...createRetentionActivities({ db: p.db, retentionDays: p.retentionDays ?? DEFAULT_RETENTION_DAYS }) },
    // Every activity error passes the scrubber before it becomes a failure in the history (no record content).
    interceptors: { activity: [scrubbingInterceptor] },
    dataConverter: dataConverterFor(p.codec),
    maxConcurrentActivityTaskExecutions: 50,
    // On SIGTERM, activities in flight get this long to finish before they are cancelled and retried elsewhere.
    shutdownGraceTime: p.shutdownGraceTime ?? '30 seconds',
    // Heartbeats carry cancellations to activities: sent at least every 2 s (not 80 % of the 15 s timeout), a
    // pause reaches a running activity within seconds (docs/OPERATIONS.md).
    maxHeartbeatThrottleInterval: '2 seconds',
  });
  await ensureRetentionWorkflow(connection, p.temporal.namespace, p.temporal.taskQueue);
  return { worker, connection, ownsConnection };
}
