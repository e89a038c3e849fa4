/**
 * The users' side of the world: people editing contacts in the CRM (plain SQL on crm.contacts, as the CRM's own
 * screens would: no cxsync.writer) and in Outlook (the emulator's admin API acts as the mailbox's user: new
 * change key, seen by the next delta). Every action tells the reference model (intent.ts) what the user meant
 * and what the user saw when doing it.
 *
 * In runs with email, users also drop copies of messages M1–M3 into the drop folders of their mailboxes (the
 * emulator's admin API, as a user dragging a received message), move them between folders, and a CRM user edits
 * or deletes a message's email activity or deletes the record it was filed to. Records the sync creates from a
 * sender carry the message's tag (the sender's name is "Mail Mn"): the contact checks leave them to the email
 * invariants (invariants.ts).
 */
import { sql } from 'kysely';
import { CONTACT_FIELDS, fromCrmContact, fromGraphContact, toCrmContact, toGraphContact, type ContactRecord, type CrmContactFields, type GraphContact } from '../../src/domain/contact';
import type { EmulatorContact } from '../../src/emulator';
import { DROP_FOLDERS, FOLDER, MAILBOXES, type DropFolder, type Mailbox, type ModelEnv } from './environment';
import { Intent, type MessageIntent, type MessageNo, type RecordIntent, type SenderKind, type Side, type Snapshot, type Value } from './intent';

export type CrmRow = Record<string, unknown> & { id: string; owner_id: string | null; last_name: string | null; deleted_at: Date | null };

/** A synced field's CRM column, as the domain mapper names it. */
export function crmColumn(field: string): string {
  const cols = toCrmContact({ [field]: '\u0001' } as ContactRecord) as unknown as Record<string, unknown>;
  const col = Object.keys(cols).find((k) => cols[k] === '\u0001');
  if (!col) throw new Error(`no CRM column for contact field ${field}`);
  return col;
}

/** The synced fields: the domain's list, less any whose CRM column this database does not have yet. */
export async function syncedFields(env: ModelEnv): Promise<string[]> {
  const r = await sql<{ c: string }>`select column_name as c from information_schema.columns where table_schema = 'crm' and table_name = 'contacts'`.execute(env.db);
  const have = new Set(r.rows.map((x) => x.c));
  return CONTACT_FIELDS.filter((f) => have.has(crmColumn(f)));
}

export const tagOf = (lastName: unknown): string => (typeof lastName === 'string' ? lastName.split(' ')[0] : '');

/** A record the sync created from the sender of message Mn (named after it: "Mail Mn"), not one a user made. */
export const isSenderTag = (tag: string): boolean => /^M[1-3]$/.test(tag);

/**
 * Who sent each message: M1 the CRM contact R1 (its address when created; every run starts with R1), M2 an
 * address the CRM does not know, M3 an address two CRM leads of a user outside both mailboxes share (ambiguous:
 * listed, never guessed). Runs with email get the two leads in their setup (World.seedMail).
 */
export const SENDERS: Record<MessageNo, { kind: SenderKind; address: string }> = {
  1: { kind: 'known', address: 'r1@example.org' },
  2: { kind: 'unknown', address: 'm2.sender@newco.example' },
  3: { kind: 'ambiguous', address: 'desk@shared.example' },
};

/** A drop folder's record types a message filed from it may be linked to (a person's folder finds the other kind of person too). */
export const FILED_TYPES: Record<DropFolder, readonly string[]> = { VAccounts: ['account'], VContacts: ['contact', 'lead'], VLeads: ['lead', 'contact'] };

export interface ActivityRow {
  id: string;
  owner_id: string | null;
  subject: string;
  deleted_at: Date | null;
  internet_message_id: string;
}

/** Unsynced Outlook properties a user sets; `otherPhones` are business phones beyond the first (the synced one). */
export const OUTLOOK_UNSYNCED = ['nickName', 'homePhones', 'birthday', 'displayName', 'otherPhones'] as const;
export type OutlookUnsynced = (typeof OUTLOOK_UNSYNCED)[number];

const ADDRESS: Record<string, string> = { street: 'street', city: 'city', state: 'state', postalCode: 'postalCode', country: 'countryOrRegion' };
export const EMAIL_SLOT: Record<string, number> = { email: 0, email2: 1, email3: 2 };

export class World {
  readonly intent = new Intent();

  constructor(readonly env: ModelEnv, readonly fields: string[]) {}

  snapshot(record: ContactRecord | undefined): Snapshot {
    const out: Snapshot = {};
    for (const f of this.fields) out[f] = ((record as Record<string, unknown> | undefined)?.[f] as string | undefined) ?? null;
    return out;
  }

  crmSnapshot(row: CrmRow): Snapshot {
    const r = fromCrmContact(row as unknown as Partial<CrmContactFields>);
    if (!r.ok) throw new Error(`CRM contact ${row.id} does not map: ${r.error}`);
    return this.snapshot(r.value);
  }

  outlookSnapshot(item: EmulatorContact): Snapshot {
    const r = fromGraphContact(item as GraphContact);
    if (!r.ok) throw new Error(`Outlook contact ${item.id} does not map: ${r.error}`);
    return this.snapshot(r.value);
  }

  // ---- reading both sides ----

  async crmRows(opts: { all?: boolean } = {}): Promise<CrmRow[]> {
    const r = await sql<CrmRow>`select * from crm.contacts where ${opts.all ? sql`true` : sql`deleted_at is null`} order by last_name, id`.execute(this.env.db);
    return r.rows;
  }

  async crmCopy(rec: RecordIntent): Promise<CrmRow | undefined> {
    return (await this.crmRows()).find((r) => tagOf(r.last_name) === rec.tag);
  }

  outlookItems(m: Mailbox): EmulatorContact[] {
    try {
      return this.env.emulator.admin.listContacts(MAILBOXES[m], FOLDER).sort((a, b) => (a.id < b.id ? -1 : 1));
    } catch {
      return []; // the folder does not exist before the first cycle or the first contact
    }
  }

  outlookCopy(m: Mailbox, rec: RecordIntent): EmulatorContact | undefined {
    return this.outlookItems(m).find((c) => tagOf(c.surname) === rec.tag);
  }

  /** A fresh value for a field, unique in the run, so "the user saw it" can be told by equality. */
  value(rec: RecordIntent, field: string, seq: number): string {
    if (field === 'lastName') return `${rec.tag} v${seq}`;
    if (field in EMAIL_SLOT) return `${rec.tag.toLowerCase()}.v${seq}@example.org`;
    return `${field} ${seq}`;
  }

  // ---- creating ----

  async createInCrm(owner: Mailbox): Promise<RecordIntent> {
    const seq = this.intent.next();
    const tag = this.intent.nextTag();
    const values: Snapshot = { firstName: `First ${seq}`, lastName: tag, email: `${tag.toLowerCase()}@example.org`, company: `Company ${seq}` };
    const rec = this.intent.created('crm', values);
    const cols = toCrmContact(values as ContactRecord) as unknown as Record<string, unknown>;
    const set = Object.entries(cols).filter(([, v]) => v !== null);
    await sql`insert into crm.contacts (owner_id, ${sql.join(set.map(([k]) => sql.ref(k)))}) values (${this.env.users[owner]}, ${sql.join(set.map(([, v]) => v))})`.execute(this.env.db);
    return rec;
  }

  createInOutlook(m: Mailbox): RecordIntent {
    const seq = this.intent.next();
    const tag = this.intent.nextTag();
    const values: Snapshot = { firstName: `First ${seq}`, lastName: tag, email: `${tag.toLowerCase()}@example.org`, company: `Company ${seq}` };
    const rec = this.intent.created(m, values);
    this.env.emulator.admin.createContact(MAILBOXES[m], FOLDER, {
      givenName: values.firstName, surname: values.lastName, emailAddresses: [{ address: values.email, name: values.email }], companyName: values.company,
    });
    return rec;
  }

  // ---- editing synced fields ----

  async editCrm(rec: RecordIntent, field: string, value: Value): Promise<string> {
    if (rec.leftScope) return 'skipped: the contact belongs to someone else now';
    const row = await this.crmCopy(rec);
    if (!row) return 'skipped: no CRM copy';
    // Outlook's email slots have no gaps, so the sync moves CRM addresses up to close one (documented in
    // RECORD_TYPES.md, unit-tested in contact-mapping.test.ts); the per-field model does not follow that move.
    if (field in EMAIL_SLOT && leavesGap(this.crmSnapshot(row), field, value)) return `skipped: CRM ${field} = ${JSON.stringify(value)} would leave a gap in the email slots`;
    this.intent.edited(rec, 'crm', field, value, this.crmSnapshot(row));
    await sql`update crm.contacts set ${sql.ref(crmColumn(field))} = ${value} where id = ${row.id}`.execute(this.env.db);
    return `CRM ${rec.tag}.${field} = ${JSON.stringify(value)}`;
  }

  editOutlook(m: Mailbox, rec: RecordIntent, field: string, value: Value): string {
    const item = this.outlookCopy(m, rec);
    if (!item) return `skipped: no Outlook copy in ${m}`;
    const patch = outlookPatch(item, field, value);
    if (!patch) return `skipped: Outlook ${m} cannot hold ${field} = ${JSON.stringify(value)} in its slot`;
    this.intent.edited(rec, m, field, value, this.outlookSnapshot(item));
    this.env.emulator.admin.updateContact(MAILBOXES[m], item.id, patch);
    return `Outlook ${m} ${rec.tag}.${field} = ${JSON.stringify(value)}`;
  }

  // ---- deleting ----

  async deleteInCrm(rec: RecordIntent): Promise<string> {
    if (rec.leftScope) return 'skipped: the contact belongs to someone else now';
    const row = await this.crmCopy(rec);
    if (!row) return 'skipped: no CRM copy';
    this.intent.deleted(rec, 'crm', this.crmSnapshot(row));
    await sql`update crm.contacts set deleted_at = now() where id = ${row.id}`.execute(this.env.db);
    return `CRM deleted ${rec.tag}`;
  }

  deleteInOutlook(m: Mailbox, rec: RecordIntent): string {
    const item = this.outlookCopy(m, rec);
    if (!item) return `skipped: no Outlook copy in ${m}`;
    // A copy of a contact that left scope is the user's own business now; deleting it means nothing for the CRM.
    if (!rec.leftScope) this.intent.deleted(rec, m, this.outlookSnapshot(item));
    this.env.emulator.admin.deleteContact(MAILBOXES[m], item.id);
    return `Outlook ${m} deleted ${rec.tag}`;
  }

  // ---- owners and unsynced data ----

  /** To the other mailbox's user (still in scope: an unsynced column changes) or to someone outside both. */
  async reassign(rec: RecordIntent, to: Mailbox | 'outside'): Promise<string> {
    if (rec.leftScope) return 'skipped: the contact belongs to someone else now';
    const row = await this.crmCopy(rec);
    if (!row) return 'skipped: no CRM copy';
    if (to === 'outside') this.intent.leftScope(rec, this.crmSnapshot(row));
    else this.intent.keep(rec, { side: 'crm', itemId: row.id, key: 'owner_id', value: this.env.users[to] });
    await sql`update crm.contacts set owner_id = ${this.env.users[to]} where id = ${row.id}`.execute(this.env.db);
    return `CRM ${rec.tag} reassigned to ${to}`;
  }

  async setContactClass(rec: RecordIntent, value: string): Promise<string> {
    if (rec.leftScope) return 'skipped: the contact belongs to someone else now';
    const row = await this.crmCopy(rec);
    if (!row) return 'skipped: no CRM copy';
    this.intent.keep(rec, { side: 'crm', itemId: row.id, key: 'contact_class', value });
    await sql`update crm.contacts set contact_class = ${value} where id = ${row.id}`.execute(this.env.db);
    return `CRM ${rec.tag}.contact_class = ${value}`;
  }

  setOutlookUnsynced(m: Mailbox, rec: RecordIntent, key: OutlookUnsynced, seq: number): string {
    const item = this.outlookCopy(m, rec);
    if (!item) return `skipped: no Outlook copy in ${m}`;
    let patch: Record<string, unknown>;
    let value: unknown;
    if (key === 'otherPhones') {
      const phones = (item.businessPhones as string[] | undefined) ?? [];
      // Without a first (synced) business phone an extra one would become it.
      if (!phones[0]) return `skipped: ${rec.tag} has no business phone in ${m}`;
      value = [`+1 555 ${seq}`];
      patch = { businessPhones: [phones[0], ...(value as string[])] };
    } else {
      value = key === 'homePhones' ? [`+1 666 ${seq}`] : key === 'birthday' ? `19${String(seq % 100).padStart(2, '0')}-01-01T11:59:00Z` : `${key} ${rec.tag} ${seq}`;
      patch = { [key]: value };
    }
    this.intent.keep(rec, { side: m, itemId: item.id, key, value });
    this.env.emulator.admin.updateContact(MAILBOXES[m], item.id, patch);
    return `Outlook ${m} ${rec.tag}.${key} = ${JSON.stringify(value)}`;
  }

  // ---- mail (runs with email) ----

  /** The two CRM leads that share M3's sender address, owned by a user outside both mailboxes: neither wins. */
  async seedMail(): Promise<void> {
    for (const last of ['Shared1', 'Shared2']) {
      await sql`insert into crm.leads (owner_id, first_name, last_name, email) values (${this.env.users.outside}, 'Desk', ${last}, ${SENDERS[3].address})`.execute(this.env.db);
    }
  }

  message(n: MessageNo): MessageIntent {
    let msg = this.intent.messages.get(n);
    if (!msg) {
      msg = { n, internetMessageId: `<m${n}.model@mail.example>`, sender: { ...SENDERS[n], name: `Mail M${n}` }, copies: [], deletedByUser: false };
      this.intent.messages.set(n, msg);
    }
    return msg;
  }

  /** A copy of Mn received by mailbox m, dragged into a drop folder by its user (the same message in every copy). */
  dropMail(m: Mailbox, n: MessageNo, folder: DropFolder): string {
    const msg = this.message(n);
    const to = Object.values(MAILBOXES).map((address) => ({ emailAddress: { address, name: address } }));
    const dropped = this.env.emulator.admin.dropMessage(MAILBOXES[m], folder, {
      subject: `M${n} from a ${msg.sender.kind} sender`,
      body: { contentType: 'text', content: `Body of M${n}` },
      from: { emailAddress: { address: msg.sender.address, name: msg.sender.name } },
      toRecipients: to,
      internetMessageId: msg.internetMessageId,
      receivedDateTime: '2026-01-15T09:30:00Z',
    });
    msg.copies.push({ m, id: dropped.id });
    return `${m} dropped a copy of M${n} (from ${msg.sender.address}) into ${folder}`;
  }

  /** The user moves a copy of Mn in mailbox m (the first dropped that is elsewhere) to another folder. */
  moveMail(m: Mailbox, n: MessageNo, to: DropFolder | 'Inbox'): string {
    const msg = this.message(n);
    const where = new Map(this.env.emulator.admin.listMessages(MAILBOXES[m]).map((x) => [x.id, x.folder]));
    const copy = msg.copies.find((c) => c.m === m && where.has(c.id) && where.get(c.id) !== to);
    if (!copy) return `skipped: no copy of M${n} in ${m} outside ${to}`;
    const from = where.get(copy.id)!;
    this.env.emulator.admin.moveMessage(MAILBOXES[m], copy.id, to === 'Inbox' ? 'inbox' : to);
    return `${m} moved a copy of M${n} from ${from} to ${to}`;
  }

  /** Every CRM email activity of the message, live or deleted. */
  async activitiesOf(msg: MessageIntent): Promise<ActivityRow[]> {
    return (await sql<ActivityRow>`select id::text, owner_id::text, subject, deleted_at, internet_message_id from crm.email_activities
      where internet_message_id = ${msg.internetMessageId} order by created_at, id`.execute(this.env.db)).rows;
  }

  private async liveActivity(n: MessageNo): Promise<ActivityRow | undefined> {
    return (await this.activitiesOf(this.message(n))).find((a) => !a.deleted_at);
  }

  /** A CRM user edits the subject of Mn's email activity. */
  async editActivity(n: MessageNo): Promise<string> {
    const a = await this.liveActivity(n);
    if (!a) return `skipped: M${n} has no live CRM email activity`;
    const subject = `M${n} subject edited in the CRM #${this.intent.next()}`;
    this.message(n).subject = subject;
    await sql`update crm.email_activities set subject = ${subject} where id = ${a.id}::uuid`.execute(this.env.db);
    return `CRM subject of M${n}'s activity = ${JSON.stringify(subject)}`;
  }

  /** A CRM user deletes Mn's email activity (soft delete, as the CRM's screens do). */
  async deleteActivity(n: MessageNo): Promise<string> {
    const a = await this.liveActivity(n);
    if (!a) return `skipped: M${n} has no live CRM email activity`;
    this.message(n).deletedByUser = true;
    await sql`update crm.email_activities set deleted_at = now() where id = ${a.id}::uuid`.execute(this.env.db);
    return `CRM deleted M${n}'s activity`;
  }

  /** A CRM user deletes a record Mn was filed to: a user's contact through deleteInCrm (the contact model follows). */
  async deleteFiledRecord(n: MessageNo): Promise<string> {
    const a = await this.liveActivity(n);
    if (!a) return `skipped: M${n} has no live CRM email activity`;
    const r = await sql<{ record_type: string; record_id: string; last_name: string | null }>`
      select l.record_type, l.record_id::text, coalesce(c.last_name, d.last_name, x.name) as last_name from crm.email_links l
        left join crm.contacts c on l.record_type = 'contact' and c.id = l.record_id and c.deleted_at is null
        left join crm.leads d on l.record_type = 'lead' and d.id = l.record_id and d.deleted_at is null
        left join crm.accounts x on l.record_type = 'account' and x.id = l.record_id and x.deleted_at is null
      where l.email_activity_id = ${a.id}::uuid and coalesce(c.id, d.id, x.id) is not null
      order by array_position(array['contact', 'lead', 'account'], l.record_type), l.record_id`.execute(this.env.db);
    const target = r.rows[0];
    if (!target) return `skipped: every record M${n} was filed to is deleted`;
    const rec = target.record_type === 'contact' ? this.intent.byTag(tagOf(target.last_name)) : undefined;
    if (rec) return `the ${target.record_type} M${n} was filed to: ${await this.deleteInCrm(rec)}`;
    const table = { contact: sql`crm.contacts`, lead: sql`crm.leads`, account: sql`crm.accounts` }[target.record_type as 'contact' | 'lead' | 'account'];
    await sql`update ${table} set deleted_at = now() where id = ${target.record_id}::uuid`.execute(this.env.db);
    return `CRM deleted the ${target.record_type} ${target.last_name} M${n} was filed to`;
  }

  /** After a filing attempt of mailbox m: a message whose activity appeared just now was first filed by m. */
  async observeFiling(m: Mailbox): Promise<void> {
    for (const msg of this.intent.messages.values()) {
      if (!msg.firstFiler && (await this.activitiesOf(msg)).length) msg.firstFiler = m;
    }
  }

  /** Where the copies of the messages sit now: per mailbox and drop folder, the messages in it. */
  mailInDropFolders(m: Mailbox): Array<{ folder: DropFolder; n: MessageNo; copy: string }> {
    const out: Array<{ folder: DropFolder; n: MessageNo; copy: string }> = [];
    for (const folder of Object.keys(DROP_FOLDERS) as DropFolder[]) {
      let items;
      try {
        items = this.env.emulator.admin.listMessages(MAILBOXES[m], folder);
      } catch {
        continue; // not created yet
      }
      for (const item of items) {
        const msg = [...this.intent.messages.values()].find((x) => x.internetMessageId === item.internetMessageId);
        if (msg) out.push({ folder, n: msg.n, copy: item.id });
      }
    }
    return out;
  }

  /** Time passes: every drop folder's periodic id re-scan is due at the next cycle (the backstop behind delta). */
  async rescanDue(): Promise<void> {
    await sql`update sync.mail_folder set rescanned_at = null`.execute(this.env.db);
  }

  /** An unsynced Outlook property as the model keeps it. */
  static outlookUnsynced(item: EmulatorContact, key: string): unknown {
    if (key === 'otherPhones') return ((item.businessPhones as string[] | undefined) ?? []).slice(1);
    return item[key] ?? null;
  }
}

/** Whether setting `field` leaves an empty email slot before a filled one. */
function leavesGap(current: Snapshot, field: string, value: Value): boolean {
  const slots = ['email', 'email2', 'email3'].map((f) => (f === field ? value : current[f]) ?? null);
  return slots.some((v, i) => v === null && slots.slice(i + 1).some((w) => w !== null));
}

/**
 * The Graph properties a user's edit of one synced field changes, keeping the rest of the item as it is (other
 * email slots, other phones, other address lines). Undefined when Outlook cannot hold the value in that slot
 * (an email slot after an empty one would move up).
 */
function outlookPatch(item: EmulatorContact, field: string, value: Value): Record<string, unknown> | undefined {
  if (field in EMAIL_SLOT) {
    const slot = EMAIL_SLOT[field];
    const list = [...((item.emailAddresses as Array<{ address?: string | null; name?: string | null }> | undefined) ?? [])];
    if (value === null) {
      if (slot !== list.length - 1) return undefined; // clearing a slot with others after it would move them up
      list.pop();
    } else {
      if (slot > list.length) return undefined;
      list[slot] = { address: value, name: value };
    }
    return { emailAddresses: list };
  }
  if (field === 'phone') {
    const phones = [...((item.businessPhones as string[] | undefined) ?? [])];
    if (value === null && phones.length > 1) phones[0] = ''; // keeps the extra phones where they are
    else if (value === null) phones.splice(0, 1);
    else phones[0] = value;
    return { businessPhones: phones };
  }
  if (field in ADDRESS) return { businessAddress: { ...((item.businessAddress as object | undefined) ?? {}), [ADDRESS[field]]: value } };
  // Any other field is one Graph property: the one toGraphContact changes for it.
  const base = toGraphContact({ lastName: 'x' });
  const set = toGraphContact({ lastName: 'x', [field]: 'v' } as ContactRecord);
  const prop = Object.keys(set).find((k) => k !== 'displayName' && JSON.stringify(set[k]) !== JSON.stringify(base[k]));
  if (!prop) throw new Error(`no Graph property for contact field ${field}`);
  return { [prop]: value };
}

export function sideName(side: Side): string {
  return side === 'crm' ? 'CRM' : `Outlook ${side}`;
}
