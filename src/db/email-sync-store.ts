/**
 * The sync schema's side of email sync (0015_email_sync): the mailbox's sync folder with its delta link and the
 * CRM email feed's watermark, and the map between the folder's messages and CRM email activities. The only
 * module writing those tables; it also reads sync.mail_filed (owned by email-filing-store.ts), to tell which
 * activities this mailbox filed from a drop folder.
 */
import { sql } from 'kysely';
import type { Db } from './connection';
import type { EmailSyncState } from './schema';
import type { UploadProgress } from '../activities/exchange/mail-api';

export interface SyncFolderRow {
  folderName: string;
  folderId: string;
  deltaLink: string | null;
  rescannedAt: Date | null;
  crmWatermark: string | null;
  crmWatermarkOrigin: string | null;
}

/** An upload session cut short while a CRM attachment went to its message: the next attempt goes on from it. */
export interface PendingUpload {
  attachmentId: string;
  progress: UploadProgress;
}

export interface SyncMapRow {
  id: string;
  activityId: string;
  /** Null while a CRM-created message is being created (its sync id already chosen). */
  messageId: string | null;
  origin: 'crm' | 'exchange';
  syncId: string | null;
  state: EmailSyncState;
  /** The message's attachments are all carried across (or it has none to carry). */
  complete: boolean;
  /** CRM attachment ids handled so far (added to the message, or skipped and logged). */
  attachmentsDone: string[];
  upload: PendingUpload | null;
}

type RawRow = {
  id: string;
  activity_id: string;
  message_id: string | null;
  origin: 'crm' | 'exchange';
  sync_id: string | null;
  state: EmailSyncState;
  complete: boolean;
  attachments_done: string[];
  upload: unknown;
};

const toRow = (r: RawRow): SyncMapRow => ({
  id: String(r.id),
  activityId: r.activity_id,
  messageId: r.message_id,
  origin: r.origin,
  syncId: r.sync_id,
  state: r.state,
  complete: r.complete,
  attachmentsDone: r.attachments_done ?? [],
  upload: (r.upload ?? null) as PendingUpload | null,
});

const COLUMNS = ['id', 'activity_id', 'message_id', 'origin', 'sync_id', 'state', 'complete', 'attachments_done', 'upload'] as const;

export class EmailSyncStore {
  constructor(private readonly db: Db) {}

  async folder(mailboxId: string): Promise<SyncFolderRow | undefined> {
    const r = await this.db.selectFrom('sync.email_sync_folder').selectAll().where('mailbox_id', '=', mailboxId).executeTakeFirst();
    if (!r) return undefined;
    return {
      folderName: r.folder_name,
      folderId: r.folder_id,
      deltaLink: r.delta_link,
      rescannedAt: r.rescanned_at,
      crmWatermark: r.crm_watermark,
      crmWatermarkOrigin: r.crm_watermark_origin,
    };
  }

  /**
   * The folder (re)resolved: a new or renamed folder starts a new delta round and a re-scan. The CRM watermark
   * stays: what the feed delivered was carried to the old folder, and the map still knows those messages.
   */
  async setFolder(mailboxId: string, folderName: string, folderId: string): Promise<void> {
    await this.db
      .insertInto('sync.email_sync_folder')
      .values({ mailbox_id: mailboxId, folder_name: folderName, folder_id: folderId, delta_link: null, rescanned_at: null, crm_watermark: null, crm_watermark_origin: null })
      .onConflict((oc) => oc.column('mailbox_id').doUpdateSet({ folder_name: folderName, folder_id: folderId, delta_link: null, rescanned_at: null, updated_at: new Date() }))
      .execute();
  }

  async saveRound(mailboxId: string, deltaLink: string, rescanned: boolean): Promise<void> {
    await this.db
      .updateTable('sync.email_sync_folder')
      .set({ delta_link: deltaLink, updated_at: new Date(), ...(rescanned ? { rescanned_at: new Date() } : {}) })
      .where('mailbox_id', '=', mailboxId)
      .execute();
  }

  /** Saved with the origin taken before the read it ends (feed-guard.ts), so a restore in between is caught next time. */
  async saveWatermark(mailboxId: string, watermark: string, origin: string): Promise<void> {
    await this.db
      .updateTable('sync.email_sync_folder')
      .set({ crm_watermark: watermark, crm_watermark_origin: origin, updated_at: new Date() })
      .where('mailbox_id', '=', mailboxId)
      .execute();
  }

  /** Map rows of these activities, by activity id. */
  async byActivity(mailboxId: string, activityIds: readonly string[]): Promise<Map<string, SyncMapRow[]>> {
    const out = new Map<string, SyncMapRow[]>();
    if (activityIds.length === 0) return out;
    const rows = await this.db.selectFrom('sync.email_sync_map').select(COLUMNS).where('mailbox_id', '=', mailboxId).where('activity_id', 'in', [...activityIds]).orderBy('id').execute();
    for (const r of rows) {
      const row = toRow(r as RawRow);
      out.set(row.activityId, [...(out.get(row.activityId) ?? []), row]);
    }
    return out;
  }

  /** Map rows of these messages (immutable ids), by message id. */
  async byMessage(mailboxId: string, messageIds: readonly string[]): Promise<Map<string, SyncMapRow>> {
    const out = new Map<string, SyncMapRow>();
    if (messageIds.length === 0) return out;
    const rows = await this.db.selectFrom('sync.email_sync_map').select(COLUMNS).where('mailbox_id', '=', mailboxId).where('message_id', 'in', [...messageIds]).execute();
    for (const r of rows) out.set(r.message_id!, toRow(r as RawRow));
    return out;
  }

  async bySyncId(mailboxId: string, syncId: string): Promise<SyncMapRow | undefined> {
    const r = await this.db.selectFrom('sync.email_sync_map').select(COLUMNS).where('mailbox_id', '=', mailboxId).where('sync_id', '=', syncId).executeTakeFirst();
    return r && toRow(r as RawRow);
  }

  /** CRM-created rows an earlier attempt left unfinished: the message not created (or its id not recorded), or attachments still to carry. */
  async unfinished(mailboxId: string): Promise<SyncMapRow[]> {
    const rows = await this.db
      .selectFrom('sync.email_sync_map')
      .select(COLUMNS)
      .where('mailbox_id', '=', mailboxId)
      .where('origin', '=', 'crm')
      .where('complete', '=', false)
      .where('state', '=', 'in-folder')
      .orderBy('id')
      .execute();
    return rows.map((r) => toRow(r as RawRow));
  }

  /**
   * The row of a message about to be created from a CRM activity, written before the Graph create: `inserted`
   * false means an earlier attempt got this far, and may have created the message.
   */
  async planCrmCreate(mailboxId: string, activityId: string, syncId: string): Promise<{ row: SyncMapRow; inserted: boolean }> {
    const ins = await this.db
      .insertInto('sync.email_sync_map')
      .values({ mailbox_id: mailboxId, activity_id: activityId, origin: 'crm', sync_id: syncId })
      .onConflict((oc) => oc.columns(['mailbox_id', 'activity_id']).where('origin', '=', 'crm').doNothing())
      .returning(COLUMNS)
      .executeTakeFirst();
    if (ins) return { row: toRow(ins as RawRow), inserted: true };
    const old = await this.db.selectFrom('sync.email_sync_map').select(COLUMNS).where('mailbox_id', '=', mailboxId).where('activity_id', '=', activityId).where('origin', '=', 'crm').executeTakeFirstOrThrow();
    return { row: toRow(old as RawRow), inserted: false };
  }

  /**
   * A message the user placed in the folder, now an activity. A row already there for it (an earlier attempt)
   * is returned as it is, so its progress counts.
   */
  async addPlaced(mailboxId: string, activityId: string, messageId: string): Promise<SyncMapRow> {
    const ins = await this.db
      .insertInto('sync.email_sync_map')
      .values({ mailbox_id: mailboxId, activity_id: activityId, message_id: messageId, origin: 'exchange' })
      .onConflict((oc) => oc.columns(['mailbox_id', 'message_id']).doNothing())
      .returning(COLUMNS)
      .executeTakeFirst();
    if (ins) return toRow(ins as RawRow);
    return (await this.byMessage(mailboxId, [messageId])).get(messageId)!;
  }

  async setMessage(rowId: string, messageId: string): Promise<void> {
    await this.db.updateTable('sync.email_sync_map').set({ message_id: messageId, updated_at: new Date() }).where('id', '=', rowId).execute();
  }

  async setState(rowId: string, state: EmailSyncState): Promise<void> {
    await this.db.updateTable('sync.email_sync_map').set({ state, updated_at: new Date() }).where('id', '=', rowId).execute();
  }

  async attachmentDone(rowId: string, attachmentId: string): Promise<void> {
    await sql`
      update sync.email_sync_map set attachments_done = array_append(attachments_done, ${attachmentId}::text), upload = null, updated_at = now()
      where id = ${rowId} and not (${attachmentId}::text = any(attachments_done))`.execute(this.db);
  }

  async setUpload(rowId: string, upload: PendingUpload | null): Promise<void> {
    await this.db.updateTable('sync.email_sync_map').set({ upload: upload === null ? null : JSON.stringify(upload), updated_at: new Date() }).where('id', '=', rowId).execute();
  }

  async complete(rowId: string): Promise<void> {
    await this.db.updateTable('sync.email_sync_map').set({ complete: true, upload: null, updated_at: new Date() }).where('id', '=', rowId).execute();
  }

  /** The activities of `ids` this mailbox filed from a drop folder (sync.mail_filed): their message is in the mailbox already. */
  async filedHere(mailboxId: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('sync.mail_filed').select('activity_id').distinct().where('mailbox_id', '=', mailboxId).where('activity_id', 'in', [...ids]).execute();
    return new Set(rows.flatMap((r) => (r.activity_id ? [r.activity_id] : [])));
  }
}
