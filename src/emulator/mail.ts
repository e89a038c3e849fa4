/**
 * Graph's mail resources: /mailFolders (with childFolders, messages and messages/delta), /messages (with move
 * and attachments, including createUploadSession) and the pre-authenticated upload URL of an upload session.
 * State lives in mail-store.ts; each behaviour names the Microsoft doc (microsoft-graph-docs-contrib) it follows.
 */
import crypto from 'node:crypto';
import { deltaPage, INITIAL_ROUND } from './delta';
import { GraphHttpError, badRequest, notFound } from './errors';
import {
  MB,
  addAttachment,
  attachmentsOf,
  chargeUpload,
  childFolders,
  createMailFolder,
  createMessage,
  deleteMailFolder,
  deleteMessage,
  mailFolder,
  mailState,
  messageSize,
  messageTooBig,
  moveMessage,
  newAttachmentId,
  parseFileAttachment,
  parseMessageBody,
  removeAttachment,
  renameMailFolder,
  updateMessage,
  uploadSessions,
  type MailFolder,
  type MailState,
  type StoredAttachment,
} from './mail-store';
import { checkIfMatch } from './outlook-common';
import { parseExpand, parseItemFilter, parsePrefer, parseSelect, selectAndExpand } from './query';
import { methodNotAllowed, noResource, ok, pageOf, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import type { Mailbox, StoredItem } from './store';

/** Attachments under 3 MB go in one POST; 3 MB to 150 MB need an upload session (concepts/outlook-large-attachments.md). */
const INLINE_LIMIT = 3 * MB;
const SESSION_LIMIT = 150 * MB;
/** An upload session's URL stays valid this long (the docs' example: about 1.5 hours); not enforced beyond being reported. */
const SESSION_LIFETIME_MS = 60 * 60 * 1000;

export function isMailRoot(segment: string | undefined): boolean {
  return segment === 'mailfolders' || segment === 'messages';
}

const MESSAGE_PROPS = [
  'receivedDateTime',
  'sentDateTime',
  'hasAttachments',
  'internetMessageId',
  'subject',
  'bodyPreview',
  'importance',
  'conversationId',
  'isDeliveryReceiptRequested',
  'isReadReceiptRequested',
  'isRead',
  'isDraft',
  'inferenceClassification',
  'body',
  'sender',
  'from',
  'toRecipients',
  'ccRecipients',
  'bccRecipients',
  'replyTo',
  'flag',
  'categories',
  'internetMessageHeaders',
];
const DEFAULTS: Record<string, unknown> = {
  importance: 'normal',
  inferenceClassification: 'focused',
  isDeliveryReceiptRequested: false,
  isReadReceiptRequested: false,
  categories: [],
  toRecipients: [],
  ccRecipients: [],
  bccRecipients: [],
  replyTo: [],
  flag: { flagStatus: 'notFlagged' },
  body: { contentType: 'text', content: '' },
  subject: '',
};

interface RenderOpts {
  select?: string[];
  expandExt?: string[] | '*';
  immutableId: boolean;
}

function renderMessage(item: StoredItem, opts: RenderOpts): Record<string, unknown> {
  const full: Record<string, unknown> = {
    '@odata.type': '#microsoft.graph.message',
    '@odata.etag': `W/"${item.changeKey}"`,
    // Ids change on every move unless the request asks for immutable ids (concepts/outlook-immutable-id.md).
    id: opts.immutableId ? item.id : item.restId,
    createdDateTime: item.createdDateTime,
    lastModifiedDateTime: item.lastModifiedDateTime,
    changeKey: item.changeKey,
    parentFolderId: item.folderId,
  };
  for (const p of MESSAGE_PROPS) {
    if (p === 'internetMessageHeaders') continue; // only with $select (message.md)
    full[p] = p in item.fields ? item.fields[p] : (DEFAULTS[p] ?? null);
  }
  const base = opts.select?.includes('internetMessageHeaders') ? { ...full, internetMessageHeaders: item.fields.internetMessageHeaders ?? [] } : full;
  const out = selectAndExpand(base, base, item.ext, opts);
  if (opts.select) out['@odata.type'] = '#microsoft.graph.message';
  return out;
}

function validateSelect(select: string[] | undefined): void {
  const known = new Set(['id', 'changeKey', 'createdDateTime', 'lastModifiedDateTime', 'parentFolderId', ...MESSAGE_PROPS]);
  for (const s of select ?? []) {
    if (!known.has(s)) throw badRequest('RequestBroker--ParseUri', `Could not find a property named '${s}' on type 'microsoft.graph.message'.`);
  }
}

function renderOpts(req: GraphRequest): RenderOpts {
  const select = parseSelect(req.query.get('$select'));
  validateSelect(select);
  return { select, expandExt: parseExpand(req.query.get('$expand')), immutableId: immutable(req) };
}

const immutable = (req: GraphRequest) => parsePrefer(req.headers['prefer']).immutableId;

function renderFolder(ms: MailState, f: MailFolder): Record<string, unknown> {
  const items = Object.values(ms.items).filter((i) => i.folderId === f.id);
  return {
    id: f.id,
    displayName: f.displayName,
    parentFolderId: f.parentFolderId,
    childFolderCount: childFolders(ms, f.id, true).length,
    unreadItemCount: items.filter((i) => i.fields.isRead === false).length,
    totalItemCount: items.length,
    isHidden: f.isHidden,
  };
}

function folderBody(body: unknown, creating: boolean): { displayName: string; isHidden: boolean } {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['displayName', 'isHidden', '@odata.type'].includes(k)) {
      throw badRequest('RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.mailFolder'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
    }
  }
  if (typeof b.displayName !== 'string' || !b.displayName.trim()) throw badRequest('ErrorInvalidRequest', 'The folder display name is missing.');
  // isHidden is settable only at creation (user-post-mailfolders.md).
  if (!creating && b.isHidden !== undefined) throw badRequest('ErrorInvalidRequest', 'The isHidden property cannot be updated.');
  return { displayName: b.displayName, isHidden: b.isHidden === true };
}

/** Entry point from handleGraph: `rest` is the path after /users/{u}, decoded; rest[0] is mailFolders or messages. */
export function handleMail(ctx: GraphContext, req: GraphRequest, mb: Mailbox, rest: string[]): GraphResponse {
  const ms = mailState(ctx.store, mb);
  const m = req.method;
  if (rest[0].toLowerCase() === 'messages') {
    // POST /users/{u}/messages creates in Drafts (user-post-messages.md).
    return messages(ctx, req, mb, ms, undefined, rest.slice(1));
  }
  // /mailFolders: the children of msgfolderroot (user-list-mailfolders.md); hidden ones with includeHiddenFolders=true.
  if (rest.length === 1) {
    if (m === 'GET') return listFolders(ctx, req, mb, ms, ms.wellKnown.msgfolderroot, `users('${mb.upn}')/mailFolders`);
    if (m === 'POST') {
      const b = folderBody(req.body, true);
      return { status: 201, body: renderFolder(ms, createMailFolder(ctx.store, ms, ms.wellKnown.msgfolderroot, b.displayName, b.isHidden)) };
    }
    throw methodNotAllowed();
  }
  if (rest[1].toLowerCase() === 'delta') throw badRequest('BadRequest', 'Folder delta (mailFolders/delta) is not emulated.');
  const folder = mailFolder(ms, rest[1]);
  const r2 = rest[2]?.toLowerCase();
  if (rest.length === 2) {
    if (m === 'GET') return ok(renderFolder(ms, folder));
    if (m === 'PATCH') return ok(renderFolder(ms, renameMailFolder(ctx.store, ms, folder, folderBody(req.body, false).displayName)));
    if (m === 'DELETE') {
      deleteMailFolder(ctx.store, ms, folder);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  if (r2 === 'childfolders' && rest.length === 3) {
    if (m === 'GET') return listFolders(ctx, req, mb, ms, folder.id, `users('${mb.upn}')/mailFolders('${folder.id}')/childFolders`);
    if (m === 'POST') {
      // mailfolder-post-childfolders.md: same body and answer as a folder under the root.
      const b = folderBody(req.body, true);
      return { status: 201, body: renderFolder(ms, createMailFolder(ctx.store, ms, folder.id, b.displayName, b.isHidden)) };
    }
    throw methodNotAllowed();
  }
  if (r2 === 'messages') return messages(ctx, req, mb, ms, folder, rest.slice(3));
  throw noResource(rest[2]);
}

function listFolders(ctx: GraphContext, req: GraphRequest, mb: Mailbox, ms: MailState, parentId: string, contextPath: string): GraphResponse {
  const filter = parseItemFilter(req.query.get('$filter'));
  const includeHidden = req.query.get('includeHiddenFolders') === 'true';
  const all = childFolders(ms, parentId, includeHidden).filter((f) => !filter || filter({ fields: { displayName: f.displayName }, ext: {} }));
  return pageOf(ctx, req, all.map((f) => renderFolder(ms, f)), contextPath);
}

function messages(ctx: GraphContext, req: GraphRequest, mb: Mailbox, ms: MailState, folder: MailFolder | undefined, rest: string[]): GraphResponse {
  const { store } = ctx;
  const m = req.method;
  if (rest.length === 0) {
    if (m === 'GET') {
      const opts = renderOpts(req);
      const filter = parseItemFilter(req.query.get('$filter'));
      const all = folder ? store.itemsIn(ms, folder.id) : Object.values(ms.items);
      const items = all.filter((i) => !filter || filter(i)).sort((a, b) => String(b.fields.receivedDateTime).localeCompare(String(a.fields.receivedDateTime)));
      const path = folder ? `users('${mb.upn}')/mailFolders('${folder.id}')/messages` : `users('${mb.upn}')/messages`;
      return pageOf(ctx, req, items.map((i) => renderMessage(i, opts)), path);
    }
    if (m === 'POST') {
      // mailfolder-post-messages.md / user-post-messages.md: 201 and the message; a draft unless PR_MESSAGE_FLAGS says otherwise.
      const w = parseMessageBody(req.body, true);
      for (const a of w.attachments) if (Buffer.from(String(a.contentBytes ?? ''), 'base64').length >= INLINE_LIMIT) throw tooLargeForPost();
      chargeUpload(ms, JSON.stringify(req.body).length);
      const item = createMessage(store, ms, folder?.id ?? ms.wellKnown.drafts, w);
      return { status: 201, body: renderMessage(item, { immutableId: immutable(req), expandExt: w.ext.length ? '*' : undefined }) };
    }
    throw methodNotAllowed();
  }
  if (rest[0].toLowerCase() === 'delta' && rest.length === 1) {
    if (!folder) throw badRequest('BadRequest', 'Message delta is per folder: use /mailFolders/{id}/messages/delta (concepts/delta-query-messages.md).');
    if (m !== 'GET') throw methodNotAllowed();
    return delta(ctx, req, mb, ms, folder);
  }
  const scope = folder?.id;
  const item = store.item(ms, rest[0], scope);
  if (rest.length === 1) {
    if (m === 'GET') return ok(renderMessage(item, renderOpts(req)));
    if (m === 'PATCH') {
      checkIfMatch(req, item.changeKey);
      const w = parseMessageBody(req.body, false);
      chargeUpload(ms, JSON.stringify(req.body).length);
      return ok(renderMessage(updateMessage(store, ms, item.id, w), { immutableId: immutable(req) }));
    }
    if (m === 'DELETE') {
      checkIfMatch(req, item.changeKey);
      deleteMessage(store, ms, item.id);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  const action = rest[1].toLowerCase();
  if (action === 'move' && rest.length === 2) {
    if (m !== 'POST') throw methodNotAllowed();
    // message-move.md: destinationId is a folder id or a well-known name; 201 and the message, whose default id is new.
    const dest = (req.body as { destinationId?: unknown } | undefined)?.destinationId;
    if (typeof dest !== 'string' || !dest) throw badRequest('ErrorInvalidRequest', 'The destinationId parameter is missing.');
    const to = mailFolder(ms, dest);
    return { status: 201, body: renderMessage(moveMessage(store, ms, item.id, to.id), { immutableId: immutable(req) }) };
  }
  if (action === 'attachments') return attachments(ctx, req, mb, ms, item, rest.slice(2));
  throw noResource(rest[1]);
}

const tooLargeForPost = () =>
  // The docs only say a POST carries attachments under 3 MB (concepts/outlook-large-attachments.md); Graph's request
  // size limit refuses bigger ones, so a client that skips the upload session fails here as it would there.
  new GraphHttpError(413, 'RequestEntityTooLarge', 'The attachment is 3 MB or larger: attach it through an upload session (attachments/createUploadSession).');

function renderAttachment(a: StoredAttachment, withBytes: boolean, select?: string[]): Record<string, unknown> {
  const full: Record<string, unknown> = {
    '@odata.type': '#microsoft.graph.fileAttachment',
    '@odata.mediaContentType': a.contentType,
    id: a.id,
    lastModifiedDateTime: a.lastModifiedDateTime,
    name: a.name,
    contentType: a.contentType,
    size: a.size,
    isInline: a.isInline,
    contentId: a.contentId ?? null,
    contentLocation: null,
    ...(withBytes ? { contentBytes: a.contentBytes } : {}),
  };
  if (!select) return full;
  const out: Record<string, unknown> = { '@odata.type': full['@odata.type'], id: a.id };
  for (const s of select) if (s in full) out[s] = full[s];
  return out;
}

function attachments(ctx: GraphContext, req: GraphRequest, mb: Mailbox, ms: MailState, item: StoredItem, rest: string[]): GraphResponse {
  const m = req.method;
  const select = parseSelect(req.query.get('$select'));
  if (rest.length === 0) {
    if (m === 'GET') {
      return ok({ '@odata.context': `${ctx.graphBaseUrl}/$metadata#users('${mb.upn}')/messages('${item.id}')/attachments`, value: attachmentsOf(ms, item.id).map((a) => renderAttachment(a, true, select)) });
    }
    if (m === 'POST') {
      // message-post-attachments.md, for files under 3 MB (concepts/outlook-large-attachments.md).
      const att = parseFileAttachment((req.body ?? {}) as Record<string, unknown>);
      if (att.size >= INLINE_LIMIT) throw tooLargeForPost();
      chargeUpload(ms, att.size);
      return { status: 201, body: renderAttachment(addAttachment(ctx.store, ms, item, att), true) };
    }
    throw methodNotAllowed();
  }
  if (rest[0].toLowerCase() === 'createuploadsession' && rest.length === 1) {
    if (m !== 'POST') throw methodNotAllowed();
    return createUploadSession(ctx, req, mb, ms, item);
  }
  if (rest.length === 1) {
    const a = attachmentsOf(ms, item.id).find((x) => x.id === rest[0]);
    if (!a) throw notFound();
    if (m === 'GET') return ok(renderAttachment(a, true, select));
    if (m === 'DELETE') {
      removeAttachment(ctx.store, ms, item, a.id);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  throw noResource(rest[1]);
}

/**
 * attachment-createuploadsession.md: AttachmentItem {attachmentType: file, name, size}; 201 and an uploadSession
 * whose uploadUrl is pre-authenticated (no Authorization header) and expects bytes from 0.
 */
function createUploadSession(ctx: GraphContext, req: GraphRequest, mb: Mailbox, ms: MailState, item: StoredItem): GraphResponse {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const ai = (body.AttachmentItem ?? body.attachmentItem) as Record<string, unknown> | undefined;
  if (!ai || typeof ai !== 'object') throw badRequest('ErrorInvalidRequest', 'The AttachmentItem parameter is missing.');
  // Only file attachments go through a session (microsoft-graph-docs-contrib issue #710).
  if (String(ai.attachmentType ?? '').toLowerCase() !== 'file') {
    throw new GraphHttpError(405, 'ErrorAttachmentSessionIsSupportedOnlyForFileAttachments', 'Attachment session is supported only for file attachments.');
  }
  const size = Number(ai.size);
  if (typeof ai.name !== 'string' || !ai.name || !Number.isInteger(size) || size < 0) throw badRequest('ErrorInvalidRequest', 'AttachmentItem needs a name and a size in bytes.');
  // concepts/outlook-large-attachments.md, "Errors".
  if (size < INLINE_LIMIT) throw badRequest('ErrorAttachmentSizeShouldNotBeLessThanMinimumSize', 'Attachment size should not be less than the minimum size (3 MB).');
  if (size > SESSION_LIMIT) throw messageTooBig();
  const id = 'AAMkAGSess' + crypto.randomBytes(24).toString('base64url');
  const token = crypto.randomBytes(24).toString('base64url');
  const expirationDateTime = new Date(Date.now() + SESSION_LIFETIME_MS).toISOString().replace('Z', '0000Z');
  uploadSessions.set(id, {
    id,
    token,
    upn: mb.upn,
    messageId: item.id,
    name: ai.name,
    contentType: typeof ai.contentType === 'string' ? ai.contentType : 'application/octet-stream',
    size,
    isInline: ai.isInline === true,
    ...(typeof ai.contentId === 'string' ? { contentId: ai.contentId } : {}),
    expirationDateTime,
    received: [],
    offset: 0,
    mail: ms,
  });
  const origin = ctx.graphBaseUrl.replace(/\/v1\.0$/, '');
  return {
    status: 201,
    body: {
      '@odata.context': `${ctx.graphBaseUrl}/$metadata#microsoft.graph.uploadSession`,
      uploadUrl: `${origin}/api/v2.0/Users('${mb.id}')/Messages('${item.id}')/AttachmentSessions('${id}')?authtoken=${token}`,
      expirationDateTime,
      nextExpectedRanges: ['0-'],
    },
  };
}

export function isUploadPath(path: string): boolean {
  return path.startsWith('/api/v2.0/');
}

/**
 * The upload URL (concepts/outlook-large-attachments.md, steps 2–3 and "Cancel the upload session"): PUT with
 * Content-Range `bytes {start}-{end}/{total}` in order → 200 and nextExpectedRanges; the last range → 201 with a
 * Location naming the attachment; DELETE → 204. The token in the URL is the authorization.
 */
export function handleUpload(ctx: GraphContext, method: string, url: URL, headers: Record<string, string | undefined>, bytes: Buffer): GraphResponse {
  const m = /AttachmentSessions\('([^']+)'\)$/.exec(decodeURIComponent(url.pathname));
  const session = m ? uploadSessions.get(m[1]) : undefined;
  if (!session || url.searchParams.get('authtoken') !== session.token) throw new GraphHttpError(404, 'ErrorItemNotFound', 'The upload session was not found or has expired.');
  const ms = session.mail;
  const item = ms.items[session.messageId];
  if (!item) {
    uploadSessions.delete(session.id);
    throw new GraphHttpError(404, 'ErrorItemNotFound', 'The message of this upload session no longer exists.');
  }
  const base = url.href.split('/AttachmentSessions(')[0];
  if (method === 'DELETE') {
    uploadSessions.delete(session.id);
    return { status: 204 };
  }
  if (method !== 'PUT') throw methodNotAllowed();
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headers['content-range']?.trim() ?? '');
  if (!range) throw badRequest('ErrorInvalidRequest', 'The Content-Range header is missing or malformed (bytes {start}-{end}/{total}).');
  const [start, end, total] = range.slice(1).map(Number);
  // "You must upload bytes in a file in order": anything but the next expected range is refused.
  if (total !== session.size || start !== session.offset || end < start || end >= total || end - start + 1 !== bytes.length) {
    throw new GraphHttpError(416, 'ErrorInvalidRange', `The range does not match: expected bytes from ${session.offset} of ${session.size}, ${bytes.length} bytes in the body.`);
  }
  // The mailbox's message size limit refuses before 150 MB (issue microsoft-graph-docs #15579: ErrorMessageSizeExceeded after 39 MB).
  if (messageSize(ms, item) + end + 1 > ms.settings.maxMessageSizeBytes) throw messageTooBig();
  chargeUpload(ms, bytes.length);
  session.received.push(Buffer.from(bytes));
  session.offset = end + 1;
  if (session.offset < session.size) {
    return {
      status: 200,
      body: {
        '@odata.context': `${base.replace(/\/Users\(.*$/, '')}/$metadata#Users('${session.upn}')/Messages('${item.id}')/AttachmentSessions/$entity`,
        expirationDateTime: session.expirationDateTime,
        nextExpectedRanges: [String(session.offset)],
      },
    };
  }
  uploadSessions.delete(session.id);
  const content = Buffer.concat(session.received);
  const att: StoredAttachment = {
    id: newAttachmentId(),
    name: session.name,
    contentType: session.contentType,
    size: content.length,
    isInline: session.isInline,
    ...(session.contentId ? { contentId: session.contentId } : {}),
    lastModifiedDateTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    contentBytes: content.toString('base64'),
  };
  addAttachment(ctx.store, ms, item, att);
  return { status: 201, headers: { Location: `${base}/Attachments('${att.id}')` } };
}

/**
 * messages/delta per folder (api-reference/v1.0/api/message-delta.md, concepts/delta-query-messages.md): a message
 * that left the folder — deleted or moved — is `@removed` with reason `deleted`; one moved in is reported as
 * present. Ids follow `Prefer: IdType="ImmutableId"` on each request, next and delta links included.
 */
function delta(ctx: GraphContext, req: GraphRequest, mb: Mailbox, ms: MailState, folder: MailFolder): GraphResponse {
  const prefer = parsePrefer(req.headers['prefer']);
  const pageSize = prefer.maxPageSize ?? ctx.maxPageSize;
  const select = req.query.get('$select');
  validateSelect(parseSelect(select));
  const startsRound = !req.query.get('$skiptoken');
  const seqAtStart = ms.seq;
  const quirks = ctx.deltaQuirks?.(mb) ?? {};
  const p = deltaPage(ctx.store, ms, folder.id, { skiptoken: req.query.get('$skiptoken'), deltatoken: req.query.get('$deltatoken'), select }, pageSize, quirks);
  if (startsRound) ms.roundStartSeq[folder.id] = seqAtStart;
  const selectList = parseSelect(p.select ?? null);
  const immutableId = prefer.immutableId;
  const hidden = new Set(ms.hiddenReturns[folder.id] ?? []);
  const removed = (id: string) => ({ '@odata.type': '#microsoft.graph.message', id, '@removed': { reason: 'deleted' } });
  const value = p.entries.map((e) => {
    if (e.removed) return removed(immutableId ? e.id : (e.restId ?? e.id));
    const item = ctx.store.item(ms, e.id);
    // The A→B→A quirk: an incremental round reports the returned message as removed (mail-store.ts, MailSettings).
    if (hidden.has(e.id) && p.from !== INITIAL_ROUND) return removed(immutableId ? item.id : item.restId);
    return renderMessage(item, { select: selectList, immutableId });
  });
  const link = `${ctx.graphBaseUrl}${req.rawPath}`;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.graphBaseUrl}/$metadata#Collection(message)`, value };
  if (p.nextToken) body['@odata.nextLink'] = `${link}?$skiptoken=${p.nextToken}`;
  else body['@odata.deltaLink'] = `${link}?$deltatoken=${p.deltaToken}`;
  return ok(body, prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${prefer.maxPageSize}` } : undefined);
}

export type { MailState };
