/**
 * The CRM as the sync sees it. The built-in PostgreSQL CRM implements it; a team with its own CRM implements
 * the same interface. Writes carry the id of the mailbox making them so the change feed can leave out echoes,
 * and creates are idempotent on the id the sync chose.
 */
import type { CrmContactFields } from '../../domain/contact';
import type { CrmScope } from '../../domain/policy';

export interface CrmUser {
  id: string;
  email: string;
  displayName: string;
  workgroup: string | null;
  timeZone: string;
}

export interface CrmContactChange {
  id: string;
  /** Deleted, or no longer in the feed's scope (owned by the mailbox's user, their workgroup, …). */
  removed: boolean;
  /** With `removed`: the contact still exists but left the scope (not a delete). */
  leftScope?: boolean;
  /** With `removed`: the row itself is gone (a hard DELETE or TRUNCATE, or missing after a restore), not marked deleted. */
  hardDeleted?: boolean;
  /** The row version (CRM writes by the sync are conditional on it); absent for a row that is gone without a tombstone. */
  version?: string;
  fields: CrmContactFields | null;
  updatedAt: string;
}

export interface CrmFeedPage {
  changes: CrmContactChange[];
  /** Opaque position to pass as `after` next time. */
  watermark: string;
}

/** A unit of work: CRM writes and the sync's own bookkeeping commit together when the CRM lives in the same database. */
export interface CrmStore {
  findUserByEmail(email: string): Promise<CrmUser | undefined>;
  getUser(id: string): Promise<CrmUser | undefined>;
  /** `scope` (default 'owned'): which contacts are in scope besides those already linked (domain/policy.ts CrmScope). */
  contactChanges(args: { ownerId: string; mailboxId: string; after: string | null; scope?: CrmScope }): Promise<CrmFeedPage>;
}
