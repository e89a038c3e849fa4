/** Starts the retention workflow unless it runs already (every worker tries at start-up; one instance lives). */
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { RETENTION_WORKFLOW_ID, retentionWorkflow } from '../workflows/retention';

export async function ensureRetentionWorkflow(connection: NativeConnection, namespace: string, taskQueue: string): Promise<void> {
  // No arguments and no result: no payload for a codec to encode, so a plain client does.
  const client = new Client({ connection, namespace });
  await client.workflow.start(retentionWorkflow, { workflowId: RETENTION_WORKFLOW_ID, taskQueue, workflowIdConflictPolicy: 'USE_EXISTING' });
}
