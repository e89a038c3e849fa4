/**
 * Microsoft Graph for contacts: folder resolution, the delta pager, the marked-item listing, and the requests
 * for single-item writes (sent in JSON batches by the cycle). Every request asks for immutable ids
 * (outlook-immutable-id.md), so an item keeps its id when the user moves it between folders.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { GraphContact } from '../../domain/contact';
import { gated, type GraphSubRequest } from './batch';
import { classifyGraphError } from './errors';

/** The extended property that carries cxsync's sync id on every item it creates (idempotent creates). */
export const SYNC_ID_PROPERTY = 'String {6f1c2a3e-9b7d-4c1e-8f2a-3d5b7c9e1a24} Name cxsyncId';
/** The CRM id of the record an item was exported from (relinking after a lost mapping). */
export const CRM_ID_PROPERTY = 'String {6f1c2a3e-9b7d-4c1e-8f2a-3d5b7c9e1a24} Name cxsyncCrmId';

export const IMMUTABLE_IDS = 'IdType="ImmutableId"';
const PREFER = { Prefer: IMMUTABLE_IDS };
/** Graph's largest page for contact lists. */
const LIST_PAGE = 1000;

const enc = encodeURIComponent;
const q = (s: string) => s.replace(/'/g, "''");

export interface DeltaPage {
  items: (GraphContact & { '@removed'?: { reason: string } })[];
  nextLink?: string;
  deltaLink?: string;
}

/** If-Match carries the version a write is based on: a stale one answers 412 instead of overwriting a newer edit. */
export function ifMatch(changeKey: string | null): Record<string, string> {
  return changeKey ? { 'If-Match': `W/"${changeKey}"` } : {};
}

export class ContactsApi {
  constructor(readonly client: Client, readonly pageSize = 100) {}

  async ensureFolder(upn: string, displayName: string): Promise<string> {
    const filter = `displayName eq '${q(displayName)}'`;
    const found = await gated(upn, () => this.client.api(`/users/${enc(upn)}/contactFolders`).header('Prefer', IMMUTABLE_IDS).filter(filter).get());
    if (found.value?.length) return found.value[0].id as string;
    try {
      const created = await gated(upn, () => this.client.api(`/users/${enc(upn)}/contactFolders`).header('Prefer', IMMUTABLE_IDS).post({ displayName }));
      return created.id as string;
    } catch (err) {
      // Another worker created it between our read and write.
      if (classifyGraphError(err).status === 409) return this.ensureFolder(upn, displayName);
      throw err;
    }
  }

  /** The mailbox's default Contacts folder, by its well-known name. */
  async defaultFolder(upn: string): Promise<string> {
    const f = await gated(upn, () => this.client.api(`/users/${enc(upn)}/contactFolders/contacts`).header('Prefer', IMMUTABLE_IDS).select('id').get());
    return f.id as string;
  }

  /**
   * First page of a new round when `link` is undefined; otherwise the saved nextLink or deltaLink. Pages hold
   * at most the configured page size, or `maxItems` when fewer are wanted.
   */
  async deltaPage(upn: string, folderId: string, link: string | undefined, maxItems?: number): Promise<DeltaPage> {
    const pageSize = Math.max(1, Math.min(this.pageSize, maxItems ?? this.pageSize));
    const url = link ?? `/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts/delta`;
    const res = await gated(upn, () => this.client.api(url).header('Prefer', `odata.maxpagesize=${pageSize}, ${IMMUTABLE_IDS}`).get());
    return { items: res.value ?? [], nextLink: res['@odata.nextLink'], deltaLink: res['@odata.deltaLink'] };
  }

  /** Ids and cxsync markers of every contact in the folder, a thousand per request. */
  async markedItems(upn: string, folderId: string): Promise<Array<{ id: string; syncId?: string; crmId?: string }>> {
    const out: Array<{ id: string; syncId?: string; crmId?: string }> = [];
    let url: string | undefined =
      `/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts?$select=id&$top=${LIST_PAGE}` +
      `&$expand=${enc(`singleValueExtendedProperties($filter=id eq '${SYNC_ID_PROPERTY}' or id eq '${CRM_ID_PROPERTY}')`)}`;
    while (url) {
      const page: { value?: Array<{ id: string; singleValueExtendedProperties?: Array<{ id: string; value: string }> }>; '@odata.nextLink'?: string } =
        await gated(upn, () => this.client.api(url!).header('Prefer', IMMUTABLE_IDS).get());
      for (const it of page.value ?? []) {
        const props = it.singleValueExtendedProperties ?? [];
        const val = (pid: string) => props.find((p) => p.id.toLowerCase() === pid.toLowerCase())?.value;
        const syncId = val(SYNC_ID_PROPERTY);
        const crmId = val(CRM_ID_PROPERTY);
        if (syncId || crmId) out.push({ id: it.id, syncId, crmId });
      }
      url = page['@odata.nextLink'];
    }
    return out;
  }

  // ---- single-item requests, sent in JSON batches -------------------------------------------------

  createRequest(upn: string, folderId: string, body: GraphContact, marker: { syncId: string; crmId: string }): GraphSubRequest {
    return {
      method: 'POST',
      url: `/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts`,
      headers: PREFER,
      body: {
        ...body,
        singleValueExtendedProperties: [
          { id: SYNC_ID_PROPERTY, value: marker.syncId },
          { id: CRM_ID_PROPERTY, value: marker.crmId },
        ],
      },
    };
  }

  findBySyncIdRequest(upn: string, folderId: string, syncId: string): GraphSubRequest {
    const filter = `singleValueExtendedProperties/Any(ep: ep/id eq '${SYNC_ID_PROPERTY}' and ep/value eq '${q(syncId)}')`;
    return { method: 'GET', url: `/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts?$filter=${enc(filter)}`, headers: PREFER };
  }

  updateRequest(upn: string, id: string, body: GraphContact, changeKey: string | null): GraphSubRequest {
    return { method: 'PATCH', url: `/users/${enc(upn)}/contacts/${enc(id)}`, headers: { ...PREFER, ...ifMatch(changeKey) }, body };
  }

  deleteRequest(upn: string, id: string, changeKey: string | null): GraphSubRequest {
    return { method: 'DELETE', url: `/users/${enc(upn)}/contacts/${enc(id)}`, headers: { ...PREFER, ...ifMatch(changeKey) } };
  }

  getRequest(upn: string, id: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/contacts/${enc(id)}`, headers: PREFER };
  }
}
