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
  /** The policy files mail from drop folders (email.enabled). */
  email?: boolean;
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
  /** Operations still to apply in this cycle (within the batch size); 0 ends the apply loop. */
  remaining: number;
  /** Operations beyond this cycle's batch size wait for the next cycle, which should start at once. */
  workRemaining?: boolean;
}

export interface CommitResult {
  /**
   * The next cycle should start at once instead of waiting for the schedule: operations were carried over by
   * the batch size, the delta round is not finished, or a change is kept for re-planning (412).
   */
  workRemaining: boolean;
}

export interface MailboxActivities {
  loadMailbox(mailboxId: string): Promise<MailboxConfig>;
  /** The mailbox's open cycle (an interrupted one is resumed) or a new one. */
  startCycle(mailboxId: string): Promise<{ cycleId: string; startedAt: string; resumed: boolean }>;
  pullExchange(step: TypeStep): Promise<{ pulled: number }>;
  pullCrm(step: TypeStep): Promise<{ pulled: number }>;
  plan(step: TypeStep): Promise<{ operations: number; conflicts: number }>;
  applyBatch(step: TypeStep & { limit: number }): Promise<ApplyResult>;
  commitType(step: TypeStep): Promise<CommitResult>;
  /** Files the mail dropped into the drop folders, at most `limit` messages (activities/email-filing.ts). */
  fileMail(ref: CycleRef & { limit: number }): Promise<{ filed: number; unresolved: number; recordsCreated: number; workRemaining: boolean }>;
  finishCycle(ref: CycleRef & { outcome: 'completed' | 'interrupted' | 'failed'; detail?: string }): Promise<CycleSummary>;
}
