/** The pruning activity of the retention workflow (src/workflows/retention.ts): I/O around db/retention-store.ts. */
import { Context } from '@temporalio/activity';
import type { Db } from '../db/connection';
import { pruneHistory } from '../db/retention-store';
import type { PruneResult, RetentionActivities } from '../workflows/retention';

export function createRetentionActivities(deps: { db: Db; retentionDays: number }): RetentionActivities {
  return {
    async pruneSyncTables(): Promise<PruneResult> {
      const counts = await pruneHistory(deps.db, { days: deps.retentionDays, onBatch: () => Context.current().heartbeat() });
      return { retentionDays: deps.retentionDays, ...counts };
    },
  };
}
