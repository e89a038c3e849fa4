/** Test and demo control of the emulator: acts as the mailbox's user would, plus faults and resets. */
import { calendarAdmin, type CalendarAdmin } from './calendar';
import { parseContactBody, renderContact, withDerivedDisplayName } from './contact-schema';
import { GraphHttpError, badRequest } from './errors';
import { mailAdmin, mailAdminHttp, type MailAdmin } from './mail-admin';
import type { DeltaQuirks } from './delta';
import type { ChaosSpec, FaultSpec, Faults } from './faults';
import { defaultAppRegistration, type AuthConfig } from './auth';
import type { OutlookCategory, Store } from './store';
import { todoAdmin, type TodoAdmin } from './todo';

/** `id` is the immutable id (what cxsync stores); `restId` the default id, which changes when the item moves. */
export type EmulatorContact = Record<string, unknown> & { id: string; restId: string; changeKey: string; parentFolderId: string };

/** Events (CalendarAdmin) and To Do tasks (TodoAdmin) are acted on as the user would, like contacts. */
export interface EmulatorAdmin extends CalendarAdmin, TodoAdmin, MailAdmin {
  ensureMailbox(upn: string, displayName?: string): void;
  listMailboxes(): string[];
  /** All contacts of the mailbox, or those of one folder by displayName ('Contacts' = the default folder). */
  listContacts(upn: string, folderName?: string): EmulatorContact[];
  /** As the user would: new changeKey, appears in delta. A missing folder is created; null = default Contacts folder. */
  createContact(upn: string, folderName: string | null, contact: Record<string, unknown>): EmulatorContact;
  /** Merges fields; `parentFolderId` (a folder id) or `folder` (a folder name) in the patch moves the contact. */
  updateContact(upn: string, id: string, patch: Record<string, unknown>): EmulatorContact;
  deleteContact(upn: string, id: string): void;
  /** Fail the next n Graph requests for this mailbox matching method/path regexp with the given status (429 adds Retry-After: retryAfterSeconds). */
  injectFault(upn: string, fault: FaultSpec): void;
  clearFaults(upn?: string): void;
  /** Added delay on every Graph request to this mailbox, $batch sub-requests included: `ms` plus a random 0..jitterMs (0 removes it; clearFaults too). */
  setLatency(upn: string, ms: number, jitterMs?: number): void;
  /** A random share of the mailbox's Graph operations fail (429/503/504 by default); null or rate 0 stops it (clearFaults too). */
  setChaos(upn: string, spec: ChaosSpec | null): void;
  /** Switches delta behaviours real Graph shows (partial items, repeated items, empty pages) on or off for the mailbox. */
  setDeltaQuirks(upn: string, quirks: DeltaQuirks): void;
  /** The mailbox's master category list. */
  listCategories(upn: string): OutlookCategory[];
  /** Invalidates every delta/next link issued so far for the mailbox: the next use answers 410 SyncStateNotFound. */
  expireDeltaTokens(upn: string): void;
  /**
   * Changes the app registration as a tenant administrator would: a new secret (the one cxsync sends is then
   * wrong: AADSTS7000215), an expired secret (AADSTS7000222), a disabled app (AADSTS7000112), the application
   * permissions granted (a token issued afterwards carries them; a resource needing another answers 403).
   * Tokens already issued keep their permissions until they expire, as in Microsoft Entra. reset() restores all.
   */
  setApplication(settings: ApplicationSettings): void;
  getApplication(): Required<ApplicationSettings>;
  /** false: the user stays in the directory but Graph answers 404 MailboxNotEnabledForRESTAPI for their mailbox (no Exchange Online licence, inactive or on-premises mailbox). */
  setMailboxEnabled(upn: string, enabled: boolean): void;
  reset(): void;
}

export interface ApplicationSettings {
  clientSecret?: string;
  secretExpired?: boolean;
  disabled?: boolean;
  roles?: string[];
}

export interface TenantState {
  auth: AuthConfig;
  mailboxesNotEnabled: Set<string>;
  defaultSecret: string;
}

export interface AdminApi extends EmulatorAdmin {
  http(method: string, path: string, query: URLSearchParams, body: unknown): { status: number; body?: unknown };
}

export function createAdmin(store: Store, faults: Faults, quirks: Map<string, DeltaQuirks>, tenant: TenantState, onReset: () => void): AdminApi {
  const folderIdByName = (upn: string, name: string | null | undefined, create: boolean): string => {
    const mb = store.mailbox(upn);
    if (!name) return mb.defaultContactFolderId;
    const f = store.folderByName(mb, name);
    if (f) return f.id;
    if (!create) throw new GraphHttpError(404, 'ErrorItemNotFound', `No contact folder named '${name}'.`);
    return store.createFolder(mb, name).id;
  };
  const render = (i: Parameters<typeof renderContact>[0]) => ({ ...renderContact(i, { expandExt: '*', immutableId: true }), restId: i.restId }) as EmulatorContact;
  const keyOf = (upn: string) => (store.findMailbox(upn)?.upn ?? upn).toLowerCase();

  const admin: EmulatorAdmin = {
    ...calendarAdmin(store),
    ...todoAdmin(store),
    ...mailAdmin(store),
    ensureMailbox: (upn, displayName) => void store.ensureMailbox(upn, displayName),
    listMailboxes: () => store.listMailboxes().map((m) => m.upn),
    listContacts(upn, folderName) {
      const mb = store.mailbox(upn);
      const items = folderName === undefined ? Object.values(mb.items) : store.itemsIn(mb, folderIdByName(upn, folderName, false));
      return items.map(render);
    },
    createContact(upn, folderName, contact) {
      const mb = store.mailbox(upn);
      const w = parseContactBody(contact);
      return render(store.createItem(mb, folderIdByName(upn, folderName, true), withDerivedDisplayName(w.fields), w.ext));
    },
    updateContact(upn, id, patch) {
      const mb = store.mailbox(upn);
      const { parentFolderId, folder, ...rest } = patch;
      if (typeof parentFolderId === 'string' || typeof folder === 'string') {
        store.moveItem(mb, id, typeof parentFolderId === 'string' ? store.folder(mb, parentFolderId).id : folderIdByName(upn, folder as string, true));
      }
      const w = parseContactBody(rest);
      if (Object.keys(w.fields).length || w.ext.length || (parentFolderId === undefined && folder === undefined)) store.updateItem(mb, id, w.fields, w.ext);
      return render(store.item(mb, id));
    },
    deleteContact: (upn, id) => store.deleteItem(store.mailbox(upn), id),
    injectFault(upn, fault) {
      try {
        faults.add(store.mailbox(upn).upn.toLowerCase(), fault);
      } catch (err) {
        if (err instanceof GraphHttpError) throw err;
        throw badRequest('BadRequest', (err as Error).message);
      }
    },
    setLatency: (upn, ms, jitterMs) => faults.setLatency(keyOf(upn), ms, jitterMs),
    setChaos(upn, spec) {
      try {
        faults.setChaos(keyOf(upn), spec);
      } catch (err) {
        throw badRequest('BadRequest', (err as Error).message);
      }
    },
    setDeltaQuirks: (upn, q) => void quirks.set(keyOf(upn), { ...q }),
    listCategories: (upn) => store.categories(store.mailbox(upn)).map((c) => ({ ...c })),
    clearFaults: (upn) => faults.clear(upn === undefined ? undefined : keyOf(upn)),
    expireDeltaTokens: (upn) => store.expireRounds(store.mailbox(upn)),
    setApplication(settings) {
      const { clientSecret, secretExpired, disabled, roles } = settings;
      if (clientSecret !== undefined && (typeof clientSecret !== 'string' || !clientSecret)) throw badRequest('BadRequest', 'clientSecret must be a non-empty string.');
      if (roles !== undefined && (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string'))) throw badRequest('BadRequest', 'roles must be an array of permission names.');
      for (const [k, v] of Object.entries({ secretExpired, disabled })) {
        if (v !== undefined && typeof v !== 'boolean') throw badRequest('BadRequest', `${k} must be true or false.`);
      }
      if (clientSecret !== undefined) tenant.auth.clientSecret = clientSecret;
      if (secretExpired !== undefined) tenant.auth.app.secretExpired = secretExpired;
      if (disabled !== undefined) tenant.auth.app.disabled = disabled;
      if (roles !== undefined) tenant.auth.app.roles = [...roles];
    },
    getApplication: () => ({ clientSecret: tenant.auth.clientSecret, ...tenant.auth.app, roles: [...tenant.auth.app.roles] }),
    setMailboxEnabled(upn, enabled) {
      const key = store.mailbox(upn).upn.toLowerCase();
      if (enabled) tenant.mailboxesNotEnabled.delete(key);
      else tenant.mailboxesNotEnabled.add(key);
    },
    reset() {
      store.reset();
      faults.clear();
      quirks.clear();
      tenant.auth.clientSecret = tenant.defaultSecret;
      tenant.auth.app = defaultAppRegistration();
      tenant.mailboxesNotEnabled.clear();
      onReset();
    },
  };

  const http: AdminApi['http'] = (method, path, query, body) => {
    const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
    const b = (body ?? {}) as Record<string, unknown>;
    const [s0, upn, s2, id] = segs;
    if (s0 === 'reset' && segs.length === 1 && method === 'POST') {
      admin.reset();
      return { status: 204 };
    }
    if (s0 === 'application' && segs.length === 1) {
      if (method === 'GET') return { status: 200, body: admin.getApplication() };
      if (method === 'PATCH') {
        admin.setApplication(b as ApplicationSettings);
        return { status: 200, body: admin.getApplication() };
      }
    }
    if (s0 === 'mailboxes') {
      if (segs.length === 1 && method === 'GET') {
        return { status: 200, body: { value: store.listMailboxes().map((m) => ({ id: m.id, upn: m.upn, displayName: m.displayName })) } };
      }
      if (segs.length === 1 && method === 'POST') {
        if (typeof b.upn !== 'string' || !b.upn.includes('@')) throw badRequest('BadRequest', 'upn (user@domain) is required.');
        admin.ensureMailbox(b.upn, typeof b.displayName === 'string' ? b.displayName : undefined);
        const mb = store.mailbox(b.upn);
        return { status: 201, body: { id: mb.id, upn: mb.upn, displayName: mb.displayName } };
      }
      if (segs.length === 3 && s2 === 'contacts' && method === 'GET') {
        return { status: 200, body: { value: admin.listContacts(upn, query.get('folder') ?? undefined) } };
      }
      if (segs.length === 3 && s2 === 'contacts' && method === 'POST') {
        const { folder, ...contact } = b;
        return { status: 201, body: admin.createContact(upn, typeof folder === 'string' ? folder : null, contact) };
      }
      if (segs.length === 4 && s2 === 'contacts' && method === 'PATCH') return { status: 200, body: admin.updateContact(upn, id, b) };
      if (segs.length === 4 && s2 === 'contacts' && method === 'DELETE') {
        admin.deleteContact(upn, id);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'faults' && method === 'POST') {
        admin.injectFault(upn, b as unknown as FaultSpec);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'faults' && method === 'DELETE') {
        admin.clearFaults(upn);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'latency' && method === 'PUT') {
        admin.setLatency(upn, Number((b as { ms?: unknown }).ms), Number((b as { jitterMs?: unknown }).jitterMs ?? 0));
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'chaos' && method === 'PUT') {
        admin.setChaos(upn, b as unknown as ChaosSpec);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'chaos' && method === 'DELETE') {
        admin.setChaos(upn, null);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'delta-quirks' && method === 'PUT') {
        admin.setDeltaQuirks(upn, b as DeltaQuirks);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'categories' && method === 'GET') {
        return { status: 200, body: { value: admin.listCategories(upn) } };
      }
      if (segs.length === 3 && s2 === 'sent-messages' && method === 'GET') {
        return { status: 200, body: { value: admin.sentMessages(upn) } };
      }
      if (segs.length === 3 && s2 === 'sent-messages' && method === 'DELETE') {
        admin.clearSentMessages(upn);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'enabled' && method === 'PUT') {
        if (typeof b.enabled !== 'boolean') throw badRequest('BadRequest', 'enabled (true or false) is required.');
        admin.setMailboxEnabled(upn, b.enabled);
        return { status: 204 };
      }
      if (segs.length === 3 && s2 === 'expire-delta-tokens' && method === 'POST') {
        admin.expireDeltaTokens(upn);
        return { status: 204 };
      }
    }
    const mail = mailAdminHttp(admin, method, segs, query, b);
    if (mail) return mail;
    throw new GraphHttpError(404, 'NotFound', `No admin route for ${method} /admin${path}.`);
  };
  return { ...admin, http };
}
