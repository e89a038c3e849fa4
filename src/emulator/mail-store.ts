/**
 * Mail folders, messages and attachments of a mailbox. The mail state is kept on the mailbox object (so
 * state.json saves it) in a Mailbox-shaped record of its own, so the store's item, move and delta-round code
 * (Store.createItem/moveItem/deleteItem, deltaPage) works on messages exactly as on contacts, while contact
 * routes, contact delta and the contact admin API never see a message.
 */
import crypto from 'node:crypto';
import { GraphHttpError, badRequest, notFound } from './errors';
import { newItemId, type ExtendedProperty, type Folder, type Mailbox, type Store, type StoredItem } from './store';

export interface MailFolder extends Folder {
  /** The well-known name (inbox, drafts, …) of a distinguished folder; v1.0 does not return it, it only accepts it in paths. */
  wellKnownName?: string;
  /** Settable only at creation (user-post-mailfolders.md). */
  isHidden: boolean;
}

export interface StoredAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
  contentId?: string;
  lastModifiedDateTime: string;
  /** base64, as Graph carries it in contentBytes. */
  contentBytes: string;
}

/** Per-mailbox limits, changeable through the admin API (setMailSettings). */
export interface MailSettings {
  /**
   * The mailbox's message size limit, attachments included. Exchange Online's default is 35 MB, an administrator
   * can raise it to 150 MB (attachment-createuploadsession.md, the tip on message size limits).
   */
  maxMessageSizeBytes: number;
  /** Outlook's per app and mailbox upload budget: 150 MB (PATCH, POST, PUT) in 5 minutes (throttling-limits.md, "Limits per mailbox"). */
  uploadBudgetBytes: number;
  uploadWindowMs: number;
  /**
   * The A→B→A quirk of message delta with immutable ids (microsoft-graph-docs-contrib issue #72, alcionai/corso
   * #3755): a message moved out of a folder and back before the folder's next delta round is reported there as
   * `@removed` and not reported again until it changes. On by default, as Graph does it.
   */
  moveBackReportedRemoved: boolean;
}

export const MB = 1024 * 1024;
export const defaultMailSettings = (): MailSettings => ({
  maxMessageSizeBytes: 35 * MB,
  uploadBudgetBytes: 150 * MB,
  uploadWindowMs: 5 * 60 * 1000,
  moveBackReportedRemoved: true,
});

/** A Mailbox-shaped record so the store's item and delta code applies to messages; `folders` are mail folders. */
export interface MailState extends Mailbox {
  folders: Record<string, MailFolder>;
  wellKnown: Record<string, string>;
  attachments: Record<string, StoredAttachment[]>;
  settings: MailSettings;
  /** Per folder: the sequence number at which its last delta round started (for the A→B→A quirk). */
  roundStartSeq: Record<string, number>;
  /** Per folder: messages that came back before a round saw them leave; reported as removed (the quirk). */
  hiddenReturns: Record<string, string[]>;
}

/**
 * Distinguished folders, by the well-known names mailfolder.md lists ("Use well-known folder names"): those
 * under msgfolderroot are what /mailFolders lists; the others are reachable by name but sit elsewhere in the
 * mailbox (Recoverable Items, the search folders root) or are hidden.
 */
const WELL_KNOWN: Array<{ name: string; displayName: string; parent: 'msgfolderroot' | 'root' | 'syncissues'; hidden?: boolean }> = [
  { name: 'inbox', displayName: 'Inbox', parent: 'msgfolderroot' },
  { name: 'drafts', displayName: 'Drafts', parent: 'msgfolderroot' },
  { name: 'sentitems', displayName: 'Sent Items', parent: 'msgfolderroot' },
  { name: 'deleteditems', displayName: 'Deleted Items', parent: 'msgfolderroot' },
  { name: 'archive', displayName: 'Archive', parent: 'msgfolderroot' },
  { name: 'junkemail', displayName: 'Junk Email', parent: 'msgfolderroot' },
  { name: 'outbox', displayName: 'Outbox', parent: 'msgfolderroot' },
  { name: 'conversationhistory', displayName: 'Conversation History', parent: 'msgfolderroot' },
  { name: 'syncissues', displayName: 'Sync Issues', parent: 'msgfolderroot' },
  { name: 'conflicts', displayName: 'Conflicts', parent: 'syncissues' },
  { name: 'localfailures', displayName: 'Local Failures', parent: 'syncissues' },
  { name: 'serverfailures', displayName: 'Server Failures', parent: 'syncissues' },
  { name: 'clutter', displayName: 'Clutter', parent: 'msgfolderroot', hidden: true },
  { name: 'scheduled', displayName: 'Scheduled', parent: 'msgfolderroot', hidden: true },
  { name: 'searchfolders', displayName: 'Finder', parent: 'root' },
  { name: 'recoverableitemsdeletions', displayName: 'Deletions', parent: 'root' },
];

type MailboxWithMail = Mailbox & { mail?: MailState };

export function mailState(store: Store, mb: Mailbox): MailState {
  const m = mb as MailboxWithMail;
  if (m.mail) return m.mail;
  const rootId = newItemId();
  const msgRootId = newItemId();
  const state: MailState = {
    id: mb.id,
    upn: mb.upn,
    displayName: mb.displayName,
    timeZone: mb.timeZone,
    incarnation: mb.incarnation,
    seq: 0,
    rootFolderId: msgRootId,
    // Not a contact mailbox: no default contact folder (Store.folder's 'contacts' name finds nothing here).
    defaultContactFolderId: '',
    folders: { [msgRootId]: { id: msgRootId, displayName: 'Top of Information Store', parentFolderId: rootId, isHidden: false, wellKnownName: 'msgfolderroot' } },
    wellKnown: { msgfolderroot: msgRootId },
    items: {},
    entries: {},
    rounds: {},
    nextRound: 1,
    attachments: {},
    settings: defaultMailSettings(),
    roundStartSeq: {},
    hiddenReturns: {},
  };
  for (const w of WELL_KNOWN) {
    const id = newItemId();
    const parent = w.parent === 'root' ? rootId : state.wellKnown[w.parent];
    state.folders[id] = { id, displayName: w.displayName, parentFolderId: parent, isHidden: !!w.hidden, wellKnownName: w.name };
    state.wellKnown[w.name] = id;
  }
  m.mail = state;
  store.changed();
  return state;
}

// ---- folders ---------------------------------------------------------------------------------------

/** By id or well-known name (case-insensitive, locale-independent: mailfolder.md). */
export function mailFolder(ms: MailState, idOrName: string): MailFolder {
  const f = ms.folders[idOrName] ?? ms.folders[ms.wellKnown[idOrName.toLowerCase()] ?? ''];
  if (!f) throw notFound();
  return f;
}

export function childFolders(ms: MailState, parentId: string, includeHidden: boolean): MailFolder[] {
  return Object.values(ms.folders).filter((f) => f.parentFolderId === parentId && (includeHidden || !f.isHidden));
}

const folderExists = () => new GraphHttpError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');

export function createMailFolder(store: Store, ms: MailState, parentId: string, displayName: string, isHidden: boolean): MailFolder {
  // Hidden folders occupy their name too, though a plain list does not show them (research: create-then-catch).
  if (childFolders(ms, parentId, true).some((f) => f.displayName.toLowerCase() === displayName.toLowerCase())) throw folderExists();
  const f: MailFolder = { id: newItemId(), displayName, parentFolderId: parentId, isHidden };
  ms.folders[f.id] = f;
  store.changed();
  return f;
}

export function renameMailFolder(store: Store, ms: MailState, f: MailFolder, displayName: string): MailFolder {
  if (childFolders(ms, f.parentFolderId, true).some((o) => o.id !== f.id && o.displayName.toLowerCase() === displayName.toLowerCase())) throw folderExists();
  f.displayName = displayName;
  store.changed();
  return f;
}

export function deleteMailFolder(store: Store, ms: MailState, f: MailFolder): void {
  if (f.wellKnownName) throw new GraphHttpError(403, 'ErrorDeleteDistinguishedFolder', 'Distinguished folders cannot be deleted.');
  for (const c of childFolders(ms, f.id, true)) deleteMailFolder(store, ms, c);
  for (const item of store.itemsIn(ms, f.id)) deleteMessage(store, ms, item.id);
  delete ms.folders[f.id];
  delete ms.rounds[f.id];
  for (const [k, e] of Object.entries(ms.entries)) if (e.folderId === f.id) delete ms.entries[k];
  store.changed();
}

/** A folder by id, well-known name, or display name anywhere in the mailbox (admin convenience). */
export function findFolderForAdmin(ms: MailState, ref: string): MailFolder | undefined {
  try {
    return mailFolder(ms, ref);
  } catch {
    return Object.values(ms.folders).find((f) => f.displayName.toLowerCase() === ref.toLowerCase());
  }
}

// ---- messages --------------------------------------------------------------------------------------

/** What a client may write on a message (message.md); the rest is derived or read-only. */
const WRITABLE = new Set([
  'subject',
  'body',
  'from',
  'sender',
  'toRecipients',
  'ccRecipients',
  'bccRecipients',
  'replyTo',
  'importance',
  'isRead',
  'categories',
  'flag',
  'inferenceClassification',
  'internetMessageId',
  'internetMessageHeaders',
  'isReadReceiptRequested',
  'isDeliveryReceiptRequested',
]);
/** Accepted in a create body but not taken from it (research §7: JSON create ignores them; isDraft follows PR_MESSAGE_FLAGS). */
const IGNORED_ON_WRITE = new Set(['receivedDateTime', 'sentDateTime', 'isDraft', 'hasAttachments', 'bodyPreview', 'id', 'parentFolderId', 'conversationId', '@odata.type', 'changeKey', 'createdDateTime', 'lastModifiedDateTime', 'webLink']);

/** MAPI property tags honoured at creation (research §7, mguessan/davmail GraphExchangeSession.createMessage). */
const PR_MESSAGE_FLAGS = 0x0e07;
const PR_MESSAGE_DELIVERY_TIME = 0x0e06;
const PR_CLIENT_SUBMIT_TIME = 0x0039;
const MSGFLAG_READ = 0x1;
const MSGFLAG_UNSENT = 0x8;

export interface MessageWrite {
  fields: Record<string, unknown>;
  ext: ExtendedProperty[];
  attachments: Array<Record<string, unknown>>;
}

export function parseMessageBody(body: unknown, allowAttachments: boolean): MessageWrite {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('RequestBodyRead', 'A message object is required in the request body.');
  const fields: Record<string, unknown> = {};
  const ext: ExtendedProperty[] = [];
  let attachments: Array<Record<string, unknown>> = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (WRITABLE.has(k)) fields[k] = v;
    else if (k === 'singleValueExtendedProperties') {
      if (!Array.isArray(v)) throw badRequest('RequestBodyRead', 'singleValueExtendedProperties must be an array.');
      for (const p of v as Array<Record<string, unknown>>) {
        if (typeof p?.id !== 'string' || typeof p.value !== 'string') throw badRequest('RequestBodyRead', 'Each extended property needs a string id and a string value.');
        ext.push({ id: p.id, value: p.value });
      }
    } else if (k === 'attachments' && allowAttachments) {
      if (!Array.isArray(v)) throw badRequest('RequestBodyRead', 'attachments must be an array.');
      attachments = v as Array<Record<string, unknown>>;
    } else if (!IGNORED_ON_WRITE.has(k)) {
      throw badRequest('RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.message'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
    }
  }
  if (fields.body !== undefined) {
    const b = fields.body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || (b.contentType !== undefined && !['text', 'html'].includes(String(b.contentType).toLowerCase()))) {
      throw badRequest('RequestBodyRead', "Cannot convert the literal for property 'body' to the expected type 'microsoft.graph.itemBody'.");
    }
    fields.body = { contentType: String(b.contentType ?? 'text').toLowerCase(), content: String(b.content ?? '') };
  }
  return { fields, ext, attachments };
}

/** `Integer 0x0E07` / `Integer 0xe07` → 0x0e07; named properties (`String {guid} Name x`) → undefined. */
function mapiTag(id: string): number | undefined {
  const m = /^\w+\s+0x([0-9a-f]{1,4})$/i.exec(id.trim());
  return m ? parseInt(m[1], 16) : undefined;
}
const extByTag = (ext: ExtendedProperty[], tag: number) => ext.find((p) => mapiTag(p.id) === tag);

function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
function systemTime(p: ExtendedProperty | undefined): string | undefined {
  if (!p) return undefined;
  const d = new Date(p.value);
  if (Number.isNaN(d.getTime())) throw badRequest('ErrorInvalidExtendedPropertyValue', `The value '${p.value}' of extended property '${p.id}' is not a valid date and time.`);
  return isoSeconds(d);
}

function preview(body: unknown): string {
  const b = body as { contentType?: string; content?: string } | undefined;
  if (!b?.content) return '';
  const text = b.contentType === 'html' ? b.content.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim() : b.content;
  return text.slice(0, 255);
}

/**
 * A message created through Graph: a draft (isDraft true) unless PR_MESSAGE_FLAGS is set in the create request
 * without MSGFLAG_UNSENT; received and sent dates come from PR_MESSAGE_DELIVERY_TIME / PR_CLIENT_SUBMIT_TIME,
 * else the creation time (research §7: receivedDateTime/sentDateTime in the JSON are ignored).
 */
export function createMessage(store: Store, ms: MailState, folderId: string, w: MessageWrite): StoredItem {
  const now = isoSeconds(new Date());
  const flags = extByTag(w.ext, PR_MESSAGE_FLAGS);
  const flagValue = flags ? Number(flags.value) : undefined;
  if (flags && !Number.isInteger(flagValue)) throw badRequest('ErrorInvalidExtendedPropertyValue', `The value '${flags.value}' of extended property '${flags.id}' is not an integer.`);
  const fields: Record<string, unknown> = {
    receivedDateTime: systemTime(extByTag(w.ext, PR_MESSAGE_DELIVERY_TIME)) ?? now,
    sentDateTime: systemTime(extByTag(w.ext, PR_CLIENT_SUBMIT_TIME)) ?? now,
    isDraft: flagValue === undefined ? true : (flagValue & MSGFLAG_UNSENT) !== 0,
    isRead: flagValue === undefined ? true : (flagValue & MSGFLAG_READ) !== 0,
    internetMessageId: `<${crypto.randomBytes(12).toString('hex')}@emulator.contoso.test>`,
    conversationId: 'AAQkA' + crypto.randomBytes(24).toString('base64url'),
    ...w.fields,
  };
  return insertMessage(store, ms, folderId, fields, w.ext, w.attachments);
}

/** As delivered mail arrives or as the user drops it: not a draft, its own dates kept. */
export function dropMessage(store: Store, ms: MailState, folderId: string, w: MessageWrite, dates: { receivedDateTime?: string; sentDateTime?: string }): StoredItem {
  const now = isoSeconds(new Date());
  const received = dates.receivedDateTime ? isoSeconds(new Date(dates.receivedDateTime)) : now;
  const fields: Record<string, unknown> = {
    receivedDateTime: received,
    sentDateTime: dates.sentDateTime ? isoSeconds(new Date(dates.sentDateTime)) : received,
    isDraft: false,
    isRead: false,
    internetMessageId: `<${crypto.randomBytes(12).toString('hex')}@mail.example.test>`,
    conversationId: threadOf(ms, w.fields) ?? 'AAQkA' + crypto.randomBytes(24).toString('base64url'),
    ...w.fields,
  };
  return insertMessage(store, ms, folderId, fields, w.ext, w.attachments);
}

/**
 * The conversation a delivered message joins: that of a message in the mailbox its In-Reply-To or References
 * header names (RFC 5322 §3.6.4), as Exchange threads a reply with what it answers (message resource,
 * `conversationId`: "The ID of the conversation the email belongs to"). A copy of a message already in the
 * mailbox (same Internet message id) is in that message's conversation.
 */
function threadOf(ms: MailState, fields: Record<string, unknown>): string | undefined {
  const headers = Array.isArray(fields.internetMessageHeaders) ? (fields.internetMessageHeaders as Array<{ name?: unknown; value?: unknown }>) : [];
  const named = headers
    .filter((h) => typeof h.name === 'string' && /^(in-reply-to|references)$/i.test(h.name) && typeof h.value === 'string')
    .flatMap((h) => (h.value as string).match(/<[^<>\s]+>/g) ?? []);
  if (typeof fields.internetMessageId === 'string') named.unshift(fields.internetMessageId);
  if (named.length === 0) return undefined;
  const wanted = new Set(named.map((x) => x.toLowerCase()));
  for (const item of Object.values(ms.items)) {
    const id = item.fields.internetMessageId;
    if (typeof id === 'string' && wanted.has(id.toLowerCase()) && typeof item.fields.conversationId === 'string') return item.fields.conversationId;
  }
  return undefined;
}

function insertMessage(store: Store, ms: MailState, folderId: string, fields: Record<string, unknown>, ext: ExtendedProperty[], attachments: Array<Record<string, unknown>>): StoredItem {
  const parsed = attachments.map(parseFileAttachment);
  const size = parsed.reduce((n, a) => n + a.size, 0) + JSON.stringify(fields).length;
  if (size > ms.settings.maxMessageSizeBytes) throw messageTooBig();
  fields.bodyPreview = preview(fields.body);
  fields.hasAttachments = parsed.some((a) => !a.isInline);
  const item = store.createItem(ms, folderId, fields, ext);
  if (parsed.length) ms.attachments[item.id] = parsed;
  return item;
}

export function updateMessage(store: Store, ms: MailState, id: string, w: MessageWrite, folderId?: string): StoredItem {
  const patch = { ...w.fields };
  if ('body' in patch) patch.bodyPreview = preview(patch.body);
  // PR_MESSAGE_FLAGS and the MAPI dates are taken at creation only (research §7); later writes keep the property
  // but do not turn a draft into a sent message.
  const item = store.updateItem(ms, id, patch, w.ext, folderId);
  unhide(ms, item.id);
  return item;
}

export function moveMessage(store: Store, ms: MailState, id: string, toFolderId: string): StoredItem {
  const item = store.item(ms, id);
  const from = item.folderId;
  if (from === toFolderId) return item;
  const left = ms.entries[`${toFolderId}/${item.id}`];
  const moved = store.moveItem(ms, id, toFolderId);
  unhide(ms, moved.id);
  // Back in a folder it left before that folder's delta round saw it go: Graph reports it removed there.
  if (ms.settings.moveBackReportedRemoved && left?.removed && left.seq > (ms.roundStartSeq[toFolderId] ?? 0)) {
    (ms.hiddenReturns[toFolderId] ??= []).push(moved.id);
  }
  return moved;
}

export function deleteMessage(store: Store, ms: MailState, id: string, folderId?: string): void {
  const item = store.item(ms, id, folderId);
  store.deleteItem(ms, item.id, folderId);
  delete ms.attachments[item.id];
  unhide(ms, item.id);
}

function unhide(ms: MailState, id: string): void {
  for (const [f, ids] of Object.entries(ms.hiddenReturns)) {
    const rest = ids.filter((x) => x !== id);
    if (rest.length) ms.hiddenReturns[f] = rest;
    else delete ms.hiddenReturns[f];
  }
}

// ---- attachments -----------------------------------------------------------------------------------

export const messageTooBig = () => new GraphHttpError(400, 'ErrorMessageSizeExceeded', 'The message exceeds the maximum supported size.');

export function parseFileAttachment(a: Record<string, unknown>): StoredAttachment {
  const type = String(a['@odata.type'] ?? '');
  if (type.toLowerCase() !== '#microsoft.graph.fileattachment') {
    throw badRequest('ErrorInvalidRequest', 'Only file attachments (@odata.type #microsoft.graph.fileAttachment) are supported by this emulator.');
  }
  if (typeof a.name !== 'string' || !a.name) throw badRequest('ErrorRequiredPropertyMissing', 'The attachment name is missing.');
  if (typeof a.contentBytes !== 'string') throw badRequest('ErrorRequiredPropertyMissing', 'The attachment contentBytes are missing.');
  const bytes = Buffer.from(a.contentBytes, 'base64');
  return {
    id: newAttachmentId(),
    name: a.name,
    contentType: typeof a.contentType === 'string' ? a.contentType : 'application/octet-stream',
    size: bytes.length,
    isInline: a.isInline === true,
    ...(typeof a.contentId === 'string' ? { contentId: a.contentId } : {}),
    lastModifiedDateTime: isoSeconds(new Date()),
    contentBytes: bytes.toString('base64'),
  };
}

export function newAttachmentId(): string {
  return 'AAMkAGAtt' + crypto.randomBytes(36).toString('base64url');
}

export function attachmentsOf(ms: MailState, messageId: string): StoredAttachment[] {
  return ms.attachments[messageId] ?? [];
}

/** Size of the message as the mailbox limit counts it: its attachments plus its own properties. */
export function messageSize(ms: MailState, item: StoredItem): number {
  return attachmentsOf(ms, item.id).reduce((n, a) => n + a.size, 0) + JSON.stringify(item.fields).length;
}

export function addAttachment(store: Store, ms: MailState, item: StoredItem, att: StoredAttachment): StoredAttachment {
  if (messageSize(ms, item) + att.size > ms.settings.maxMessageSizeBytes) throw messageTooBig();
  (ms.attachments[item.id] ??= []).push(att);
  const hasAttachments = attachmentsOf(ms, item.id).some((a) => !a.isInline);
  store.updateItem(ms, item.id, { hasAttachments });
  unhide(ms, item.id);
  return att;
}

export function removeAttachment(store: Store, ms: MailState, item: StoredItem, attId: string): void {
  const list = attachmentsOf(ms, item.id);
  if (!list.some((a) => a.id === attId)) throw notFound();
  ms.attachments[item.id] = list.filter((a) => a.id !== attId);
  store.updateItem(ms, item.id, { hasAttachments: ms.attachments[item.id].some((a) => !a.isInline) });
  unhide(ms, item.id);
}

// ---- upload budget and sessions (in memory: a restart ends uploads in progress, as an expired session would) ----

const uploads = new WeakMap<MailState, Array<{ at: number; bytes: number }>>();

/**
 * Counts uploaded bytes against the mailbox's budget (150 MB per 5 minutes: throttling-limits.md, "Limits per
 * mailbox"), or refuses with the 429 and Retry-After of any Outlook throttling (throttling.md).
 */
export function chargeUpload(ms: MailState, bytes: number, now = Date.now()): void {
  const { uploadBudgetBytes: budget, uploadWindowMs: windowMs } = ms.settings;
  let log = uploads.get(ms);
  if (!log) uploads.set(ms, (log = []));
  while (log.length && log[0].at <= now - windowMs) log.shift();
  const used = log.reduce((n, u) => n + u.bytes, 0);
  if (used + bytes > budget) {
    // Retry when enough of the window's uploads have aged out to make room for this one.
    let free = budget - used;
    let until = now;
    for (const u of log) {
      free += u.bytes;
      until = u.at + windowMs;
      if (free >= bytes) break;
    }
    const retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
    throw new GraphHttpError(429, 'ApplicationThrottled', 'Application is over its upload size limit for this mailbox.', { 'Retry-After': String(retryAfter) });
  }
  log.push({ at: now, bytes });
}

export interface UploadSession {
  id: string;
  token: string;
  upn: string;
  messageId: string;
  name: string;
  contentType: string;
  size: number;
  isInline: boolean;
  contentId?: string;
  expirationDateTime: string;
  received: Buffer[];
  offset: number;
  mail: MailState;
}

export const uploadSessions = new Map<string, UploadSession>();
