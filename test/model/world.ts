/**
 * The users' side of the world: people editing contacts in the CRM (plain SQL on crm.contacts, as the CRM's own
 * screens would: no cxsync.writer) and in Outlook (the emulator's admin API acts as the mailbox's user: new
 * change key, seen by the next delta). Every action tells the reference model (intent.ts) what the user meant
 * and what the user saw when doing it.
 */
import { sql } from 'kysely';
import { CONTACT_FIELDS, fromCrmContact, fromGraphContact, toCrmContact, toGraphContact, type ContactRecord, type CrmContactFields, type GraphContact } from '../../src/domain/contact';
import type { EmulatorContact } from '../../src/emulator';
import { FOLDER, MAILBOXES, type Mailbox, type ModelEnv } from './environment';
import { Intent, type RecordIntent, type Side, type Snapshot, type Value } from './intent';

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

/** Unsynced Outlook properties a user sets; `otherPhones` are business phones beyond the first (the synced one). */
export const OUTLOOK_UNSYNCED = ['nickName', 'homePhones', 'birthday', 'displayName', 'otherPhones'] as const;
export type OutlookUnsynced = (typeof OUTLOOK_UNSYNCED)[number];

const ADDRESS: Record<string, string> = { street: 'street', city: 'city', state: 'state', postalCode: 'postalCode', country: 'countryOrRegion' };
const EMAIL_SLOT: Record<string, number> = { email: 0, email2: 1, email3: 2 };

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
