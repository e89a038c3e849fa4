/**
 * The activities the mailbox workflow calls, as types only: arguments and results are ids, counts and flags,
 * never record content (histories are stored and shown in the Temporal UI).
 */
import type { TimeWindow } from '../domain/schedule';
import type { CycleSummary, RecordType } from '../domain/status';

export interface MailboxConfig {
  exists: boolean;
  intervalSeconds: number;
  batchSize: number;
  recordTypes: RecordType[];
  /** The policy's active hours as UTC windows (from now to a horizon beyond the longest interval); absent: any time. */
  activeWindows?: TimeWindow[];
}

export interface CycleRef {
  mailboxId: string;
  cycleId: string;
}

export interface TypeStep extends CycleRef {
  recordType: RecordType;
}

export interface ApplyResult {
  applied: number;
  failed: number;
  remaining: number;
}

export interface MailboxActivities {
  loadMailbox(mailboxId: string): Promise<MailboxConfig>;
  /** The mailbox's open cycle (an interrupted one is resumed) or a new one. */
  startCycle(mailboxId: string): Promise<{ cycleId: string; startedAt: string; resumed: boolean }>;
  pullExchange(step: TypeStep): Promise<{ pulled: number }>;
  pullCrm(step: TypeStep): Promise<{ pulled: number }>;
  plan(step: TypeStep): Promise<{ operations: number; conflicts: number }>;
  applyBatch(step: TypeStep & { limit: number }): Promise<ApplyResult>;
  commitType(step: TypeStep): Promise<void>;
  finishCycle(ref: CycleRef & { outcome: 'completed' | 'interrupted' | 'failed'; detail?: string }): Promise<CycleSummary>;
}
