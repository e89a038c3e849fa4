/**
 * The sync schema's side of email filing (0014_email_filing): drop folders and their delta links, what was
 * filed, the unresolved list with operators' decisions, and exclusions. The only module reading or writing
 * those tables; the activity (activities/email-filing.ts) and the CLI (client/email.ts) go through it.
 */
import { sql } from 'kysely';
import type { CrmRecordRef } from '../activities/crm/crm-store';
import type { FiledAs, FilingRole, FolderRole } from '../domain/email-filing';
import { normaliseAddress, normaliseDomain } from '../domain/email-records';
import type { Db } from './connection';

export interface DropFolderRow {
  role: FolderRole;
  folderName: string;
  folderId: string;
  deltaLink: string | null;
  rescannedAt: Date | null;
  /** Inbox and Sent Items: messages received before this are never filed as replies. */
  since: Date;
}

/** What an operator decided for an unresolved message, carried out by the mailbox's next cycle. */
export type FilingDecision = { file: CrmRecordRef[] } | { create: FilingRole } | { ignore: true };

export interface UnresolvedEntry extends NewUnresolved {
  id: string;
  mailboxId: string;
  decision: FilingDecision | null;
  decidedBy: string | null;
  since: string;
  /** When a cycle last looked at the message (listed it, or listed it again). */
  checkedAt: string;
}

export interface NewUnresolved {
  messageId: string;
  role: FiledAs;
  internetMessageId: string | null;
  subject: string;
  senderAddress: string | null;
  senderName: string | null;
  receivedAt: string | null;
  reason: string;
  candidates: CrmRecordRef[];
}

export interface ExclusionRow {
  id: string;
  /** Null: every mailbox. */
  mailboxId: string | null;
  kind: 'address' | 'domain';
  value: string;
  addedBy: string | null;
}

export class EmailFilingStore {
  constructor(private readonly db: Db) {}

  async dropFolders(mailboxId: string): Promise<DropFolderRow[]> {
    const rows = await this.db.selectFrom('sync.mail_folder').selectAll().where('mailbox_id', '=', mailboxId).execute();
    return rows.map((r) => ({ role: r.role, folderName: r.folder_name, folderId: r.folder_id, deltaLink: r.delta_link, rescannedAt: r.rescanned_at, since: r.since }));
  }

  /** A folder (re)resolved: a new folder or a renamed one starts a new delta round and a re-scan. */
  async setDropFolder(mailboxId: string, role: FolderRole, folderName: string, folderId: string): Promise<void> {
    await this.db
      .insertInto('sync.mail_folder')
      .values({ mailbox_id: mailboxId, role, folder_name: folderName, folder_id: folderId, delta_link: null, rescanned_at: null })
      .onConflict((oc) => oc.columns(['mailbox_id', 'role']).doUpdateSet({ folder_name: folderName, folder_id: folderId, delta_link: null, rescanned_at: null }))
      .execute();
  }

  async saveRound(mailboxId: string, role: FolderRole, deltaLink: string, rescanned: boolean): Promise<void> {
    await this.db
      .updateTable('sync.mail_folder')
      .set({ delta_link: deltaLink, ...(rescanned ? { rescanned_at: new Date() } : {}) })
      .where('mailbox_id', '=', mailboxId)
      .where('role', '=', role)
      .execute();
  }

  /** The messages of `ids` already filed from the folder of `role` (or settled: an activity deleted in the CRM). */
  async filed(mailboxId: string, role: FiledAs, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('sync.mail_filed')
      .select('message_id')
      .where('mailbox_id', '=', mailboxId)
      .where('role', '=', role)
      .where('message_id', 'in', [...ids])
      .execute();
    return new Set(rows.map((r) => r.message_id));
  }

  /** The message is filed: recorded, and off the unresolved list, in one transaction. */
  async markFiled(mailboxId: string, messageId: string, role: FiledAs, activityId: string | null, thread: { conversationId: string | null; internetMessageId: string | null }): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('sync.mail_filed')
        .values({ mailbox_id: mailboxId, message_id: messageId, role, activity_id: activityId, conversation_id: thread.conversationId, internet_message_id: thread.internetMessageId })
        .onConflict((oc) => oc.columns(['mailbox_id', 'message_id', 'role']).doUpdateSet({ activity_id: activityId }))
        .execute();
      await tx.deleteFrom('sync.email_unresolved').where('mailbox_id', '=', mailboxId).where('message_id', '=', messageId).where('role', '=', role).execute();
    });
  }

  /** An operator chose to leave the message unfiled: settled (a re-scan skips it), and off the list. */
  async markIgnored(mailboxId: string, messageId: string, role: FiledAs): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('sync.mail_filed')
        .values({ mailbox_id: mailboxId, message_id: messageId, role, activity_id: null, conversation_id: null, internet_message_id: null })
        .onConflict((oc) => oc.columns(['mailbox_id', 'message_id', 'role']).doNothing())
        .execute();
      await tx.deleteFrom('sync.email_unresolved').where('mailbox_id', '=', mailboxId).where('message_id', '=', messageId).where('role', '=', role).execute();
    });
  }

  /**
   * Listed, or listed again with the new reason. Listing again clears an operator's decision: it was carried out
   * (decisions go first in a cycle) and could not file the message (its records were deleted meanwhile), so the
   * operator decides again instead of the same attempt repeating every cycle.
   */
  async addUnresolved(mailboxId: string, u: NewUnresolved): Promise<void> {
    const row = {
      mailbox_id: mailboxId,
      message_id: u.messageId,
      role: u.role,
      internet_message_id: u.internetMessageId,
      subject: u.subject,
      sender_address: u.senderAddress,
      sender_name: u.senderName,
      received_at: u.receivedAt ? new Date(u.receivedAt) : null,
      reason: u.reason,
      candidates: JSON.stringify(u.candidates),
    };
    await this.db
      .insertInto('sync.email_unresolved')
      .values(row)
      .onConflict((oc) => oc.columns(['mailbox_id', 'message_id', 'role']).doUpdateSet({ reason: u.reason, candidates: row.candidates, decision: null, decided_by: null, updated_at: new Date() }))
      .execute();
  }

  async removeUnresolved(mailboxId: string, messageId: string, role: FiledAs): Promise<void> {
    await this.db.deleteFrom('sync.email_unresolved').where('mailbox_id', '=', mailboxId).where('message_id', '=', messageId).where('role', '=', role).execute();
  }

  /** The unresolved list: one mailbox's, or every mailbox's (mailboxId undefined); oldest first. */
  async unresolved(mailboxId?: string, opts: { decided?: boolean } = {}): Promise<UnresolvedEntry[]> {
    let q = this.db.selectFrom('sync.email_unresolved').selectAll();
    if (mailboxId !== undefined) q = q.where('mailbox_id', '=', mailboxId);
    if (opts.decided !== undefined) q = q.where('decision', opts.decided ? 'is not' : 'is', null);
    const rows = await q.orderBy('id').execute();
    return rows.map((r) => ({
      id: String(r.id),
      mailboxId: r.mailbox_id,
      messageId: r.message_id,
      role: r.role,
      internetMessageId: r.internet_message_id,
      subject: r.subject,
      senderAddress: r.sender_address,
      senderName: r.sender_name,
      receivedAt: r.received_at ? r.received_at.toISOString() : null,
      reason: r.reason,
      candidates: (r.candidates ?? []) as CrmRecordRef[],
      decision: (r.decision ?? null) as FilingDecision | null,
      decidedBy: r.decided_by,
      since: r.created_at.toISOString(),
      checkedAt: r.updated_at.toISOString(),
    }));
  }

  async getUnresolved(id: string): Promise<UnresolvedEntry | undefined> {
    if (!/^\d{1,18}$/.test(id)) return undefined;
    const r = await this.db.selectFrom('sync.email_unresolved').select('mailbox_id').where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    return (await this.unresolved(r.mailbox_id)).find((e) => e.id === id);
  }

  async decide(id: string, decision: FilingDecision, by: string): Promise<boolean> {
    const r = await this.db
      .updateTable('sync.email_unresolved')
      .set({ decision: JSON.stringify(decision), decided_by: by, updated_at: new Date() })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * Filed messages of the mailbox in these conversations (a reply's thread), with their activity and Internet
   * message id; at most a few per conversation in practice.
   */
  async filedInConversations(mailboxId: string, conversationIds: readonly string[]): Promise<Array<{ conversationId: string; activityId: string; internetMessageId: string | null }>> {
    if (conversationIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('sync.mail_filed')
      .select(['conversation_id', 'activity_id', 'internet_message_id'])
      .where('mailbox_id', '=', mailboxId)
      .where('conversation_id', 'in', [...conversationIds])
      .where('activity_id', 'is not', null)
      .execute();
    return rows.map((r) => ({ conversationId: r.conversation_id!, activityId: r.activity_id!, internetMessageId: r.internet_message_id }));
  }

  // ---- exclusions ----

  /** Exclusions that apply to a mailbox: its own and every mailbox's. */
  async exclusionsFor(mailboxId: string): Promise<ExclusionRow[]> {
    const rows = await this.db
      .selectFrom('sync.email_exclusion')
      .selectAll()
      .where((eb) => eb.or([eb('mailbox_id', '=', mailboxId), eb('mailbox_id', 'is', null)]))
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: String(r.id), mailboxId: r.mailbox_id, kind: r.kind, value: r.value, addedBy: r.added_by }));
  }

  async allExclusions(): Promise<ExclusionRow[]> {
    const rows = await this.db.selectFrom('sync.email_exclusion').selectAll().orderBy('id').execute();
    return rows.map((r) => ({ id: String(r.id), mailboxId: r.mailbox_id, kind: r.kind, value: r.value, addedBy: r.added_by }));
  }

  /**
   * Adds an exclusion (normalised; adding it again is a no-op) and closes the open unresolved entries it
   * covers with an `ignore` decision, so they leave the list at the next cycle. Throws for a value that is not
   * an address or domain.
   */
  async addExclusion(e: { mailboxId: string | null; kind: 'address' | 'domain'; value: string; addedBy: string }): Promise<{ value: string; added: boolean; ignored: number }> {
    const value = e.kind === 'address' ? normaliseAddress(e.value) : normaliseDomain(e.value.replace(/^@/, ''));
    if (!value) throw new Error(e.kind === 'address' ? `${e.value} is not an email address (such as anna@contoso.com)` : `${e.value} is not a domain (such as contoso.com)`);
    return this.db.transaction().execute(async (tx) => {
      const ins = await tx
        .insertInto('sync.email_exclusion')
        .values({ mailbox_id: e.mailboxId, kind: e.kind, value, added_by: e.addedBy })
        .onConflict((oc) => oc.expression(sql`coalesce(mailbox_id, ''), kind, value`).doNothing())
        .executeTakeFirst();
      const covers =
        e.kind === 'address'
          ? sql<boolean>`lower(sender_address) = ${value}`
          : sql<boolean>`(split_part(lower(sender_address), '@', 2) = ${value} or split_part(lower(sender_address), '@', 2) like ${`%.${value}`})`;
      const upd = await sql`
        update sync.email_unresolved set decision = ${JSON.stringify({ ignore: true })}::jsonb, decided_by = ${e.addedBy}, updated_at = now()
        where decision is null and ${covers} ${e.mailboxId ? sql`and mailbox_id = ${e.mailboxId}` : sql``}`.execute(tx);
      return { value, added: Number(ins.numInsertedOrUpdatedRows ?? 0) > 0, ignored: Number(upd.numAffectedRows ?? 0) };
    });
  }

  async removeExclusion(e: { mailboxId: string | null; kind: 'address' | 'domain'; value: string }): Promise<boolean> {
    const value = (e.kind === 'address' ? normaliseAddress(e.value) : normaliseDomain(e.value.replace(/^@/, ''))) ?? e.value;
    const r = await sql`delete from sync.email_exclusion where coalesce(mailbox_id, '') = ${e.mailboxId ?? ''} and kind = ${e.kind} and value = ${value}`.execute(this.db);
    return Number(r.numAffectedRows ?? 0) > 0;
  }
}
