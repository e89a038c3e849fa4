/**
 * What the cycle needs to know about one record type. The cycle (pull, plan, apply, commit) is the same for
 * contacts, events and tasks; each type brings its Graph calls, its CRM access and its field mapper here.
 */
import type { Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import type { Result } from '../../domain/result';
import type { RecordType } from '../../domain/status';

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

export interface ExchangeWriteResult {
  id: string;
  changeKey: string | null;
}

export interface CrmFeedItem {
  id: string;
  removed: boolean;
  payload: Record<string, unknown> | null;
  updatedAt: string;
}

export interface ContainerSettings {
  /** Display name of the dedicated folder / calendar / list. */
  name: string;
}

export interface RecordTypeAdapter<R> {
  recordType: RecordType;

  /** The folder, calendar or list this type syncs with; created on first use. */
  ensureContainer(upn: string, container: ContainerSettings): Promise<string>;
  /** First page of a new round when `link` is undefined; otherwise the saved nextLink or deltaLink. */
  deltaPage(upn: string, containerId: string, link: string | undefined): Promise<ExchangeDeltaPage>;
  createInExchange(upn: string, containerId: string, record: R, syncId: string): Promise<ExchangeWriteResult>;
  /** The item an earlier attempt of a create made, found by its sync marker. */
  findInExchange(upn: string, containerId: string, syncId: string): Promise<ExchangeWriteResult | undefined>;
  updateInExchange(upn: string, containerId: string, id: string, record: R): Promise<ExchangeWriteResult>;
  /** Deleting an item that is already gone succeeds. */
  deleteInExchange(upn: string, containerId: string, id: string): Promise<void>;
  fromExchange(payload: Record<string, unknown>): Result<R>;
  exchangeModifiedAt(payload: Record<string, unknown>): string | undefined;

  crmChanges(args: { ownerId: string; mailboxId: string; after: string | null }): Promise<{ changes: CrmFeedItem[]; watermark: string }>;
  fromCrm(payload: Record<string, unknown>): Result<R>;
  /** Idempotent on `id` (the sync id). */
  createInCrm(tx: Transaction<Database>, mailboxId: string, id: string, ownerId: string, record: R): Promise<void>;
  /** False when the CRM record no longer exists. */
  updateInCrm(tx: Transaction<Database>, mailboxId: string, id: string, record: R): Promise<boolean>;
  deleteInCrm(tx: Transaction<Database>, mailboxId: string, id: string): Promise<void>;
  /** A short human label for log lines. */
  label(record: R): string;
}
