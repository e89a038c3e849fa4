/**
 * Contacts under /users/{u}: /contactFolders (with their contacts) and /contacts of the default folder,
 * contacts/delta per folder with the switchable DeltaQuirks, and If-Match on writes.
 */
import { parseContactBody, renderContact, validateSelect, withDerivedDisplayName, type RenderOptions } from './contact-schema';
import { deltaPage } from './delta';
import { GraphHttpError, badRequest } from './errors';
import { parseExpand, parseItemFilter, parsePrefer, parseSelect } from './query';
import { methodNotAllowed, noResource, ok, pageOf, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import type { Folder, Mailbox, StoredItem } from './store';

/** Whether handleContacts serves paths starting with this segment (lower-cased). */
export function isContactsRoot(segment: string | undefined): boolean {
  return segment === 'contactfolders' || segment === 'contacts';
}

/** Entry point from handleGraph: `rest` is the path after /users/{u}, decoded, starting with contactFolders or contacts. */
export function handleContacts(ctx: GraphContext, req: GraphRequest, mb: Mailbox, rest: string[]): GraphResponse {
  const r0 = rest[0].toLowerCase();
  const m = req.method;
  if (r0 === 'contactfolders') {
    if (rest.length === 1) {
      if (m === 'GET') return listFolders(ctx, req, mb);
      if (m === 'POST') return { status: 201, body: renderFolder(ctx, mb, ctx.store.createFolder(mb, folderName(req.body))) };
      throw methodNotAllowed();
    }
    const folder = ctx.store.folder(mb, rest[1]);
    if (rest.length === 2) {
      if (m === 'GET') return ok(renderFolder(ctx, mb, folder));
      if (m === 'PATCH') return ok(renderFolder(ctx, mb, ctx.store.renameFolder(mb, folder.id, folderName(req.body))));
      if (m === 'DELETE') {
        ctx.store.deleteFolder(mb, folder.id);
        return { status: 204 };
      }
      throw methodNotAllowed();
    }
    if (rest[2]?.toLowerCase() === 'contacts') return contacts(ctx, req, mb, folder.id, rest.slice(3), true);
    throw noResource(rest[2]);
  }
  return contacts(ctx, req, mb, mb.defaultContactFolderId, rest.slice(1), false);
}

function folderName(body: unknown): string {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['displayName', 'parentFolderId', 'id', '@odata.type'].includes(k)) {
      throw badRequest('RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.contactFolder'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
    }
  }
  if (typeof b.displayName !== 'string' || !b.displayName.trim()) throw badRequest('ErrorInvalidRequest', 'The folder display name is missing.');
  return b.displayName;
}

function renderFolder(ctx: GraphContext, mb: Mailbox, f: Folder): Record<string, unknown> {
  return { id: f.id, displayName: f.displayName, parentFolderId: f.parentFolderId };
}

function listFolders(ctx: GraphContext, req: GraphRequest, mb: Mailbox): GraphResponse {
  const filter = parseItemFilter(req.query.get('$filter'));
  const all = ctx.store.contactFolders(mb).filter((f) => !filter || filter({ fields: { displayName: f.displayName }, ext: {} }));
  return pageOf(ctx, req, all.map((f) => renderFolder(ctx, mb, f)), `users('${mb.upn}')/contactFolders`);
}

function renderOptions(req: GraphRequest): RenderOptions {
  const select = parseSelect(req.query.get('$select'));
  if (select) validateSelect(select);
  return { select, expandExt: parseExpand(req.query.get('$expand')), immutableId: wantsImmutableIds(req) };
}

function wantsImmutableIds(req: GraphRequest): boolean {
  return parsePrefer(req.headers['prefer']).immutableId;
}

/**
 * `If-Match: W/"<changeKey>"` (or the bare key, or `*`): a write based on an older version of the item is
 * refused with 412, as Exchange does, so a client never overwrites a change it has not seen.
 */
function checkIfMatch(req: GraphRequest, item: StoredItem): void {
  const header = req.headers['if-match'];
  if (header === undefined || header.trim() === '*') return;
  const keys = header.split(',').map((k) => k.trim().replace(/^W\//, '').replace(/^"|"$/g, ''));
  if (!keys.includes(item.changeKey)) {
    throw new GraphHttpError(
      412,
      'ErrorIrresolvableConflict',
      'The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.',
    );
  }
}

function contacts(ctx: GraphContext, req: GraphRequest, mb: Mailbox, folderId: string, rest: string[], inFolder: boolean): GraphResponse {
  const { store } = ctx;
  const m = req.method;
  if (rest.length === 0) {
    if (m === 'GET') {
      const opts = renderOptions(req);
      const filter = parseItemFilter(req.query.get('$filter'));
      const items = store.itemsIn(mb, folderId).filter((i) => !filter || filter(i));
      const ctxPath = inFolder ? `users('${mb.upn}')/contactFolders('${folderId}')/contacts` : `users('${mb.upn}')/contacts`;
      return pageOf(ctx, req, items.map((i) => renderContact(i, opts)), ctxPath);
    }
    if (m === 'POST') {
      const w = parseContactBody(req.body);
      const item = store.createItem(mb, folderId, withDerivedDisplayName(w.fields), w.ext);
      return { status: 201, body: renderContact(item, { expandExt: w.ext.length ? '*' : undefined, immutableId: wantsImmutableIds(req) }) };
    }
    throw methodNotAllowed();
  }
  if (rest.length === 1 && rest[0].toLowerCase() === 'delta') {
    if (m !== 'GET') throw methodNotAllowed();
    return delta(ctx, req, mb, folderId);
  }
  if (rest.length === 1) {
    const id = rest[0];
    // A default-folder path reaches any contact of the mailbox; a folder path only that folder's.
    const scope = inFolder ? folderId : undefined;
    if (m === 'GET') return ok(renderContact(store.item(mb, id, scope), renderOptions(req)));
    if (m === 'PATCH') {
      const w = parseContactBody(req.body);
      checkIfMatch(req, store.item(mb, id, scope));
      return ok(renderContact(store.updateItem(mb, id, w.fields, w.ext, scope), { immutableId: wantsImmutableIds(req) }));
    }
    if (m === 'DELETE') {
      checkIfMatch(req, store.item(mb, id, scope));
      store.deleteItem(mb, id, scope);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  throw noResource(rest[1]);
}

function delta(ctx: GraphContext, req: GraphRequest, mb: Mailbox, folderId: string): GraphResponse {
  const prefer = parsePrefer(req.headers['prefer']);
  const pageSize = prefer.maxPageSize ?? ctx.maxPageSize;
  const select = req.query.get('$select');
  if (select) validateSelect(parseSelect(select) ?? []);
  const quirks = ctx.deltaQuirks?.(mb) ?? {};
  const p = deltaPage(ctx.store, mb, folderId, { skiptoken: req.query.get('$skiptoken'), deltatoken: req.query.get('$deltatoken'), select }, pageSize, quirks);
  const selectList = parseSelect(p.select ?? null);
  const immutableId = prefer.immutableId;
  const value = p.entries.map((e) => {
    if (e.removed) return { '@odata.type': '#microsoft.graph.contact', id: immutableId ? e.id : (e.restId ?? e.id), '@removed': { reason: 'deleted' } };
    const item = ctx.store.item(mb, e.id);
    // An item that was already in the folder when the previous round ended may come with only what changed.
    const partial = quirks.partialUpdates && p.from > 0 && item.enteredSeq <= p.from;
    return renderContact(item, { select: selectList, immutableId, changedSince: partial ? p.from : undefined });
  });
  const link = `${ctx.graphBaseUrl}${req.rawPath}`;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.graphBaseUrl}/$metadata#Collection(contact)`, value };
  if (p.nextToken) body['@odata.nextLink'] = `${link}?$skiptoken=${p.nextToken}`;
  else body['@odata.deltaLink'] = `${link}?$deltatoken=${p.deltaToken}`;
  // IdType is acknowledged for every request by the server; only the page size is delta's own.
  return ok(body, prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${prefer.maxPageSize}` } : undefined);
}
