/** Contacts: CRM contacts in the policy's scope (owned by the user, their workgroup's, or all) ⇄ Outlook contacts in the mailbox's contact folder. */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema';
import {
  contactLabel,
  fromCrmContact,
  fromGraphContact,
  graphContactPatch,
  toCrmContact,
  toGraphContact,
  type ContactRecord,
  type CrmContactFields,
  type GraphContact,
} from '../../domain/contact';
import { PostgresCrmStore, crmContactWrites, crmPrecondition, rewindWatermark, txVersion, undeleteRow } from '../crm/postgres-crm';
import type { ContactsApi } from '../exchange/contacts-api';
import type { ExchangeItem, RecordTypeAdapter } from './adapter';

const STRIP = /^@odata\./;
export function graphPayload(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !STRIP.test(k) && k !== '@removed'));
}

/**
 * The Graph properties fromGraphContact reads, plus those the policy's scope rules read (categories). Graph
 * always sends them in full (null or [] when empty), so an item missing one carries only its changed properties.
 */
export const CONTACT_READ_PROPERTIES = [
  'givenName', 'surname', 'displayName', 'emailAddresses', 'businessPhones', 'mobilePhone', 'companyName', 'jobTitle',
  'department', 'businessAddress', 'personalNotes', 'categories',
] as const;

function item(body: unknown): ExchangeItem {
  const b = (body ?? {}) as GraphContact & { parentFolderId?: string };
  return { id: String(b.id), changeKey: b.changeKey ?? null, payload: graphPayload(b), ...(b.parentFolderId ? { containerId: b.parentFolderId } : {}) };
}

export function contactsAdapter(db: Kysely<Database>, api: ContactsApi): RecordTypeAdapter<ContactRecord> {
  const crm = new PostgresCrmStore(db);
  return {
    recordType: 'contact',
    graph: api.client,
    ensureContainer: (upn, c) => (c.useDefault ? api.defaultFolder(upn) : api.ensureFolder(upn, c.name)),
    async deltaPage(upn, folderId, link, pageSize) {
      const page = await api.deltaPage(upn, folderId, link, pageSize);
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
    isComplete: (payload) => CONTACT_READ_PROPERTIES.every((p) => p in payload),
    async markedItems(upn, folderId) {
      return (await api.markedItems(upn, folderId)).map((m) => ({ id: m.id, marker: { syncId: m.syncId, crmId: m.crmId } }));
    },
    exchangeRequests: {
      create: (upn, folderId, record, marker, category) =>
        api.createRequest(upn, folderId, { ...toGraphContact(record), categories: category ? [category] : [] }, marker),
      findBySyncId: (upn, folderId, syncId) => api.findBySyncIdRequest(upn, folderId, syncId),
      // Categories are left as they are: the user may have added their own, and the marking one stays.
      update: (upn, _folderId, id, record, changeKey, previous) => api.updateRequest(upn, id, previous ? graphContactPatch(record, previous) : toGraphContact(record), changeKey),
      delete: (upn, _folderId, id, changeKey) => api.deleteRequest(upn, id, changeKey),
      get: (upn, _folderId, id) => api.getRequest(upn, id),
    },
    itemOf: item,
    foundOf(body) {
      const first = (body as { value?: unknown[] } | undefined)?.value?.[0];
      return first ? item(first) : undefined;
    },
    fromExchange: (payload) => fromGraphContact(payload as GraphContact),
    exchangeModifiedAt: (payload) => payload.lastModifiedDateTime as string | undefined,

    async crmChanges(args) {
      const page = await crm.contactChanges(args);
      return {
        changes: page.changes.map((c) => ({ id: c.id, removed: c.removed, leftScope: c.leftScope, hardDeleted: c.hardDeleted, version: c.version, payload: c.fields as unknown as Record<string, unknown> | null, updatedAt: c.updatedAt })),
        watermark: page.watermark,
      };
    },
    async crmExisting(ids) {
      const live = new Set<string>();
      for (const id of ids) {
        // CRM ids are uuids; a marker holding anything else cannot name a CRM contact.
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) continue;
        const row = await crmContactWrites.get(db, id);
        if (row && !row.deleted) live.add(id);
      }
      return live;
    },
    fromCrm: (payload) => fromCrmContact(payload as Partial<CrmContactFields>),
    async createInCrm(tx, mailboxId, id, ownerId, record, opts) {
      await crmContactWrites.create(tx, mailboxId, id, ownerId, toCrmContact(record), opts?.contactClass ?? null);
    },
    crmPrecondition: (tx, id, guard) => crmPrecondition(tx, 'contact', id, guard),
    crmUndelete: (tx, mailboxId, id) => undeleteRow(tx, 'contact', mailboxId, id),
    crmVersion: txVersion,
    crmRewind: rewindWatermark,
    updateInCrm: (tx, mailboxId, id, record) => crmContactWrites.update(tx, mailboxId, id, toCrmContact(record)),
    deleteInCrm: (tx, mailboxId, id) => crmContactWrites.delete(tx, mailboxId, id),
    label: contactLabel,
  };
}
