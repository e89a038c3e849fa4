/**
 * Microsoft Graph for mail, as email filing and email sync will use it: the policy's mail folders, the per-folder
 * message delta with every removal confirmed by id, an id-only re-scan of a folder, messages read with what filing
 * needs, received (non-draft) messages created with a sync id and found again by it, and attachments (metadata,
 * content, inline POST under 3 MB or an upload session up to 150 MB) under a per-call size limit.
 *
 * Every request carries `Prefer: IdType="ImmutableId"`, next and delta links included: the header applies only
 * to the request carrying it, and without it a message gets a new id on every move (outlook-immutable-id.md), so
 * a drag between folders would look like a deletion plus a new message.
 *
 * Message delta is per folder and reports a message moved out as `@removed` with reason `deleted`, exactly like a
 * deleted one (delta-query-messages.md). A removal is therefore never a delete by itself: each is confirmed by a
 * GET of the id (404 = gone; 200 = still exists, its parentFolderId says where). Graph also loses track of a
 * message moved A→B→A between two rounds (reported removed from A, then never again: microsoft-graph-docs-contrib
 * #72); the confirmation finds it back in A, and the id-only re-scan is the backstop for what a round misses.
 *
 * Graph errors are thrown as the client raised them (or shaped like them) and classified by errors.ts; a 429 —
 * also Outlook's upload budget of 150 MB per 5 minutes per mailbox — pauses the mailbox's gate and becomes the
 * activity's retry delay there, so this file keeps no timer of its own.
 */
import { ResponseType, type Client } from '@microsoft/microsoft-graph-client';
import { attachmentSkipReason } from '../../domain/email-records';
import { gated, sendBatch, type GraphSubRequest, type GraphSubResponse } from './batch';
import { IMMUTABLE_IDS, SYNC_ID_PROPERTY } from './contacts-api';
import { classifyGraphError, classifySubResponse } from './errors';

const enc = encodeURIComponent;
const q = (s: string) => s.replace(/'/g, "''");
const PREFER = { Prefer: IMMUTABLE_IDS };

export const MiB = 1024 * 1024;
/** A file attachment under this size goes in one POST; from it up to UPLOAD_SESSION_LIMIT through an upload session (outlook-large-attachments.md). */
export const INLINE_ATTACHMENT_LIMIT = 3 * MiB;
export const UPLOAD_SESSION_LIMIT = 150 * MiB;
/** Bytes per PUT of an upload session: "less than 4 MB" per request (outlook-large-attachments.md). */
export const UPLOAD_CHUNK_BYTES = 3.5 * MiB;
/** Messages per page of the id-only re-scan (Graph's largest $top for messages). */
const RESCAN_PAGE = 1000;

/** MAPI properties honoured only in the create request (research §7; mguessan/davmail GraphExchangeSession). */
export const PR_MESSAGE_FLAGS = 'Integer 0x0E07';
export const PR_MESSAGE_DELIVERY_TIME = 'SystemTime 0x0E06';
export const PR_CLIENT_SUBMIT_TIME = 'SystemTime 0x0039';
export const PR_IN_REPLY_TO_ID = 'String 0x1042';
export const PR_INTERNET_REFERENCES = 'String 0x1039';
const MSGFLAG_READ = 0x1;

/** What a message read for filing expands: the sync id, and In-Reply-To/References as cxsync writes them. */
const MESSAGE_EXT = `singleValueExtendedProperties($filter=id eq '${SYNC_ID_PROPERTY}' or id eq '${PR_IN_REPLY_TO_ID}' or id eq '${PR_INTERNET_REFERENCES}')`;
const MESSAGE_FIELDS = [
  'id',
  'parentFolderId',
  'changeKey',
  'subject',
  'body',
  'from',
  'sender',
  'replyTo',
  'toRecipients',
  'ccRecipients',
  'bccRecipients',
  'receivedDateTime',
  'sentDateTime',
  'internetMessageId',
  'conversationId',
  // Only returned when selected (message.md); carries In-Reply-To and References of received mail.
  'internetMessageHeaders',
  'hasAttachments',
  'isDraft',
  'isRead',
].join(',');
// conversationId and receivedDateTime let filing spot replies without reading every message (email-filing.ts).
const DELTA_FIELDS = 'id,parentFolderId,changeKey,conversationId,receivedDateTime';
/** Base attachment properties only: contentBytes stays out of a listing (one attachment can be 150 MB). */
const ATTACHMENT_FIELDS = 'id,name,contentType,size,isInline,lastModifiedDateTime';

// ---- shapes -------------------------------------------------------------------------------------------

export interface MailAddress {
  address: string;
  name: string | null;
}

/** A message as filing reads it. */
export interface MailMessage {
  id: string;
  parentFolderId: string;
  changeKey: string | null;
  subject: string;
  body: { contentType: 'text' | 'html'; content: string };
  from: MailAddress | null;
  /** Differs from `from` for a delegate or shared mailbox. */
  sender: MailAddress | null;
  replyTo: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  bcc: MailAddress[];
  receivedDateTime: string | null;
  sentDateTime: string | null;
  internetMessageId: string | null;
  conversationId: string | null;
  /** The In-Reply-To header of received mail, else the PR_IN_REPLY_TO_ID cxsync set when it created the message. */
  inReplyTo: string | null;
  references: string[];
  hasAttachments: boolean;
  isDraft: boolean;
  isRead: boolean;
  /** The sync id cxsync stamped on a message it created. */
  syncId: string | null;
}

/** A message to create as received mail (not a draft) in a folder. */
export interface NewMailMessage {
  subject: string;
  body: { contentType: 'text' | 'html'; content: string };
  from: MailAddress;
  sender?: MailAddress;
  to: MailAddress[];
  cc?: MailAddress[];
  bcc?: MailAddress[];
  replyTo?: MailAddress[];
  /** ISO instants; `sentDateTime` defaults to `receivedDateTime`. */
  receivedDateTime: string;
  sentDateTime?: string;
  /** Defaults to read: a copy of mail the CRM already holds is not news. */
  isRead?: boolean;
  internetMessageId?: string;
  inReplyTo?: string;
  references?: string[];
}

/** Where a message reported by a folder's delta is now. */
export type MessageState =
  | { id: string; state: 'present'; changeKey?: string; conversationId?: string; receivedDateTime?: string }
  /** Still in the mailbox, in another folder (Deleted Items included: the caller decides what a soft delete means). */
  | { id: string; state: 'moved'; parentFolderId: string }
  /** 404 for the immutable id: deleted, purged, or moved out of the mailbox (an archive mailbox). */
  | { id: string; state: 'gone' };

export interface DeltaMessage {
  id: string;
  parentFolderId?: string;
  changeKey?: string;
  conversationId?: string;
  receivedDateTime?: string;
  '@removed'?: { reason: string };
}

export interface MessageDeltaPage {
  items: DeltaMessage[];
  nextLink?: string;
  deltaLink?: string;
}

export interface MessageDeltaRound {
  /** One entry per message, in the order first reported; removals already confirmed by id. */
  changes: MessageState[];
  /** Where the next round starts. */
  deltaLink: string;
  pages: number;
}

export type AttachmentKind = 'file' | 'item' | 'reference';

export interface AttachmentInfo {
  id: string;
  name: string;
  contentType: string | null;
  /** Bytes as Graph reports them. */
  size: number;
  isInline: boolean;
  kind: AttachmentKind;
}

export interface NewAttachment {
  name: string;
  contentType?: string;
  content: Buffer;
  isInline?: boolean;
  contentId?: string;
}

export type DownloadResult = { state: 'downloaded'; content: Buffer } | { state: 'skipped'; reason: string };
export type AddAttachmentResult = { state: 'added'; id: string | null; via: 'post' | 'upload-session' } | { state: 'skipped'; reason: string };

/** Where an upload session stands: enough to go on after a 429 or a lost connection. */
export interface UploadProgress {
  uploadUrl: string;
  /** The next byte the session expects. */
  nextOffset: number;
  size: number;
}

/**
 * An upload session that stopped part-way (a 429 of the upload budget, a 5xx, the network): status, code and
 * Retry-After are the failure's, so classifyGraphError/toActivityFailure treat it as that failure; `progress`
 * lets the next attempt resume where this one stopped instead of uploading the bytes again.
 */
export class UploadInterrupted extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(
    cause: { status: number; code: string; message: string; retryAfterMs?: number },
    readonly progress: UploadProgress,
  ) {
    super(`upload session stopped at byte ${progress.nextOffset} of ${progress.size}: ${cause.message}`);
    this.statusCode = cause.status;
    this.code = cause.code;
    this.headers = cause.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(cause.retryAfterMs / 1000)) } : {};
  }
}

// ---- pure helpers -------------------------------------------------------------------------------------

function address(r: unknown): MailAddress | null {
  const e = (r as { emailAddress?: { address?: string | null; name?: string | null } } | null | undefined)?.emailAddress;
  if (!e?.address) return null;
  return { address: e.address, name: e.name ? e.name : null };
}
const addresses = (list: unknown): MailAddress[] => (Array.isArray(list) ? list.map(address).filter((a): a is MailAddress => a !== null) : []);
const recipient = (a: MailAddress) => ({ emailAddress: { address: a.address, ...(a.name ? { name: a.name } : {}) } });

/** Message ids of an In-Reply-To or References value: `<a@b> <c@d>` → ['<a@b>', '<c@d>']. */
export function messageIds(value: string | null | undefined): string[] {
  if (!value) return [];
  const bracketed = value.match(/<[^<>\s]+>/g);
  return bracketed ?? value.split(/\s+/).filter(Boolean);
}

function extValue(raw: { singleValueExtendedProperties?: Array<{ id: string; value: string }> | null }, id: string): string | null {
  return (raw.singleValueExtendedProperties ?? []).find((p) => p.id.toLowerCase() === id.toLowerCase())?.value ?? null;
}

function headerValue(raw: { internetMessageHeaders?: Array<{ name: string; value: string }> | null }, name: string): string | null {
  return (raw.internetMessageHeaders ?? []).find((h) => h.name.toLowerCase() === name.toLowerCase())?.value ?? null;
}

/** A Graph message (read with MESSAGE_FIELDS and MESSAGE_EXT) as filing uses it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function toMailMessage(raw: Record<string, any>): MailMessage {
  const body = raw.body as { contentType?: string; content?: string } | undefined;
  const inReplyTo = messageIds(headerValue(raw, 'In-Reply-To'))[0] ?? messageIds(extValue(raw, PR_IN_REPLY_TO_ID))[0] ?? null;
  const refs = headerValue(raw, 'References') ?? extValue(raw, PR_INTERNET_REFERENCES);
  return {
    id: String(raw.id),
    parentFolderId: String(raw.parentFolderId ?? ''),
    changeKey: raw.changeKey ?? null,
    subject: raw.subject ?? '',
    body: { contentType: String(body?.contentType ?? 'text').toLowerCase() === 'html' ? 'html' : 'text', content: body?.content ?? '' },
    from: address(raw.from),
    sender: address(raw.sender),
    replyTo: addresses(raw.replyTo),
    to: addresses(raw.toRecipients),
    cc: addresses(raw.ccRecipients),
    bcc: addresses(raw.bccRecipients),
    receivedDateTime: raw.receivedDateTime ?? null,
    sentDateTime: raw.sentDateTime ?? null,
    internetMessageId: raw.internetMessageId ?? null,
    conversationId: raw.conversationId ?? null,
    inReplyTo,
    references: messageIds(refs),
    hasAttachments: raw.hasAttachments === true,
    isDraft: raw.isDraft === true,
    isRead: raw.isRead === true,
    syncId: extValue(raw, SYNC_ID_PROPERTY),
  };
}

/**
 * The create body of a received message: PR_MESSAGE_FLAGS without MSGFLAG_UNSENT (else Graph makes a draft) and
 * the delivery and submit times as MAPI properties (the JSON dates are ignored at create), all of which Graph
 * takes only in the create request; In-Reply-To and References as their MAPI properties (JSON headers are
 * ignored too); and the sync id, the only way to find the message again after a lost answer.
 */
export function newMessageBody(m: NewMailMessage, syncId: string): Record<string, unknown> {
  const ext: Array<{ id: string; value: string }> = [
    { id: PR_MESSAGE_FLAGS, value: String(m.isRead === false ? 0 : MSGFLAG_READ) },
    { id: PR_MESSAGE_DELIVERY_TIME, value: new Date(m.receivedDateTime).toISOString() },
    { id: PR_CLIENT_SUBMIT_TIME, value: new Date(m.sentDateTime ?? m.receivedDateTime).toISOString() },
    { id: SYNC_ID_PROPERTY, value: syncId },
  ];
  if (m.inReplyTo) ext.push({ id: PR_IN_REPLY_TO_ID, value: m.inReplyTo });
  if (m.references?.length) ext.push({ id: PR_INTERNET_REFERENCES, value: m.references.join(' ') });
  return {
    subject: m.subject,
    body: { contentType: m.body.contentType, content: m.body.content },
    from: recipient(m.from),
    sender: recipient(m.sender ?? m.from),
    toRecipients: m.to.map(recipient),
    ccRecipients: (m.cc ?? []).map(recipient),
    bccRecipients: (m.bcc ?? []).map(recipient),
    ...(m.replyTo?.length ? { replyTo: m.replyTo.map(recipient) } : {}),
    ...(m.internetMessageId ? { internetMessageId: m.internetMessageId } : {}),
    singleValueExtendedProperties: ext,
  };
}

/**
 * The last report of each message in a round (the same message can appear more than once: delta-query-overview),
 * in the order first seen, split into those reported present and those reported removed.
 */
export function collapseDelta(items: DeltaMessage[]): { present: Map<string, DeltaMessage>; removed: string[]; order: string[] } {
  const last = new Map<string, DeltaMessage>();
  for (const it of items) last.set(it.id, it);
  const present = new Map<string, DeltaMessage>();
  const removed: string[] = [];
  for (const [id, it] of last) {
    if (it['@removed']) removed.push(id);
    else present.set(id, it);
  }
  return { present, removed, order: [...last.keys()] };
}

/** What the GET confirming a removal says: 404 gone; 200 in this folder (the A→B→A case) present; else moved. */
export function removalState(folderId: string, id: string, answer: { status: number; parentFolderId?: string; notFound: boolean }): MessageState | undefined {
  if (answer.status >= 200 && answer.status < 300) {
    if (!answer.parentFolderId || answer.parentFolderId === folderId) return { id, state: 'present' };
    return { id, state: 'moved', parentFolderId: answer.parentFolderId };
  }
  return answer.notFound ? { id, state: 'gone' } : undefined;
}

/** How an attachment of `size` bytes is sent, or why it is not (the policy's limit, null = none; then Graph's). */
export function attachmentRoute(size: number, limitBytes: number | null): { via: 'post' | 'upload-session' } | { skipped: string } {
  const policy = attachmentSkipReason(size, limitBytes);
  if (policy) return { skipped: policy };
  if (size > UPLOAD_SESSION_LIMIT) return { skipped: `${size} bytes is over Graph's attachment limit of ${UPLOAD_SESSION_LIMIT} bytes (150 MB)` };
  return { via: size < INLINE_ATTACHMENT_LIMIT ? 'post' : 'upload-session' };
}

/** The byte ranges (inclusive ends, as Content-Range writes them) of an upload from `from`. */
export function uploadRanges(size: number, from = 0, chunk = UPLOAD_CHUNK_BYTES): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (let start = from; start < size; start += chunk) out.push({ start, end: Math.min(size, start + chunk) - 1 });
  return out;
}

export function attachmentKind(odataType: unknown): AttachmentKind {
  const t = String(odataType ?? '').toLowerCase();
  if (t.endsWith('itemattachment')) return 'item';
  if (t.endsWith('referenceattachment')) return 'reference';
  return 'file';
}

const isMessageTooBig = (code: string) => code.toLowerCase() === 'errormessagesizeexceeded';

function throwSub(res: GraphSubResponse): never {
  const g = classifySubResponse(res);
  throw Object.assign(new Error(g.message), { statusCode: g.status, code: g.code, headers: res.headers });
}

/** A raw (ResponseType.RAW) answer that is not 2xx, shaped like the client's GraphError for classifyGraphError. */
async function rawError(res: Response): Promise<Error & { statusCode: number; code: string; headers: Headers }> {
  let code = '';
  let message = `status ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? '';
    message = body.error?.message ?? message;
  } catch {
    /* no JSON body */
  }
  return Object.assign(new Error(message), { statusCode: res.status, code, headers: res.headers });
}

// ---- the client ---------------------------------------------------------------------------------------

export class MailApi {
  /** `pageSize`: messages per delta page and per re-scan page (tests use small pages to cross page boundaries). */
  constructor(
    readonly client: Client,
    readonly pageSize = 100,
    readonly uploadChunkBytes = UPLOAD_CHUNK_BYTES,
    /** Ids per page of the re-scan: only ids travel, so pages are larger than delta's (54 → 9 requests for 5,000). */
    readonly rescanPageSize = RESCAN_PAGE,
  ) {}

  // ---- folders ------------------------------------------------------------------------------------

  /**
   * The ids of the named folders under `parent` (an id or a well-known name), created when missing. Names compare
   * case-insensitively, as Exchange does. A create answered ErrorFolderExists (matched on the code: Graph has
   * answered it as 400 and as 409) means another worker created it meanwhile, or a hidden folder holds the name:
   * the folder is looked up again, hidden folders included.
   */
  async ensureMailFolders(upn: string, names: readonly string[], parent = 'msgfolderroot'): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let existing = await this.childFolders(upn, parent, false);
    for (const name of names) {
      const found = existing.find((f) => f.displayName.toLowerCase() === name.toLowerCase());
      if (found) {
        out.set(name, found.id);
        continue;
      }
      try {
        const created = await gated(upn, () => this.client.api(`/users/${enc(upn)}/mailFolders/${enc(parent)}/childFolders`).headers(PREFER).post({ displayName: name }));
        out.set(name, created.id as string);
        existing = [...existing, { id: created.id as string, displayName: name }];
      } catch (err) {
        if (classifyGraphError(err).code.toLowerCase() !== 'errorfolderexists') throw err;
        existing = await this.childFolders(upn, parent, true);
        const again = existing.find((f) => f.displayName.toLowerCase() === name.toLowerCase());
        if (!again) throw err; // not visible yet: the activity's retry looks again
        out.set(name, again.id);
      }
    }
    return out;
  }

  /** A well-known folder's id (inbox, deleteditems, …): v1.0 returns no wellKnownName, so compare ids. */
  async wellKnownFolderId(upn: string, name: string): Promise<string> {
    const f = await gated(upn, () => this.client.api(`/users/${enc(upn)}/mailFolders/${enc(name)}`).headers(PREFER).select('id').get());
    return f.id as string;
  }

  private async childFolders(upn: string, parent: string, includeHidden: boolean): Promise<Array<{ id: string; displayName: string }>> {
    const out: Array<{ id: string; displayName: string }> = [];
    let url: string | undefined =
      `/users/${enc(upn)}/mailFolders/${enc(parent)}/childFolders?$select=id,displayName&$top=250${includeHidden ? '&includeHiddenFolders=true' : ''}`;
    while (url) {
      const page: { value?: Array<{ id: string; displayName: string }>; '@odata.nextLink'?: string } = await gated(upn, () => this.client.api(url!).headers(PREFER).get());
      out.push(...(page.value ?? []));
      url = page['@odata.nextLink'];
    }
    return out;
  }

  // ---- delta and re-scan -----------------------------------------------------------------------------

  /** One page: the first of a new round when `link` is undefined, else the saved nextLink or deltaLink. */
  async deltaPage(upn: string, folderId: string, link: string | undefined): Promise<MessageDeltaPage> {
    // $select goes on the first request only: Graph encodes it into the links (delta-query-messages.md).
    const url = link ?? `/users/${enc(upn)}/mailFolders/${enc(folderId)}/messages/delta?$select=${DELTA_FIELDS}`;
    const res = await gated(upn, () => this.client.api(url).header('Prefer', `odata.maxpagesize=${this.pageSize}, ${IMMUTABLE_IDS}`).get());
    return { items: res.value ?? [], nextLink: res['@odata.nextLink'], deltaLink: res['@odata.deltaLink'] };
  }

  /**
   * A whole round from `link` (a saved deltaLink; none: an initial round, which lists the folder's messages): every
   * page, each message once, and each removal confirmed by id. A link Graph no longer knows fails as
   * 'sync-state-expired' (errors.ts): start again without a link, and re-scan, since removals in between are lost.
   */
  async deltaRound(upn: string, folderId: string, link?: string): Promise<MessageDeltaRound> {
    const items: DeltaMessage[] = [];
    let next: string | undefined = link;
    let deltaLink: string | undefined;
    let pages = 0;
    do {
      const page = await this.deltaPage(upn, folderId, next);
      pages++;
      items.push(...page.items);
      next = page.nextLink;
      deltaLink = page.deltaLink ?? deltaLink;
    } while (next);
    if (!deltaLink) throw new Error('message delta round ended without a deltaLink');
    const { present, removed, order } = collapseDelta(items);
    const confirmed = await this.confirmRemovals(upn, folderId, removed);
    const changes = order.map((id): MessageState => {
      const p = present.get(id);
      return p
        ? { id, state: 'present', ...(p.changeKey ? { changeKey: p.changeKey } : {}), ...(p.conversationId ? { conversationId: p.conversationId } : {}), ...(p.receivedDateTime ? { receivedDateTime: p.receivedDateTime } : {}) }
        : confirmed.get(id)!;
    });
    return { changes, deltaLink, pages };
  }

  /** Where each removed message is now, by a GET of its immutable id (20 per batch). */
  async confirmRemovals(upn: string, folderId: string, ids: readonly string[]): Promise<Map<string, MessageState>> {
    const out = new Map<string, MessageState>();
    for (let i = 0; i < ids.length; i += 20) {
      const chunk = ids.slice(i, i + 20);
      const answers = await sendBatch(this.client, upn, chunk.map((id) => this.whereRequest(upn, id)));
      answers.forEach((a, j) => {
        // Only an item's 404 means gone: a missing mailbox answers 404 too, and must not read as "all mail deleted".
        const notFound = a.status === 404 && classifySubResponse(a).kind === 'not-found';
        const state = removalState(folderId, chunk[j], { status: a.status, notFound, parentFolderId: (a.body as { parentFolderId?: string } | undefined)?.parentFolderId });
        if (!state) throwSub(a);
        out.set(chunk[j], state);
      });
    }
    return out;
  }

  /** The ids of every message in the folder, all pages: the backstop for what a delta round never reports. */
  async folderMessageIds(upn: string, folderId: string): Promise<string[]> {
    const out: string[] = [];
    let url: string | undefined = `/users/${enc(upn)}/mailFolders/${enc(folderId)}/messages?$select=id&$top=${Math.min(this.rescanPageSize, RESCAN_PAGE)}`;
    while (url) {
      const page: { value?: Array<{ id: string }>; '@odata.nextLink'?: string } = await gated(upn, () => this.client.api(url!).headers(PREFER).get());
      for (const m of page.value ?? []) out.push(m.id);
      url = page['@odata.nextLink'];
    }
    return out;
  }

  // ---- messages ------------------------------------------------------------------------------------

  /** Messages with what filing needs, 20 per batch; undefined for those gone (404). */
  async getMessages(upn: string, ids: readonly string[]): Promise<Map<string, MailMessage | undefined>> {
    const out = new Map<string, MailMessage | undefined>();
    for (let i = 0; i < ids.length; i += 20) {
      const chunk = ids.slice(i, i + 20);
      const answers = await sendBatch(this.client, upn, chunk.map((id) => this.getRequest(upn, id)));
      answers.forEach((a, j) => {
        if (a.status >= 200 && a.status < 300) out.set(chunk[j], toMailMessage(a.body as Record<string, unknown>));
        else if (a.status === 404 && classifySubResponse(a).kind === 'not-found') out.set(chunk[j], undefined);
        else throwSub(a);
      });
    }
    return out;
  }

  async getMessage(upn: string, id: string): Promise<MailMessage | undefined> {
    return (await this.getMessages(upn, [id])).get(id);
  }

  /**
   * Creates `message` in the folder as received mail stamped with `syncId`. Graph has no idempotency key for
   * messages, so a retry (`retry`: an earlier attempt may have created it and lost the answer) first looks the
   * sync id up in the whole mailbox (the user may have moved it since) and returns what it finds.
   */
  async createMessage(upn: string, folderId: string, message: NewMailMessage, syncId: string, opts: { retry?: boolean } = {}): Promise<{ id: string; created: boolean }> {
    if (opts.retry) {
      const found = await this.findBySyncId(upn, syncId);
      if (found) return { id: found, created: false };
    }
    const req = this.createRequest(upn, folderId, message, syncId);
    const res = await gated(upn, () => this.client.api(req.url).headers(req.headers!).post(req.body));
    return { id: res.id as string, created: true };
  }

  /** The message cxsync created with `syncId`, anywhere in the mailbox. */
  async findBySyncId(upn: string, syncId: string): Promise<string | undefined> {
    const req = this.findBySyncIdRequest(upn, syncId);
    const res = await gated(upn, () => this.client.api(req.url).headers(req.headers!).get());
    return (res.value as Array<{ id: string }> | undefined)?.[0]?.id;
  }

  // ---- attachments ---------------------------------------------------------------------------------

  /** The message's attachments without their content. */
  async listAttachments(upn: string, messageId: string): Promise<AttachmentInfo[]> {
    const res = await gated(upn, () => this.client.api(`/users/${enc(upn)}/messages/${enc(messageId)}/attachments?$select=${ATTACHMENT_FIELDS}`).headers(PREFER).get());
    return ((res.value ?? []) as Array<Record<string, unknown>>).map((a) => ({
      id: String(a.id),
      name: String(a.name ?? ''),
      contentType: (a.contentType as string | null | undefined) ?? null,
      size: Number(a.size ?? 0),
      isInline: a.isInline === true,
      kind: attachmentKind(a['@odata.type']),
    }));
  }

  /**
   * One attachment's bytes, or why not: over `limitBytes` (the policy's limit, null = none) it is skipped before
   * any byte is read, so an oversized file never fails the message; item and link attachments have no file bytes.
   */
  async downloadAttachment(upn: string, messageId: string, att: AttachmentInfo, limitBytes: number | null): Promise<DownloadResult> {
    const over = attachmentSkipReason(att.size, limitBytes);
    if (over) return { state: 'skipped', reason: over };
    if (att.kind !== 'file') return { state: 'skipped', reason: `an ${att.kind} attachment has no file content` };
    const res = await gated(upn, () => this.client.api(`/users/${enc(upn)}/messages/${enc(messageId)}/attachments/${enc(att.id)}`).headers(PREFER).get());
    return { state: 'downloaded', content: Buffer.from(String(res.contentBytes ?? ''), 'base64') };
  }

  /**
   * Adds a file attachment: in one POST under 3 MB, through an upload session from 3 to 150 MB. Skipped (never
   * thrown) when over `limitBytes` or Graph's 150 MB, or when the mailbox's message size limit refuses it
   * (ErrorMessageSizeExceeded). An upload session that stops part-way throws UploadInterrupted (classified as its
   * cause, Retry-After included); pass its `progress` as `resume` to go on from the next expected byte.
   */
  async addAttachment(
    upn: string,
    messageId: string,
    file: NewAttachment,
    limitBytes: number | null,
    opts: { resume?: UploadProgress } = {},
  ): Promise<AddAttachmentResult> {
    const size = file.content.length;
    const route = attachmentRoute(size, limitBytes);
    if ('skipped' in route) return { state: 'skipped', reason: route.skipped };
    if (route.via === 'post') {
      try {
        const res = await gated(upn, () =>
          this.client
            .api(`/users/${enc(upn)}/messages/${enc(messageId)}/attachments`)
            .headers(PREFER)
            .post({
              '@odata.type': '#microsoft.graph.fileAttachment',
              name: file.name,
              contentType: file.contentType ?? 'application/octet-stream',
              contentBytes: file.content.toString('base64'),
              ...(file.isInline ? { isInline: true } : {}),
              ...(file.contentId ? { contentId: file.contentId } : {}),
            }),
        );
        return { state: 'added', id: (res.id as string) ?? null, via: 'post' };
      } catch (err) {
        if (isMessageTooBig(classifyGraphError(err).code)) return { state: 'skipped', reason: mailboxLimitReason(size) };
        throw err;
      }
    }
    return this.uploadLarge(upn, messageId, file, opts.resume);
  }

  private async uploadLarge(upn: string, messageId: string, file: NewAttachment, resume: UploadProgress | undefined): Promise<AddAttachmentResult> {
    const size = file.content.length;
    if (resume && resume.size !== size) throw new Error(`the upload to resume is of ${resume.size} bytes, this file has ${size}`);
    let session: UploadProgress;
    if (resume) session = { ...resume };
    else {
      try {
        session = await this.createUploadSession(upn, messageId, file);
      } catch (err) {
        if (isMessageTooBig(classifyGraphError(err).code)) return { state: 'skipped', reason: mailboxLimitReason(size) };
        throw err;
      }
    }
    for (const r of uploadRanges(size, session.nextOffset, this.uploadChunkBytes)) {
      let res: Response;
      try {
        res = await gated(upn, async () => {
          // The upload URL is pre-authenticated: on Graph it is outlook.office.com, to which the client sends no token.
          const answer = (await this.client
            .api(session.uploadUrl)
            .headers({ 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${r.start}-${r.end}/${size}`, ...PREFER })
            .responseType(ResponseType.RAW)
            .put(file.content.subarray(r.start, r.end + 1))) as Response;
          // Thrown inside the gate, so a 429 pauses the mailbox for its Retry-After like any other.
          if (!answer.ok) throw await rawError(answer);
          return answer;
        });
      } catch (err) {
        const g = classifyGraphError(err);
        if (isMessageTooBig(g.code)) {
          await this.cancelUpload(upn, session.uploadUrl);
          return { state: 'skipped', reason: mailboxLimitReason(size) };
        }
        // An expired session (or one the server forgot) on resume: start a new one from byte 0.
        if (resume && r.start === resume.nextOffset && g.kind === 'not-found') return this.uploadLarge(upn, messageId, file, undefined);
        throw new UploadInterrupted(g, session);
      }
      session.nextOffset = r.end + 1;
      if (res.status === 201) {
        const location = res.headers.get('location') ?? '';
        return { state: 'added', id: /Attachments\('([^']+)'\)/i.exec(location)?.[1] ?? null, via: 'upload-session' };
      }
      await res.body?.cancel();
    }
    throw new Error(`the upload session took all ${size} bytes without answering 201`);
  }

  private async createUploadSession(upn: string, messageId: string, file: NewAttachment): Promise<UploadProgress> {
    const res = await gated(upn, () =>
      this.client
        .api(`/users/${enc(upn)}/messages/${enc(messageId)}/attachments/createUploadSession`)
        .headers(PREFER)
        .post({
          AttachmentItem: {
            attachmentType: 'file',
            name: file.name,
            size: file.content.length,
            ...(file.contentType ? { contentType: file.contentType } : {}),
            ...(file.isInline ? { isInline: true } : {}),
            ...(file.contentId ? { contentId: file.contentId } : {}),
          },
        }),
    );
    const first = Number(String((res.nextExpectedRanges as string[] | undefined)?.[0] ?? '0').split('-')[0]) || 0;
    return { uploadUrl: res.uploadUrl as string, nextOffset: first, size: file.content.length };
  }

  /** Best effort: an abandoned session expires by itself anyway. */
  private async cancelUpload(upn: string, uploadUrl: string): Promise<void> {
    try {
      await gated(upn, () => this.client.api(uploadUrl).headers(PREFER).responseType(ResponseType.RAW).delete());
    } catch {
      /* expires on its own */
    }
  }

  // ---- single-item requests, for JSON batches ------------------------------------------------------

  createRequest(upn: string, folderId: string, message: NewMailMessage, syncId: string): GraphSubRequest {
    return { method: 'POST', url: `/users/${enc(upn)}/mailFolders/${enc(folderId)}/messages`, headers: PREFER, body: newMessageBody(message, syncId) };
  }

  findBySyncIdRequest(upn: string, syncId: string): GraphSubRequest {
    const filter = `singleValueExtendedProperties/Any(ep: ep/id eq '${SYNC_ID_PROPERTY}' and ep/value eq '${q(syncId)}')`;
    return { method: 'GET', url: `/users/${enc(upn)}/messages?$filter=${enc(filter)}&$select=id,parentFolderId`, headers: PREFER };
  }

  getRequest(upn: string, id: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/messages/${enc(id)}?$select=${MESSAGE_FIELDS}&$expand=${enc(MESSAGE_EXT)}`, headers: PREFER };
  }

  /** Where a message is now: the confirmation of a delta removal. */
  whereRequest(upn: string, id: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/messages/${enc(id)}?$select=id,parentFolderId`, headers: PREFER };
  }
}

function mailboxLimitReason(size: number): string {
  return `${size} bytes is over the mailbox's message size limit (ErrorMessageSizeExceeded)`;
}
