/** What an operator sees about a mailbox: small, JSON-safe (it travels through Temporal queries and continue-as-new). */

export const RECORD_TYPES = ['contact', 'event', 'task'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];
/** What can stop on its own (a refused permission): a record type, or email filing. */
export type SyncArea = RecordType | 'email';

export interface SideCounts {
  created: number;
  updated: number;
  deleted: number;
}

export interface TypeSummary {
  pulled: { exchange: number; crm: number };
  exchange: SideCounts;
  crm: SideCounts;
  conflicts: number;
  errors: number;
}

export type CycleOutcome = 'completed' | 'interrupted' | 'failed';

export interface CycleSummary {
  cycleId: string;
  start: string;
  end: string | null;
  outcome: CycleOutcome;
  /** Why the cycle did not complete, when it did not. */
  detail?: string;
  types: Partial<Record<RecordType, TypeSummary>>;
  /** Mail filed from the drop folders this cycle (absent when nothing was filed or listed). */
  email?: EmailSummary;
  /** Email sync with the CRM Email folder this cycle (absent when nothing moved). */
  emailSync?: EmailSyncSummary;
}

export interface EmailSyncSummary {
  /** CRM email activities written to the folder as messages. */
  toExchange: number;
  /** Messages placed in the folder that became CRM email activities. */
  toCrm: number;
  /** Messages moved to Deleted Items because their activity was deleted in the CRM. */
  deletedInExchange: number;
  contactsCreated: number;
  /** Attachments kept as a placeholder or left out (over the limit, refused by the mailbox). */
  attachmentsSkipped: number;
}

export interface EmailSummary {
  filed: number;
  /** Messages added to the unresolved list (cxsync email unresolved). */
  unresolved: number;
  /** CRM records created from senders. */
  recordsCreated: number;
}

export type MailboxState = 'idle' | 'syncing' | 'paused' | 'needs-attention';

export interface MailboxStatus {
  mailbox: string;
  state: MailboxState;
  pausedReason: string | null;
  needsAttentionReason: string | null;
  lastCycle: CycleSummary | null;
  nextCycleAt: string | null;
  cyclesCompleted: number;
  /**
   * Record types stopped until an operator acts (a refused permission), with the reason; the others keep
   * syncing. Absent in statuses from workflows started before it existed.
   */
  typesNeedingAttention?: Partial<Record<SyncArea, string>>;
}

export function emptyTypeSummary(): TypeSummary {
  return {
    pulled: { exchange: 0, crm: 0 },
    exchange: { created: 0, updated: 0, deleted: 0 },
    crm: { created: 0, updated: 0, deleted: 0 },
    conflicts: 0,
    errors: 0,
  };
}

/** Failure type of an activity error that retrying cannot fix (consent revoked, mailbox gone): an operator must act. */
export const MAILBOX_NEEDS_ATTENTION = 'MailboxNeedsAttention';

/** Failure type of an error that stops one record type only (its permission was refused): the others go on. */
export const TYPE_NEEDS_ATTENTION = 'TypeNeedsAttention';
