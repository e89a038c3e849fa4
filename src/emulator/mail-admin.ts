/** Admin API for mail: acts as the mailbox's user (drops, moves) and sets the mailbox's mail limits. */
import { GraphHttpError, badRequest } from './errors';
import {
  createMailFolder,
  dropMessage,
  findFolderForAdmin,
  mailState,
  moveMessage,
  parseMessageBody,
  type MailFolder,
  type MailSettings,
  type MailState,
} from './mail-store';
import type { Store, StoredItem } from './store';

/** A message as the admin API shows it: `id` immutable, `restId` the default id (new after each move). */
export type EmulatorMessage = Record<string, unknown> & { id: string; restId: string; parentFolderId: string; folder: string; receivedDateTime: string };

export interface MailAdmin {
  /**
   * As mail arriving or a user dragging a received message in: not a draft, `receivedDateTime` (and
   * `sentDateTime`) kept as given. `folder` is an id, a well-known name or a display name; a missing display
   * name is created under the Inbox.
   */
  dropMessage(upn: string, folder: string, message: Record<string, unknown>): EmulatorMessage;
  /** As the user moving a message in Outlook (a new default id; the immutable id stays). */
  moveMessage(upn: string, id: string, folder: string): EmulatorMessage;
  /** The messages of a folder (id, well-known name or display name), or of the whole mailbox. */
  listMessages(upn: string, folder?: string): EmulatorMessage[];
  setMailSettings(upn: string, settings: Partial<MailSettings>): MailSettings;
  getMailSettings(upn: string): MailSettings;
}

export function mailAdmin(store: Store): MailAdmin {
  const folderOf = (ms: MailState, ref: string, create: boolean): MailFolder => {
    const f = findFolderForAdmin(ms, ref);
    if (f) return f;
    if (!create) throw new GraphHttpError(404, 'ErrorItemNotFound', `No mail folder '${ref}'.`);
    return createMailFolder(store, ms, ms.wellKnown.inbox, ref, false);
  };
  const render = (ms: MailState, i: StoredItem): EmulatorMessage =>
    ({ ...i.fields, id: i.id, restId: i.restId, changeKey: i.changeKey, parentFolderId: i.folderId, folder: ms.folders[i.folderId]?.displayName, singleValueExtendedProperties: Object.values(i.ext) }) as unknown as EmulatorMessage;
  const ms = (upn: string) => mailState(store, store.mailbox(upn));
  return {
    dropMessage(upn, folder, message) {
      const state = ms(upn);
      const { receivedDateTime, sentDateTime, ...rest } = message;
      for (const [k, v] of Object.entries({ receivedDateTime, sentDateTime })) {
        if (v !== undefined && (typeof v !== 'string' || Number.isNaN(Date.parse(v)))) throw badRequest('BadRequest', `${k} must be an ISO date and time.`);
      }
      const w = parseMessageBody(rest, true);
      return render(state, dropMessage(store, state, folderOf(state, folder, true).id, w, { receivedDateTime: receivedDateTime as string | undefined, sentDateTime: sentDateTime as string | undefined }));
    },
    moveMessage(upn, id, folder) {
      const state = ms(upn);
      return render(state, moveMessage(store, state, id, folderOf(state, folder, true).id));
    },
    listMessages(upn, folder) {
      const state = ms(upn);
      const items = folder === undefined ? Object.values(state.items) : store.itemsIn(state, folderOf(state, folder, false).id);
      return items.map((i) => render(state, i));
    },
    setMailSettings(upn, settings) {
      const state = ms(upn);
      for (const k of ['maxMessageSizeBytes', 'uploadBudgetBytes', 'uploadWindowMs'] as const) {
        const v = settings[k];
        if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw badRequest('BadRequest', `${k} must be a positive integer.`);
      }
      if (settings.moveBackReportedRemoved !== undefined && typeof settings.moveBackReportedRemoved !== 'boolean') throw badRequest('BadRequest', 'moveBackReportedRemoved must be true or false.');
      const known = ['maxMessageSizeBytes', 'uploadBudgetBytes', 'uploadWindowMs', 'moveBackReportedRemoved'];
      for (const k of Object.keys(settings)) if (!known.includes(k)) throw badRequest('BadRequest', `Unknown mail setting '${k}'.`);
      Object.assign(state.settings, settings);
      store.changed();
      return { ...state.settings };
    },
    getMailSettings: (upn) => ({ ...ms(upn).settings }),
  };
}

/** /admin/mailboxes/{upn}/messages[...] and /mail-settings; undefined when the path is not a mail route. */
export function mailAdminHttp(admin: MailAdmin, method: string, segs: string[], query: URLSearchParams, b: Record<string, unknown>): { status: number; body?: unknown } | undefined {
  const [s0, upn, s2, id, s4] = segs;
  if (s0 !== 'mailboxes') return undefined;
  if (s2 === 'messages') {
    if (segs.length === 3 && method === 'GET') return { status: 200, body: { value: admin.listMessages(upn, query.get('folder') ?? undefined) } };
    if (segs.length === 3 && method === 'POST') {
      const { folder, ...message } = b;
      if (typeof folder !== 'string') throw badRequest('BadRequest', 'folder (id, well-known name or display name) is required.');
      return { status: 201, body: admin.dropMessage(upn, folder, message) };
    }
    if (segs.length === 5 && s4 === 'move' && method === 'POST') {
      if (typeof b.folder !== 'string') throw badRequest('BadRequest', 'folder (id, well-known name or display name) is required.');
      return { status: 200, body: admin.moveMessage(upn, id, b.folder) };
    }
  }
  if (s2 === 'mail-settings' && segs.length === 3) {
    if (method === 'GET') return { status: 200, body: admin.getMailSettings(upn) };
    if (method === 'PATCH') return { status: 200, body: admin.setMailSettings(upn, b as Partial<MailSettings>) };
  }
  return undefined;
}
