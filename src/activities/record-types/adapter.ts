/**
 * What the cycle needs to know about one record type. The cycle (pull, plan, apply, commit) is the same for
 * contacts, events and tasks; each type brings its Graph resources, its CRM access and its field mapper here.
 *
 * Exchange writes are described, not performed: the adapter turns a record into a Graph request
 * (`exchangeRequests`) and reads the answers (`itemOf`, `foundOf`); the cycle sends them through JSON batches
 * within the mailbox's limits, adds nothing type-specific, and retries only the operations that failed.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import type { RecordParser } from '../../domain/planning';
import type { CrmScope } from '../../domain/policy';
import type { Result } from '../../domain/result';
import type { RecordType } from '../../domain/status';
import type { GraphSubRequest } from '../exchange/batch';
import type { CrmPrecondition, CrmWriteGuard } from '../crm/postgres-crm';

export type { GraphSubRequest } from '../exchange/batch';

export interface ExchangeDeltaItem {
  id: string;
  removed: boolean;
  changeKey: string | null;
  /** The item as Graph returned it (annotations stripped); null when removed. */
  payload: Record<string, unknown> | null;
}

export interface ExchangeDeltaPage {
  items: ExchangeDeltaItem[];
  nextLink?: string;
  deltaLink?: string;
}

/** An Exchange item as a write or read answered it. */
export interface ExchangeItem {
  id: string;
  changeKey: string | null;
  /** Annotations stripped. */
  payload: Record<string, unknown>;
  /** The folder / calendar / list holding it, when the answer says. */
  containerId?: string;
}

/**
 * What cxsync writes on every item it creates in Exchange: the operation's sync id (a retried create finds its
 * first attempt by it) and the CRM record's id (a full round relinks an item whose mapping was lost).
 * Contacts carry them as single-value extended properties; events use transactionId, To Do tasks
 * linkedResources.externalId — each adapter chooses.
 */
export interface SyncMarker {
  syncId: string;
  crmId: string;
}

export interface CrmFeedItem {
  id: string;
  removed: boolean;
  /** With `removed`: the record still exists but left the mailbox's scope (reassigned, cancelled): not a delete. */
  leftScope?: boolean;
  /** With `removed`: the row is gone (hard-deleted, or missing after a restore) rather than marked deleted; a delete all the same. */
  hardDeleted?: boolean;
  /** The row version a conditional write compares with (the built-in CRM: change_txid). */
  version?: string;
  payload: Record<string, unknown> | null;
  updatedAt: string;
}

export interface ContainerSettings {
  /** Display name of the dedicated folder / calendar / list. */
  name: string;
  /** Use the mailbox's default folder / calendar / list instead of `name`. */
  useDefault?: boolean;
}

/** Graph requests for single items; `containerId` is what ensureContainer returned. */
export interface ExchangeRequests<R> {
  /** `category`: the policy's marking category, or null. */
  create(upn: string, containerId: string, record: R, marker: SyncMarker, category: string | null): GraphSubRequest;
  /** A list request whose answer names the item carrying this sync id, if any (see foundOf). */
  findBySyncId(upn: string, containerId: string, syncId: string): GraphSubRequest;
  /**
   * `changeKey`: the version the update is based on (If-Match), or null to write unconditionally. `previous`:
   * what the item holds as far as the plan knows; when given, only the properties that differ are sent.
   */
  update(upn: string, containerId: string, id: string, record: R, changeKey: string | null, previous?: R): GraphSubRequest;
  delete(upn: string, containerId: string, id: string, changeKey: string | null): GraphSubRequest;
  get(upn: string, containerId: string, id: string): GraphSubRequest;
}

export interface RecordTypeAdapter<R> extends RecordParser<R> {
  recordType: RecordType;
  /** The Graph client the type's requests are sent with (JSON batches, through the mailbox's gate). */
  graph: Client;

  /** The folder, calendar or list this type syncs with; created on first use. */
  ensureContainer(upn: string, container: ContainerSettings): Promise<string>;
  /** First page of a new round when `link` is undefined; otherwise the saved nextLink or deltaLink. */
  deltaPage(upn: string, containerId: string, link: string | undefined, pageSize?: number): Promise<ExchangeDeltaPage>;
  /**
   * False when a delta item lacks properties the mapper reads: Graph may send an updated item with only the
   * changed properties. The cycle then reads the item in full.
   */
  isComplete(payload: Record<string, unknown>): boolean;
  /** Every item of the container that carries a sync marker (all pages); used when a full round starts. */
  markedItems(upn: string, containerId: string): Promise<Array<{ id: string; marker: Partial<SyncMarker> }>>;
  exchangeRequests: ExchangeRequests<R>;
  /** The item in the answer to create, update or get. */
  itemOf(body: unknown): ExchangeItem;
  /** The item in the answer to findBySyncId (for that sync id: a list answer may hold others), if any. */
  foundOf(body: unknown, syncId: string): ExchangeItem | undefined;
  /**
   * Optional, for lookups Graph can only answer page by page (To Do: no filter on linked resources): when
   * `foundOf` found nothing in this answer (to findBySyncId or to an earlier page), the request for the next
   * page; undefined when this answer was the last page, so the item is not there and the create goes ahead.
   * Without it, one answer is the whole lookup (contacts and events filter on the sync id).
   */
  findNextPage?(body: unknown, syncId: string): GraphSubRequest | undefined;
  /**
   * Optional: writes an item needs beyond its own request, run after its create or update succeeded and before
   * the mapping is saved (events: a series' moved and cancelled occurrences, which Graph cannot take in the
   * master's request). Returns the item as it now is. Idempotent: a retried operation runs it again.
   */
  afterWrite?(upn: string, containerId: string, item: ExchangeItem, record: R, kind: 'create' | 'update'): Promise<ExchangeItem>;

  /**
   * CRM changes after the watermark: records in `scope` (default 'owned': those `ownerId` owns) and records
   * linked to the mailbox (one that left the scope arrives as removed). Events and tasks serve 'owned' only
   * (the policy refuses the other filters for them).
   */
  crmChanges(args: { ownerId: string; mailboxId: string; after: string | null; scope?: CrmScope }): Promise<{ changes: CrmFeedItem[]; watermark: string }>;
  /** Which of these CRM ids name a live (not deleted) record. */
  crmExisting(ids: string[]): Promise<Set<string>>;
  /**
   * Checked in a CRM write's transaction before the write: the record still exists, is still in the mailbox's
   * scope and still has the version the plan saw. Locks the row until the transaction ends.
   */
  crmPrecondition(tx: Transaction<Database>, id: string, guard: CrmWriteGuard): Promise<CrmPrecondition>;
  /** Un-deletes a deleted CRM record (a restore under keep-updated); false when there is none to un-delete. */
  crmUndelete(tx: Transaction<Database>, mailboxId: string, id: string): Promise<boolean>;
  /** The watermark moved back so the next read sees changes from `version` on (see postgres-crm.ts rewindWatermark). */
  crmRewind(watermark: string | null, version: string): string | null;
  /** The version the CRM gives what this transaction wrote (stored in the mapping for the next conditional write). */
  crmVersion(tx: Transaction<Database>): Promise<string>;
  /** Idempotent on `id` (the sync id). `opts.contactClass`: contacts only, the class the new contact gets. */
  createInCrm(tx: Transaction<Database>, mailboxId: string, id: string, ownerId: string, record: R, opts?: { contactClass?: string | null }): Promise<void>;
  /** False when the CRM record no longer exists. */
  updateInCrm(tx: Transaction<Database>, mailboxId: string, id: string, record: R): Promise<boolean>;
  deleteInCrm(tx: Transaction<Database>, mailboxId: string, id: string): Promise<void>;
  /** A short human label for log lines. */
  label(record: R): string;
}

export type { Result };
