/**
 * Pruning of the sync history by age (docs/OPERATIONS.md, "Retention and erasure"). One instance per namespace
 * (workflow id RETENTION_WORKFLOW_ID), started by every worker at start-up: Temporal keeps a single one running,
 * retries the activity when PostgreSQL is away, and shows each run in its UI — no timer or lock of our own.
 */
import { continueAsNew, proxyActivities, sleep } from '@temporalio/workflow';

export const RETENTION_WORKFLOW_ID = 'cxsync/retention';

/** Counts only: what was deleted, and the retention period the worker applied. */
export interface PruneResult {
  retentionDays: number;
  operations: number;
  conflicts: number;
  cycles: number;
  log: number;
}

export interface RetentionActivities {
  pruneSyncTables(): Promise<PruneResult>;
}

const { pruneSyncTables } = proxyActivities<RetentionActivities>({
  // A first run after an upgrade may delete millions of rows, in batches with a heartbeat between them; a retry
  // goes on where the last attempt stopped.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

export async function retentionWorkflow(): Promise<void> {
  await pruneSyncTables();
  await sleep('1 hour');
  await continueAsNew<typeof retentionWorkflow>();
}
