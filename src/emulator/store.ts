/**
 * Mailbox state and its change log. Every write to an item takes the mailbox's next sequence number and
 * records it on one entry per (folder, item); an entry flips to `removed` when the item leaves that folder.
 * Delta rounds read these entries by sequence number, so they never need a log that grows with every write.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GraphHttpError, notFound } from './errors';

export interface Folder {
  id: string;
  displayName: string;
  parentFolderId: string;
}

export interface ExtendedProperty {
  id: string;
  value: string;
}

export interface StoredItem {
  /** The immutable id (`Prefer: IdType="ImmutableId"`): stable for the item's life in the mailbox. */
  id: string;
  /** The default (REST) id: changes whenever the item moves to another folder. */
  restId: string;
  folderId: string;
  changeKey: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  fields: Record<string, unknown>;
  /** Keyed by the lower-cased property id: Graph matches extended property ids case-insensitively. */
  ext: Record<string, ExtendedProperty>;
  seq: number;
  /** Sequence number at which the item entered its current folder (created or moved in). */
  enteredSeq: number;
  /** Sequence number of the last write to each field, so a delta round can send only what changed. */
  fieldSeq: Record<string, number>;
}

/** An entry of the mailbox's master category list (/outlook/masterCategories). */
export interface OutlookCategory {
  id: string;
  displayName: string;
  color: string;
}

export interface LogEntry {
  folderId: string;
  id: string;
  seq: number;
  removed: boolean;
  /** The item's default id when it left the folder: what a delta without immutable ids reports as removed. */
  restId?: string;
}

export interface Mailbox {
  id: string;
  upn: string;
  displayName: string;
  timeZone: string;
  /** Changes on reset, so tokens issued before it are refused rather than misread. */
  incarnation: string;
  seq: number;
  rootFolderId: string;
  defaultContactFolderId: string;
  folders: Record<string, Folder>;
  items: Record<string, StoredItem>;
  entries: Record<string, LogEntry>;
  /** Live delta rounds per folder, oldest first; a token naming a round not listed here is expired. */
  rounds: Record<string, number[]>;
  nextRound: number;
  /** The master category list; optional so that states persisted by older versions load. */
  categories?: OutlookCategory[];
}

interface PersistedState {
  version: 1;
  mailboxes: Mailbox[];
}

/** Exchange ids are long base64 strings; url-safe so they can sit in a path segment unescaped. */
export function newItemId(): string {
  return 'AAMkA' + crypto.randomBytes(48).toString('base64url');
}
/** Immutable ids have their own format (real ones start AAkAL…), so mixing the two kinds up shows in tests. */
export function newImmutableId(): string {
  return 'AAkALgAA' + crypto.randomBytes(48).toString('base64url');
}
function newChangeKey(): string {
  return 'EQAAABYAAA' + crypto.randomBytes(18).toString('base64');
}
function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class Store {
  private mailboxes = new Map<string, Mailbox>();
  /** Default id → immutable id, per mailbox; derived from the items, so never persisted. */
  private restIndex = new WeakMap<Mailbox, Map<string, string>>();
  private saveTimer: NodeJS.Timeout | undefined;
  private dirty = false;

  constructor(
    private readonly stateFile: string | undefined,
    readonly maxTokenGenerations: number,
  ) {
    if (stateFile && fs.existsSync(stateFile)) {
      const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as PersistedState;
      for (const mb of state.mailboxes) {
        // States written before default ids, field sequence numbers and categories existed.
        for (const item of Object.values(mb.items)) {
          item.restId ??= item.id;
          item.enteredSeq ??= 0;
          item.fieldSeq ??= {};
        }
        mb.categories ??= [];
        this.mailboxes.set(mb.upn.toLowerCase(), mb);
      }
    }
  }

  // ---- persistence -------------------------------------------------------------------------------

  changed(): void {
    if (!this.stateFile) return;
    this.dirty = true;
    // Debounced so a burst of writes (a sync round applying hundreds of operations) costs one file write.
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      this.flush();
    }, 200);
  }

  flush(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.stateFile || !this.dirty) return;
    this.dirty = false;
    const state: PersistedState = { version: 1, mailboxes: [...this.mailboxes.values()] };
    fs.mkdirSync(path.dirname(this.stateFile), { recursive: true });
    // Write-then-rename: a crash mid-write must not leave a truncated state file behind.
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, this.stateFile);
  }

  // ---- mailboxes ---------------------------------------------------------------------------------

  ensureMailbox(upn: string, displayName?: string): Mailbox {
    const key = upn.toLowerCase();
    const existing = this.mailboxes.get(key);
    if (existing) {
      if (displayName && displayName !== existing.displayName) {
        existing.displayName = displayName;
        this.changed();
      }
      return existing;
    }
    const rootFolderId = newItemId();
    const contactsId = newItemId();
    const mb: Mailbox = {
      id: crypto.randomUUID(),
      upn,
      displayName: displayName ?? upn.split('@')[0],
      timeZone: 'UTC',
      incarnation: crypto.randomBytes(6).toString('base64url'),
      seq: 0,
      rootFolderId,
      defaultContactFolderId: contactsId,
      folders: { [contactsId]: { id: contactsId, displayName: 'Contacts', parentFolderId: rootFolderId } },
      items: {},
      entries: {},
      rounds: {},
      nextRound: 1,
      categories: [],
    };
    this.mailboxes.set(key, mb);
    this.changed();
    return mb;
  }

  listMailboxes(): Mailbox[] {
    return [...this.mailboxes.values()];
  }

  /** Graph accepts either the user's object id or the userPrincipalName, case-insensitively. */
  findMailbox(idOrUpn: string): Mailbox | undefined {
    const key = idOrUpn.toLowerCase();
    const byUpn = this.mailboxes.get(key);
    if (byUpn) return byUpn;
    for (const mb of this.mailboxes.values()) if (mb.id === key) return mb;
    return undefined;
  }

  mailbox(idOrUpn: string): Mailbox {
    const mb = this.findMailbox(idOrUpn);
    if (!mb) throw new GraphHttpError(404, 'ErrorInvalidUser', `The requested user '${idOrUpn}' is invalid.`);
    return mb;
  }

  reset(): void {
    this.mailboxes.clear();
    this.changed();
  }

  // ---- folders -----------------------------------------------------------------------------------

  /** Child folders of the default Contacts folder, which is what Graph's /contactFolders lists. */
  contactFolders(mb: Mailbox): Folder[] {
    return Object.values(mb.folders).filter((f) => f.id !== mb.defaultContactFolderId);
  }

  folder(mb: Mailbox, id: string): Folder {
    // Graph accepts well-known names in place of folder ids.
    if (id.toLowerCase() === 'contacts') return mb.folders[mb.defaultContactFolderId];
    const f = mb.folders[id];
    if (!f) throw notFound();
    return f;
  }

  folderByName(mb: Mailbox, displayName: string): Folder | undefined {
    if (displayName === 'Contacts') return mb.folders[mb.defaultContactFolderId];
    return this.contactFolders(mb).find((f) => f.displayName.toLowerCase() === displayName.toLowerCase());
  }

  createFolder(mb: Mailbox, displayName: string): Folder {
    if (this.contactFolders(mb).some((f) => f.displayName.toLowerCase() === displayName.toLowerCase())) {
      throw new GraphHttpError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
    }
    const f: Folder = { id: newItemId(), displayName, parentFolderId: mb.defaultContactFolderId };
    mb.folders[f.id] = f;
    this.changed();
    return f;
  }

  renameFolder(mb: Mailbox, id: string, displayName: string): Folder {
    const f = this.folder(mb, id);
    if (this.contactFolders(mb).some((o) => o.id !== f.id && o.displayName.toLowerCase() === displayName.toLowerCase())) {
      throw new GraphHttpError(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
    }
    f.displayName = displayName;
    this.changed();
    return f;
  }

  deleteFolder(mb: Mailbox, id: string): void {
    const f = this.folder(mb, id);
    if (f.id === mb.defaultContactFolderId) throw new GraphHttpError(403, 'ErrorDeleteDistinguishedFolder', 'Distinguished folders cannot be deleted.');
    for (const item of Object.values(mb.items)) if (item.folderId === f.id) this.deleteItem(mb, item.id);
    delete mb.folders[f.id];
    delete mb.rounds[f.id];
    for (const [k, e] of Object.entries(mb.entries)) if (e.folderId === f.id) delete mb.entries[k];
    this.changed();
  }

  // ---- items -------------------------------------------------------------------------------------

  /** By immutable id or current default id (Graph accepts either); an old default id of a moved item is not found. */
  item(mb: Mailbox, id: string, folderId?: string): StoredItem {
    const item = mb.items[id] ?? mb.items[this.restIds(mb).get(id) ?? ''];
    if (!item || (folderId && item.folderId !== folderId)) throw notFound();
    return item;
  }

  private restIds(mb: Mailbox): Map<string, string> {
    let idx = this.restIndex.get(mb);
    if (!idx) {
      idx = new Map(Object.values(mb.items).map((i) => [i.restId, i.id]));
      this.restIndex.set(mb, idx);
    }
    return idx;
  }

  itemsIn(mb: Mailbox, folderId: string): StoredItem[] {
    return Object.values(mb.items).filter((i) => i.folderId === folderId);
  }

  createItem(mb: Mailbox, folderId: string, fields: Record<string, unknown>, ext: ExtendedProperty[] = []): StoredItem {
    const now = nowIso();
    const item: StoredItem = {
      id: newImmutableId(),
      restId: newItemId(),
      folderId,
      changeKey: '',
      createdDateTime: now,
      lastModifiedDateTime: now,
      fields: { ...fields },
      ext: {},
      seq: 0,
      enteredSeq: 0,
      fieldSeq: {},
    };
    for (const p of ext) item.ext[p.id.toLowerCase()] = p;
    mb.items[item.id] = item;
    this.restIds(mb).set(item.restId, item.id);
    this.touch(mb, item, Object.keys(fields));
    item.enteredSeq = item.seq;
    return item;
  }

  updateItem(mb: Mailbox, id: string, patch: Record<string, unknown>, ext: ExtendedProperty[] = [], folderId?: string): StoredItem {
    const item = this.item(mb, id, folderId);
    const changed = Object.keys(patch).filter((k) => JSON.stringify(item.fields[k]) !== JSON.stringify(patch[k]));
    Object.assign(item.fields, patch);
    for (const p of ext) item.ext[p.id.toLowerCase()] = p;
    this.touch(mb, item, changed);
    return item;
  }

  moveItem(mb: Mailbox, id: string, toFolderId: string): StoredItem {
    const item = this.item(mb, id);
    this.folder(mb, toFolderId);
    if (item.folderId === toFolderId) return item;
    const from = item.folderId;
    const oldRestId = item.restId;
    item.folderId = toFolderId;
    // A move gives the item a new default id; its immutable id stays.
    item.restId = newItemId();
    this.restIds(mb).delete(oldRestId);
    this.restIds(mb).set(item.restId, item.id);
    this.touch(mb, item);
    item.enteredSeq = item.seq;
    mb.entries[`${from}/${item.id}`] = { folderId: from, id: item.id, seq: item.seq, removed: true, restId: oldRestId };
    this.changed();
    return item;
  }

  deleteItem(mb: Mailbox, id: string, folderId?: string): void {
    const item = this.item(mb, id, folderId);
    delete mb.items[item.id];
    this.restIds(mb).delete(item.restId);
    mb.entries[`${item.folderId}/${item.id}`] = { folderId: item.folderId, id: item.id, seq: ++mb.seq, removed: true, restId: item.restId };
    this.changed();
  }

  private touch(mb: Mailbox, item: StoredItem, fields: string[] = []): void {
    item.seq = ++mb.seq;
    for (const f of fields) item.fieldSeq[f] = item.seq;
    item.changeKey = newChangeKey();
    item.lastModifiedDateTime = nowIso();
    mb.entries[`${item.folderId}/${item.id}`] = { folderId: item.folderId, id: item.id, seq: item.seq, removed: false };
    this.changed();
  }

  // ---- delta rounds ------------------------------------------------------------------------------

  startRound(mb: Mailbox, folderId: string): number {
    const round = mb.nextRound++;
    const live = (mb.rounds[folderId] ??= []);
    live.push(round);
    while (live.length > this.maxTokenGenerations) live.shift();
    this.changed();
    return round;
  }

  roundIsLive(mb: Mailbox, folderId: string, round: number): boolean {
    return mb.rounds[folderId]?.includes(round) ?? false;
  }

  expireRounds(mb: Mailbox): void {
    mb.rounds = {};
    this.changed();
  }

  // ---- master categories -------------------------------------------------------------------------

  categories(mb: Mailbox): OutlookCategory[] {
    return (mb.categories ??= []);
  }

  category(mb: Mailbox, id: string): OutlookCategory {
    const c = this.categories(mb).find((x) => x.id === id);
    if (!c) throw notFound();
    return c;
  }

  /** Names are unique, compared case-insensitively as Outlook does. */
  createCategory(mb: Mailbox, displayName: string, color: string): OutlookCategory {
    if (this.categories(mb).some((c) => c.displayName.toLowerCase() === displayName.toLowerCase())) {
      throw new GraphHttpError(409, 'ErrorDuplicateCategory', `A category with the name '${displayName}' already exists.`);
    }
    const c: OutlookCategory = { id: crypto.randomUUID(), displayName, color };
    this.categories(mb).push(c);
    this.changed();
    return c;
  }

  updateCategory(mb: Mailbox, id: string, color: string): OutlookCategory {
    const c = this.category(mb, id);
    c.color = color;
    this.changed();
    return c;
  }

  deleteCategory(mb: Mailbox, id: string): void {
    this.category(mb, id);
    mb.categories = this.categories(mb).filter((c) => c.id !== id);
    this.changed();
  }
}
