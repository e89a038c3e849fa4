/**
 * The CRM as the sync sees it. The built-in PostgreSQL CRM implements it; a team with its own CRM implements
 * the same interface. Writes carry the id of the mailbox making them so the change feed can leave out echoes,
 * and creates are idempotent on the id the sync chose.
 */
import type { CrmContactFields } from '../../domain/contact';
import type { EmailRecordType, RecordCandidate, Resolution, Sender } from '../../domain/email-records';
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

/*
 * Email (issue 10). Filing and email sync are not built yet; these are the CRM operations they will use. A CRM
 * other than the built-in one implements CrmEmailStore next to CrmStore (the built-in one: postgres-crm-email.ts).
 * Writes carry the mailbox id, as above, so the activity feed leaves out the mailbox's own writes.
 */

export interface CrmRecordRef {
  type: EmailRecordType;
  id: string;
}

/** A record whose address (or, for an account, domain) matched; ranked by resolveRecord (domain/email-records.ts). */
export interface CrmRecordMatch extends RecordCandidate {
  displayName: string;
  /** Contacts: the account the contact belongs to. */
  accountId: string | null;
}

export interface AddressLookup {
  /** The address as compared (normalised); null when the input is not an address (then nothing matches). */
  address: string | null;
  candidates: CrmRecordMatch[];
  resolution: Resolution<CrmRecordMatch>;
}

export interface EmailRecipient {
  address: string;
  name: string | null;
}

export interface EmailActivityFields {
  ownerId: string;
  subject: string;
  bodyText: string | null;
  bodyHtml: string | null;
  from: EmailRecipient | null;
  to: EmailRecipient[];
  cc: EmailRecipient[];
  bcc: EmailRecipient[];
  /** ISO instants. */
  sentAt: string | null;
  receivedAt: string | null;
  direction: 'incoming' | 'outgoing';
  internetMessageId: string | null;
  conversationId: string | null;
  inReplyTo: string | null;
}

export interface CrmEmailActivity extends Omit<EmailActivityFields, 'ownerId'> {
  id: string;
  ownerId: string | null;
  syncId: string | null;
  deleted: boolean;
  /** change_txid: the row version. */
  version: string;
  updatedAt: string;
}

export interface EmailAttachmentInfo {
  id: string;
  key: string;
  name: string;
  contentType: string | null;
  sizeBytes: number;
  isInline: boolean;
  contentId: string | null;
  /** Null when stored; else why only this placeholder was kept (domain/email-records.ts attachmentSkipReason). */
  skippedReason: string | null;
}

/** `key`: where the attachment came from (e.g. its Graph id): adding the same key to the same activity again is a no-op. */
export type NewEmailAttachment = { key: string; name: string; contentType: string | null; isInline?: boolean; contentId?: string | null } & (
  | { content: Uint8Array }
  | { content: null; sizeBytes: number; skippedReason: string }
);

export interface CrmEmailActivityChange {
  id: string;
  /** Deleted, or no longer owned by the mailbox's user. */
  removed: boolean;
  /** With `removed`: reassigned to someone else (not a delete). */
  leftScope?: boolean;
  /** With `removed`: the row is gone (hard-deleted), not marked deleted. */
  hardDeleted?: boolean;
  version?: string;
  activity: CrmEmailActivity | null;
  updatedAt: string;
}

export type LinkOutcome = 'linked' | 'already-linked' | 'missing';

export interface CrmEmailStore {
  /**
   * Live records matching `address`: contacts by any of their three addresses, leads by either of theirs,
   * accounts by their address or (with `matchDomain`, the default) by the address's domain unless it is a public
   * mail provider's. `resolution` applies the documented order for the mailbox's user `userId`.
   */
  findRecordsByAddress(args: { address: string; userId: string; types?: readonly EmailRecordType[]; matchDomain?: boolean }): Promise<AddressLookup>;
  /** Creates a record of `type` from a sender, under the id the caller chose: idempotent on `id`. */
  createRecordFromSender(args: { mailboxId: string; id: string; type: EmailRecordType; ownerId: string; sender: Sender }): Promise<{ record: CrmRecordRef; created: boolean }>;
  /** Idempotent on `syncId`: a second create with the same sync id returns the first activity (`created` false). */
  createEmailActivity(args: { mailboxId: string; syncId: string; fields: EmailActivityFields }): Promise<{ id: string; created: boolean; deleted: boolean }>;
  /** Activities of a message (by its Internet message id), deleted ones included, e.g. filed by another mailbox. */
  findEmailActivitiesByMessageId(internetMessageId: string): Promise<Array<{ id: string; ownerId: string | null; syncId: string | null; deleted: boolean }>>;
  /** One link per (activity, record) pair whatever how often it is filed; a record that does not exist (or is deleted) is 'missing'. */
  linkEmailActivity(args: { mailboxId: string; activityId: string; records: readonly CrmRecordRef[] }): Promise<Array<{ record: CrmRecordRef; outcome: LinkOutcome }>>;
  /** Stores an attachment, or its placeholder (`content` null, with the reason). Idempotent on (activity, key). */
  addEmailAttachment(args: { mailboxId: string; activityId: string; attachment: NewEmailAttachment }): Promise<{ id: string; created: boolean }>;
  getEmailActivity(id: string): Promise<CrmEmailActivity | undefined>;
  emailLinks(activityId: string): Promise<CrmRecordRef[]>;
  emailAttachments(activityId: string): Promise<EmailAttachmentInfo[]>;
  /** The user's email activities changed since `after`, like contactChanges: commit-order safe, without the mailbox's own writes. */
  emailActivityChanges(args: { ownerId: string; mailboxId: string; after: string | null }): Promise<{ changes: CrmEmailActivityChange[]; watermark: string }>;
}
