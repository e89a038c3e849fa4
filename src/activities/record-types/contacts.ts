/** Contacts: CRM contacts owned by the user ⇄ Outlook contacts in the mailbox's contact folder. */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema';
import {
  contactLabel,
  fromCrmContact,
  fromGraphContact,
  toCrmContact,
  toGraphContact,
  type ContactRecord,
  type CrmContactFields,
  type GraphContact,
} from '../../domain/contact';
import { PostgresCrmStore, crmContactWrites } from '../crm/postgres-crm';
import type { ContactsApi } from '../exchange/contacts-api';
import type { RecordTypeAdapter } from './adapter';

const STRIP = /^@odata\./;
export function graphPayload(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !STRIP.test(k) && k !== '@removed'));
}

export function contactsAdapter(db: Kysely<Database>, api: ContactsApi): RecordTypeAdapter<ContactRecord> {
  const crm = new PostgresCrmStore(db);
  return {
    recordType: 'contact',
    ensureContainer: (upn, c) => api.ensureFolder(upn, c.name),
    async deltaPage(upn, folderId, link) {
      const page = await api.deltaPage(upn, folderId, link);
      return {
        items: page.items.map((it) => ({
          id: String(it.id),
          removed: !!it['@removed'],
          changeKey: (it.changeKey as string | undefined) ?? null,
          payload: it['@removed'] ? null : graphPayload(it),
        })),
        nextLink: page.nextLink,
        deltaLink: page.deltaLink,
      };
    },
    async createInExchange(upn, folderId, record, syncId) {
      const item = await api.create(upn, folderId, toGraphContact(record), syncId);
      return { id: String(item.id), changeKey: item.changeKey ?? null };
    },
    async findInExchange(upn, folderId, syncId) {
      const item = await api.findBySyncId(upn, folderId, syncId);
      return item ? { id: String(item.id), changeKey: item.changeKey ?? null } : undefined;
    },
    async updateInExchange(upn, _folderId, id, record) {
      const item = await api.update(upn, id, toGraphContact(record));
      return { id, changeKey: item.changeKey ?? null };
    },
    deleteInExchange: (upn, _folderId, id) => api.delete(upn, id),
    fromExchange: (payload) => fromGraphContact(payload as GraphContact),
    exchangeModifiedAt: (payload) => payload.lastModifiedDateTime as string | undefined,

    async crmChanges(args) {
      const page = await crm.contactChanges(args);
      return {
        changes: page.changes.map((c) => ({ id: c.id, removed: c.removed, payload: c.fields as unknown as Record<string, unknown> | null, updatedAt: c.updatedAt })),
        watermark: page.watermark,
      };
    },
    fromCrm: (payload) => fromCrmContact(payload as Partial<CrmContactFields>),
    async createInCrm(tx, mailboxId, id, ownerId, record) {
      await crmContactWrites.create(tx, mailboxId, id, ownerId, toCrmContact(record));
    },
    updateInCrm: (tx, mailboxId, id, record) => crmContactWrites.update(tx, mailboxId, id, toCrmContact(record)),
    deleteInCrm: (tx, mailboxId, id) => crmContactWrites.delete(tx, mailboxId, id),
    label: contactLabel,
  };
}
