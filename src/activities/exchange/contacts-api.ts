/** Microsoft Graph calls for contacts: folder resolution, the delta pager and item writes. */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { GraphContact } from '../../domain/contact';
import { classifyGraphError } from './errors';

/** The extended property that carries cxsync's sync id on every item it creates (idempotent creates). */
export const SYNC_ID_PROPERTY = 'String {6f1c2a3e-9b7d-4c1e-8f2a-3d5b7c9e1a24} Name cxsyncId';

const IMMUTABLE_IDS = 'IdType="ImmutableId"';

const enc = encodeURIComponent;

export interface DeltaPage {
  items: (GraphContact & { '@removed'?: { reason: string } })[];
  nextLink?: string;
  deltaLink?: string;
}

export class ContactsApi {
  constructor(private readonly client: Client, private readonly pageSize = 100) {}

  async ensureFolder(upn: string, displayName: string): Promise<string> {
    const filter = `displayName eq '${displayName.replace(/'/g, "''")}'`;
    const found = await this.client.api(`/users/${enc(upn)}/contactFolders`).header('Prefer', IMMUTABLE_IDS).filter(filter).get();
    if (found.value?.length) return found.value[0].id as string;
    try {
      const created = await this.client.api(`/users/${enc(upn)}/contactFolders`).header('Prefer', IMMUTABLE_IDS).post({ displayName });
      return created.id as string;
    } catch (err) {
      // Another worker created it between our read and write.
      if (classifyGraphError(err).status === 409) return this.ensureFolder(upn, displayName);
      throw err;
    }
  }

  /** First page of a new round when `link` is undefined; otherwise the saved nextLink or deltaLink. */
  async deltaPage(upn: string, folderId: string, link: string | undefined): Promise<DeltaPage> {
    const url = link ?? `/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts/delta`;
    const res = await this.client
      .api(url)
      .header('Prefer', `odata.maxpagesize=${this.pageSize}, ${IMMUTABLE_IDS}`)
      .get();
    return { items: res.value ?? [], nextLink: res['@odata.nextLink'], deltaLink: res['@odata.deltaLink'] };
  }

  async create(upn: string, folderId: string, body: GraphContact, syncId: string): Promise<GraphContact> {
    return this.client
      .api(`/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts`)
      .header('Prefer', IMMUTABLE_IDS)
      .post({ ...body, singleValueExtendedProperties: [{ id: SYNC_ID_PROPERTY, value: syncId }] });
  }

  /** The item an earlier attempt of this create made, if it got that far. */
  async findBySyncId(upn: string, folderId: string, syncId: string): Promise<GraphContact | undefined> {
    const res = await this.client
      .api(`/users/${enc(upn)}/contactFolders/${enc(folderId)}/contacts`)
      .header('Prefer', IMMUTABLE_IDS)
      .filter(`singleValueExtendedProperties/Any(ep: ep/id eq '${SYNC_ID_PROPERTY}' and ep/value eq '${syncId}')`)
      .get();
    return res.value?.[0];
  }

  async update(upn: string, id: string, body: GraphContact): Promise<GraphContact> {
    return this.client.api(`/users/${enc(upn)}/contacts/${enc(id)}`).header('Prefer', IMMUTABLE_IDS).patch(body);
  }

  /** Deleting an item that is already gone is success: the goal state holds. */
  async delete(upn: string, id: string): Promise<void> {
    try {
      await this.client.api(`/users/${enc(upn)}/contacts/${enc(id)}`).delete();
    } catch (err) {
      if (classifyGraphError(err).kind !== 'not-found') throw err;
    }
  }
}
