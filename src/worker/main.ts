/** `cxsync worker`: a production worker process. Stops gracefully on SIGINT/SIGTERM (in-flight activities finish). */
import { graphSettings, type Env } from '../config';
import { checkDb, migrate, openDb } from '../db/connection';
import { resolveDatabase } from '../db/resolve';
import { createWorker } from './worker';
import { quietTemporalSdk } from './logging';
import { isUnreachable, temporalUnreachableMessage } from './temporal-unreachable';
import { startWorkerMetrics, type MetricsServer } from './metrics';
import { payloadCodec } from '../security/codec';
import { describeTemporalSecurity, refusedCredentialsMessage, temporalConnectionOptions } from '../security/temporal-connection';

export async function runWorker(env: Env, say: (line: string) => void): Promise<void> {
  quietTemporalSdk(env);
  const database = await resolveDatabase(env, { start: true });
  const db = openDb(database.url);
  let metrics: MetricsServer | undefined;
  try {
    await checkDb(db, database.url);
    await migrate(db);
    metrics = await startWorkerMetrics(env, say);
    let created;
    const temporal = temporalConnectionOptions(env);
    const codec = payloadCodec(env);
    try {
      created = await createWorker({
        db,
        graph: graphSettings(env),
        temporal: { ...temporal, namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TEMPORAL_TASK_QUEUE },
        codec,
        settings: { intervalSeconds: env.CXSYNC_SYNC_INTERVAL_SECONDS, batchSize: env.CXSYNC_BATCH_SIZE, retryBudgetSeconds: env.CXSYNC_RETRY_BUDGET_SECONDS, operationAttempts: env.CXSYNC_OPERATION_ATTEMPTS, mailRescanSeconds: env.CXSYNC_MAIL_RESCAN_SECONDS },
        retentionDays: env.CXSYNC_RETENTION_DAYS,
      });
    } catch (err) {
      if (env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace') console.error(err);
      throw new Error(refusedCredentialsMessage(env.TEMPORAL_ADDRESS, err) ?? (isUnreachable(err) ? temporalUnreachableMessage(env.TEMPORAL_ADDRESS, err) : (err as Error).message.split('\n')[0]));
    }
    say(`worker polling task queue ${env.TEMPORAL_TASK_QUEUE} on ${env.TEMPORAL_ADDRESS} (namespace ${env.TEMPORAL_NAMESPACE}; ${describeTemporalSecurity(temporal)}; payloads ${codec ? `encrypted with key ${codec.encodeKeyId}` : 'not encrypted'})`);
    await created.worker.run();
    await created.connection.close();
  } finally {
    await metrics?.close();
    await db.destroy();
    await database.stop();
  }
}
