/**
 * The built-in CRM's email (migration 0013_crm_email): the only module that reads or writes crm.accounts,
 * crm.leads, crm.email_activities, crm.email_links and crm.email_attachments (and crm.contacts only to find and
 * create contacts from a sender). Filing and email sync are not built yet; this is the CrmEmailStore they will use.
 *
 * Bound to a database or to the caller's transaction (`new PostgresCrmEmail(tx)`), so a filing step can commit
 * its CRM writes with its own bookkeeping. Every write sets cxsync.writer for its transaction, as the other CRM
 * writes do: the activity feed leaves out the writing mailbox's own changes.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import {
  accountFromSender,
  domainOfAddress,
  isPublicMailDomain,
  normaliseAddress,
  personName,
  resolveRecord,
  type EmailRecordType,
  type Sender,
} from '../../domain/email-records';
import type {
  AddressLookup,
  CrmEmailActivity,
  CrmEmailActivityChange,
  CrmEmailStore,
  CrmRecordMatch,
  CrmRecordRef,
  EmailActivityFields,
  EmailAttachmentInfo,
  EmailRecipient,
  LinkOutcome,
  NewEmailAttachment,
} from './crm-store';
import { feedWindow } from './postgres-crm';

type Exec = Kysely<Database> | Transaction<Database>;


const RECORD_TABLE: Record<EmailRecordType, ReturnType<typeof sql.table>> = {
  contact: sql.table('crm.contacts'),
  lead: sql.table('crm.leads'),
  account: sql.table('crm.accounts'),
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const iso = (col: ReturnType<typeof sql.ref>) => sql<string | null>`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

interface ActivityRow {
  id: string;
  owner_id: string | null;
  subject: string;
  body_text: string | null;
  body_html: string | null;
  from_address: string | null;
  from_name: string | null;
  to_recipients: EmailRecipient[];
  cc_recipients: EmailRecipient[];
  bcc_recipients: EmailRecipient[];
  sent_iso: string | null;
  received_iso: string | null;
  direction: 'incoming' | 'outgoing';
  internet_message_id: string | null;
  conversation_id: string | null;
  in_reply_to: string | null;
  sync_id: string | null;
  deleted: boolean;
  version: string;
  updated_iso: string;
}

const ACTIVITY_SELECT = sql`
  e.id::text as id, e.owner_id::text as owner_id, e.subject, e.body_text, e.body_html, e.from_address, e.from_name,
  e.to_recipients, e.cc_recipients, e.bcc_recipients,
  ${iso(sql.ref('e.sent_at'))} as sent_iso, ${iso(sql.ref('e.received_at'))} as received_iso,
  e.direction, e.internet_message_id, e.conversation_id, e.in_reply_to, e.sync_id::text as sync_id,
  e.deleted_at is not null as deleted, e.change_txid::text as version, ${iso(sql.ref('e.updated_at'))} as updated_iso`;

function toActivity(r: ActivityRow): CrmEmailActivity {
  return {
    id: r.id,
    ownerId: r.owner_id,
    subject: r.subject,
    bodyText: r.body_text,
    bodyHtml: r.body_html,
    from: r.from_address ? { address: r.from_address, name: r.from_name } : null,
    to: r.to_recipients,
    cc: r.cc_recipients,
    bcc: r.bcc_recipients,
    sentAt: r.sent_iso,
    receivedAt: r.received_iso,
    direction: r.direction,
    internetMessageId: r.internet_message_id,
    conversationId: r.conversation_id,
    inReplyTo: r.in_reply_to,
    syncId: r.sync_id,
    deleted: r.deleted,
    version: r.version,
    updatedAt: r.updated_iso,
  };
}

function recipients(list: readonly EmailRecipient[]): string {
  return JSON.stringify(list.map((x) => ({ address: x.address, name: x.name ?? null })));
}

export class PostgresCrmEmail implements CrmEmailStore {
  constructor(private readonly db: Exec) {}

  /** Runs `fn` in a transaction marked as `mailboxId`'s writes: the caller's when bound to one, else its own. */
  private async write<T>(mailboxId: string, fn: (tx: Exec) => Promise<T>): Promise<T> {
    const run = async (tx: Exec) => {
      await sql`select set_config('cxsync.writer', ${mailboxId}, true)`.execute(tx);
      return fn(tx);
    };
    if (this.db.isTransaction) return run(this.db);
    return (this.db as Kysely<Database>).transaction().execute(run);
  }

  /**
   * Candidates come from the lower(…) address indexes of 0013 (one per slot, live rows only) and the account
   * domain index; resolveRecord (domain/email-records.ts) ranks them.
   */
  async findRecordsByAddress({ address, userId, types, matchDomain = true }: { address: string; userId: string; types?: readonly EmailRecordType[]; matchDomain?: boolean }): Promise<AddressLookup> {
    const a = normaliseAddress(address);
    if (!a) return { address: null, candidates: [], resolution: { kind: 'none' } };
    const want = new Set<EmailRecordType>(types ?? ['contact', 'lead', 'account']);
    const domain = domainOfAddress(a);
    const byDomain = matchDomain && domain !== null && !isPublicMailDomain(domain);
    const parts = [];
    if (want.has('contact')) {
      parts.push(sql`
        select 'contact' as type, c.id::text as id, c.owner_id::text as owner_id, 'address' as match,
          coalesce(nullif(concat_ws(' ', c.first_name, c.last_name), ''), c.company, ${a}) as display_name, c.account_id::text as account_id
        from crm.contacts c
        where c.deleted_at is null and (lower(c.email) = ${a} or lower(c.email2) = ${a} or lower(c.email3) = ${a})`);
    }
    if (want.has('lead')) {
      parts.push(sql`
        select 'lead' as type, l.id::text as id, l.owner_id::text as owner_id, 'address' as match,
          coalesce(nullif(concat_ws(' ', l.first_name, l.last_name), ''), l.company, ${a}) as display_name, null as account_id
        from crm.leads l
        where l.deleted_at is null and (lower(l.email) = ${a} or lower(l.email2) = ${a})`);
    }
    if (want.has('account')) {
      parts.push(sql`
        select 'account' as type, x.id::text as id, x.owner_id::text as owner_id, 'address' as match, x.name as display_name, null as account_id
        from crm.accounts x
        where x.deleted_at is null and lower(x.email) = ${a}`);
      if (byDomain) {
        parts.push(sql`
          select 'account' as type, x.id::text as id, x.owner_id::text as owner_id, 'domain' as match, x.name as display_name, null as account_id
          from crm.accounts x
          where x.deleted_at is null and x.domain = ${domain} and lower(coalesce(x.email, '')) <> ${a}`);
      }
    }
    if (parts.length === 0) return { address: a, candidates: [], resolution: { kind: 'none' } };
    const r = await sql<{ type: EmailRecordType; id: string; owner_id: string | null; match: 'address' | 'domain'; display_name: string; account_id: string | null }>`
      ${sql.join(parts, sql` union all `)} order by type, id`.execute(this.db);
    const candidates: CrmRecordMatch[] = r.rows.map((x) => ({
      type: x.type,
      id: x.id,
      ownerId: x.owner_id,
      match: x.match,
      displayName: x.display_name,
      accountId: x.account_id,
    }));
    return { address: a, candidates, resolution: resolveRecord(candidates, userId) };
  }

  async createRecordFromSender({ mailboxId, id, type, ownerId, sender }: { mailboxId: string; id: string; type: EmailRecordType; ownerId: string; sender: Sender }): Promise<{ record: CrmRecordRef; created: boolean }> {
    const address = normaliseAddress(sender.address);
    if (!address) throw new Error('a record is created from a sender with an email address, and this one has none');
    return this.write(mailboxId, async (tx) => {
      // Two mailboxes filing mail from the same unknown sender at once would each create a record: creations for
      // one address (one domain for an account) take turns, and a live record the other made meanwhile is
      // returned instead of a second one. A retry of this create (same id) finds its own row first.
      const account = type === 'account' ? accountFromSender(sender) : undefined;
      const key = account?.domain ? `domain:${account.domain}` : `address:${address}`;
      await sql`select pg_advisory_xact_lock(hashtext(${`cxsync-create-from-sender:${type}:${key}`}))`.execute(tx);
      const table = RECORD_TABLE[type];
      const own = await sql<{ id: string }>`select id::text from ${table} where id = ${id}::uuid`.execute(tx);
      if (own.rows.length) return { record: { type, id }, created: false };
      const slots =
        type === 'contact' ? sql`(lower(x.email) = ${address} or lower(x.email2) = ${address} or lower(x.email3) = ${address})`
        : type === 'lead' ? sql`(lower(x.email) = ${address} or lower(x.email2) = ${address})`
        : account?.domain ? sql`(lower(x.email) = ${address} or x.domain = ${account.domain})`
        : sql`lower(x.email) = ${address}`;
      const other = await sql<{ id: string }>`select x.id::text from ${table} x where x.deleted_at is null and ${slots} order by x.created_at, x.id limit 1`.execute(tx);
      if (other.rows.length) return { record: { type, id: other.rows[0].id }, created: false };
      let inserted: { numInsertedOrUpdatedRows?: bigint };
      if (type === 'account') {
        const f = accountFromSender(sender);
        inserted = await tx.insertInto('crm.accounts').values({ id, owner_id: ownerId, name: f.name, domain: f.domain, email: f.email }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
      } else {
        const n = personName(sender);
        const row = { id, owner_id: ownerId, first_name: n.firstName, last_name: n.lastName, email: address };
        inserted =
          type === 'contact'
            ? await tx.insertInto('crm.contacts').values(row).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst()
            : await tx.insertInto('crm.leads').values({ ...row, source: 'Email' }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
      }
      return { record: { type, id }, created: Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 };
    });
  }

  async createEmailActivity({ mailboxId, syncId, fields: f }: { mailboxId: string; syncId: string; fields: EmailActivityFields }): Promise<{ id: string; created: boolean; deleted: boolean }> {
    return this.write(mailboxId, async (tx) => {
      const ins = await tx
        .insertInto('crm.email_activities')
        .values({
          owner_id: f.ownerId,
          subject: f.subject,
          body_text: f.bodyText,
          body_html: f.bodyHtml,
          from_address: f.from?.address ?? null,
          from_name: f.from?.name ?? null,
          to_recipients: recipients(f.to),
          cc_recipients: recipients(f.cc),
          bcc_recipients: recipients(f.bcc),
          sent_at: f.sentAt,
          received_at: f.receivedAt,
          direction: f.direction,
          internet_message_id: f.internetMessageId,
          conversation_id: f.conversationId,
          in_reply_to: f.inReplyTo,
          sync_id: syncId,
        })
        .onConflict((oc) => oc.column('sync_id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (ins) return { id: ins.id, created: true, deleted: false };
      // The conflict waited for the other insert to commit, so this statement's snapshot sees it.
      const old = await tx.selectFrom('crm.email_activities').select(['id', 'deleted_at']).where('sync_id', '=', syncId).executeTakeFirstOrThrow();
      return { id: old.id, created: false, deleted: old.deleted_at !== null };
    });
  }

  async findEmailActivitiesByMessageId(internetMessageId: string): Promise<Array<{ id: string; ownerId: string | null; syncId: string | null; deleted: boolean }>> {
    const r = await this.db
      .selectFrom('crm.email_activities')
      .select(['id', 'owner_id', 'sync_id', 'deleted_at'])
      .where('internet_message_id', '=', internetMessageId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return r.map((x) => ({ id: x.id, ownerId: x.owner_id, syncId: x.sync_id, deleted: x.deleted_at !== null }));
  }

  async linkEmailActivity({ mailboxId, activityId, records }: { mailboxId: string; activityId: string; records: readonly CrmRecordRef[] }): Promise<Array<{ record: CrmRecordRef; outcome: LinkOutcome }>> {
    return this.write(mailboxId, async (tx) => {
      const out: Array<{ record: CrmRecordRef; outcome: LinkOutcome }> = [];
      for (const record of records) {
        if (!UUID.test(record.id) || !(record.type in RECORD_TABLE)) {
          out.push({ record, outcome: 'missing' });
          continue;
        }
        // Inserted only while both the activity and the record are live; the pair's primary key makes a repeat a no-op.
        const r = await sql<{ inserted: boolean; live: boolean }>`
          with target as (
            select 1 from ${RECORD_TABLE[record.type]} x where x.id = ${record.id}::uuid and x.deleted_at is null
              and exists (select 1 from crm.email_activities e where e.id = ${activityId}::uuid and e.deleted_at is null)
          ), ins as (
            insert into crm.email_links (email_activity_id, record_type, record_id)
            select ${activityId}::uuid, ${record.type}, ${record.id}::uuid from target
            on conflict do nothing
            returning 1
          )
          select exists (select 1 from ins) as inserted, exists (select 1 from target) as live`.execute(tx);
        const row = r.rows[0];
        out.push({ record, outcome: row.inserted ? 'linked' : row.live ? 'already-linked' : 'missing' });
      }
      return out;
    });
  }

  async addEmailAttachment({ mailboxId, activityId, attachment: a }: { mailboxId: string; activityId: string; attachment: NewEmailAttachment }): Promise<{ id: string; created: boolean }> {
    const stored = a.content !== null;
    if (!stored && !a.skippedReason) throw new Error('an attachment stored without its content needs the reason it was skipped');
    return this.write(mailboxId, async (tx) => {
      const ins = await tx
        .insertInto('crm.email_attachments')
        .values({
          email_activity_id: activityId,
          attachment_key: a.key,
          name: a.name,
          content_type: a.contentType,
          size_bytes: a.content !== null ? a.content.byteLength : a.sizeBytes,
          is_inline: a.isInline ?? false,
          content_id: a.contentId ?? null,
          content: a.content !== null ? Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength) : null,
          skipped_reason: a.content !== null ? null : a.skippedReason,
        })
        .onConflict((oc) => oc.columns(['email_activity_id', 'attachment_key']).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (ins) return { id: ins.id, created: true };
      const old = await tx.selectFrom('crm.email_attachments').select('id').where('email_activity_id', '=', activityId).where('attachment_key', '=', a.key).executeTakeFirstOrThrow();
      return { id: old.id, created: false };
    });
  }

  async getEmailActivity(id: string): Promise<CrmEmailActivity | undefined> {
    if (!UUID.test(id)) return undefined;
    const r = await sql<ActivityRow>`select ${ACTIVITY_SELECT} from crm.email_activities e where e.id = ${id}::uuid`.execute(this.db);
    return r.rows[0] && toActivity(r.rows[0]);
  }

  /**
   * Whether each record exists and is live (not soft-deleted), with its name: what `cxsync email file` checks an
   * operator's choice against before storing it. An id that is not a UUID is 'missing'.
   */
  async recordStates(refs: readonly CrmRecordRef[]): Promise<Array<{ record: CrmRecordRef; state: 'live' | 'deleted' | 'missing'; displayName: string | null }>> {
    const out = [];
    for (const ref of refs) {
      const r = UUID.test(ref.id)
        ? (await sql<{ deleted: boolean; display_name: string | null }>`
            select x.deleted_at is not null as deleted,
              ${ref.type === 'account' ? sql`x.name` : sql`coalesce(nullif(concat_ws(' ', x.first_name, x.last_name), ''), x.company, x.email)`} as display_name
            from ${RECORD_TABLE[ref.type]} x where x.id = ${ref.id}::uuid`.execute(this.db)).rows[0]
        : undefined;
      out.push({ record: ref, state: !r ? ('missing' as const) : r.deleted ? ('deleted' as const) : ('live' as const), displayName: r?.display_name ?? null });
    }
    return out;
  }

  async emailLinks(activityId: string): Promise<CrmRecordRef[]> {
    const r = await this.db.selectFrom('crm.email_links').select(['record_type', 'record_id']).where('email_activity_id', '=', activityId).orderBy('record_type').orderBy('record_id').execute();
    return r.map((x) => ({ type: x.record_type, id: x.record_id }));
  }

  async emailAttachments(activityId: string): Promise<EmailAttachmentInfo[]> {
    const r = await this.db
      .selectFrom('crm.email_attachments')
      .select(['id', 'attachment_key', 'name', 'content_type', 'size_bytes', 'is_inline', 'content_id', 'skipped_reason'])
      .where('email_activity_id', '=', activityId)
      .orderBy('created_at')
      .orderBy('attachment_key')
      .execute();
    return r.map((x) => ({
      id: x.id,
      key: x.attachment_key,
      name: x.name,
      contentType: x.content_type,
      sizeBytes: Number(x.size_bytes),
      isInline: x.is_inline,
      contentId: x.content_id,
      skippedReason: x.skipped_reason,
    }));
  }

  /** The stored bytes of an attachment; null for a skipped one's placeholder (or no such attachment). */
  async attachmentContent(attachmentId: string): Promise<Buffer | null> {
    const r = await this.db.selectFrom('crm.email_attachments').select('content').where('id', '=', attachmentId).executeTakeFirst();
    return r?.content ?? null;
  }

  /**
   * Email activities of `ownerId` changed since `after`, ordered by transaction id, read below
   * pg_snapshot_xmin as contactChanges is (postgres-crm.ts): a late commit never lands behind the watermark, and
   * the mailbox's own writes (cxsync.writer) are left out. Adding or removing an attachment re-stamps its
   * activity (0013's trigger); a new link does not (links do not change the message). Activities this mailbox
   * has mapped (sync.email_sync_map of 0015, the email sync's map) are read whoever owns them, so a
   * reassigned one arrives as left scope. Hard deletes come from crm.tombstone in the same window; a full read
   * (`after` null) reports mapped activities without a row.
   */
  async emailActivityChanges({ ownerId, mailboxId, after }: { ownerId: string; mailboxId: string; after: string | null }): Promise<{ changes: CrmEmailActivityChange[]; watermark: string }> {
    const upper = (await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db)).rows[0].xmin;
    const mapped = (alias: string) => sql`exists (select 1 from sync.email_sync_map m where m.mailbox_id = ${mailboxId} and m.activity_id = ${sql.ref(alias)})`;
    const rows = await sql<ActivityRow & { in_scope: boolean }>`
      select ${ACTIVITY_SELECT}, e.owner_id is not distinct from ${ownerId}::uuid as in_scope
      from crm.email_activities e
      where ${feedWindow(sql`e`, after, upper, mailboxId)}
        and (e.owner_id = ${ownerId}::uuid or ${mapped('e.id')})
      order by e.change_txid, e.id`.execute(this.db);
    const changes: CrmEmailActivityChange[] = rows.rows.map((r) => {
      const leftScope = !r.deleted && !r.in_scope;
      const removed = r.deleted || leftScope;
      return { id: r.id, removed, ...(leftScope ? { leftScope } : {}), version: r.version, activity: removed ? null : toActivity(r), updatedAt: r.updated_iso };
    });
    if (after === null) {
      const gone = await sql<{ id: string }>`
        select distinct m.activity_id::text as id from sync.email_sync_map m
        where m.mailbox_id = ${mailboxId}
          and not exists (select 1 from crm.email_activities e where e.id = m.activity_id)
        order by 1`.execute(this.db);
      for (const g of gone.rows) changes.push({ id: g.id, removed: true, hardDeleted: true, activity: null, updatedAt: new Date().toISOString() });
    } else {
      const gone = await sql<{ id: string; change_txid: string; deleted_iso: string }>`
        select last.id::text as id, last.change_txid::text as change_txid, ${iso(sql.ref('last.deleted_at'))} as deleted_iso
        from (
          select distinct on (t.id) t.id, t.owner_id, t.change_txid, t.changed_by, t.deleted_at
          from crm.tombstone t
          where t.table_name = 'email_activities' and t.change_txid >= ${after}::xid8 and t.change_txid < ${upper}::xid8
          order by t.id, t.change_txid desc
        ) last
        where last.changed_by is distinct from ${mailboxId}
          and (last.owner_id = ${ownerId}::uuid or ${mapped('last.id')})
          and not exists (select 1 from crm.email_activities e where e.id = last.id)
        order by last.change_txid, last.id`.execute(this.db);
      for (const g of gone.rows) changes.push({ id: g.id, removed: true, hardDeleted: true, version: g.change_txid, activity: null, updatedAt: g.deleted_iso });
    }
    return { changes, watermark: upper };
  }
}
