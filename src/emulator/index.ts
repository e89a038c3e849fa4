/**
 * The bundled Microsoft Graph emulator: HTTPS, MSAL-compatible client-credentials auth, contacts with
 * folders, delta, extended properties, $batch, fault injection and optional persistence. Local runs and
 * tests talk to it through the same client code as production.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, EMULATOR_TENANT } from '../config';
import { createAdmin, type EmulatorAdmin } from './admin';
import { defaultAppRegistration, type AuthConfig } from './auth';
import { loadOrCreateIdentity } from './certificate';
import type { DeltaQuirks } from './delta';
import { Faults } from './faults';
import { createRequestHandler } from './server';
import { Store } from './store';
import { Throttle, type ThrottleLimits } from './throttle';

export type { EmulatorAdmin, EmulatorContact } from './admin';
export type { ChaosSpec, FaultSpec } from './faults';
export type { ApplicationSettings } from './admin';
export type { EmulatorMessage } from './mail-admin';
export type { MailSettings } from './mail-store';
export type { DeltaQuirks } from './delta';
export type { ThrottleLimits } from './throttle';

export interface EmulatorOptions {
  /** 0 = a random free port; default 8443. */
  port?: number;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** When set: cert.pem/key.pem are created there once and reused, and state persists in state.json. */
  dataDir?: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Delta page size when the client sends no `Prefer: odata.maxpagesize` (default 100). */
  maxPageSize?: number;
  /** Delta rounds kept per mailbox and folder; a link from an older round answers 410 (default 50). */
  maxTokenGenerations?: number;
  /** Outlook's per-mailbox limits; defaults 10,000 requests per 10 minutes and 4 concurrent. 0 disables one. */
  throttle?: Partial<ThrottleLimits>;
  /** Delay added to every /v1.0 request, e.g. to make the concurrency limit reachable (default 0). */
  latencyMs?: number;
  /** Delta behaviours (partial items, repeated items, empty pages) on for every mailbox; admin.setDeltaQuirks overrides per mailbox. */
  deltaQuirks?: DeltaQuirks;
  log?: (line: string) => void;
}

export interface GraphEmulator {
  /** https://localhost:<port> — always the hostname localhost, which the certificate names. */
  origin: string;
  graphBaseUrl: string;
  authorityHost: string;
  tenantId: string;
  /** The self-signed certificate clients must trust. */
  caCertPem: string;
  admin: EmulatorAdmin;
  /**
   * Without a mailbox: HTTP requests to /v1.0 (a $batch counts once). With one: operations on that
   * mailbox, each $batch sub-request included. Admin and token requests are never counted.
   */
  requestCount(mailbox?: string): number;
  /** Operations on the mailbox answered 429 (throttling or injected), $batch sub-requests included. */
  throttledCount(mailbox: string): number;
  /** The latest Graph operations served ("METHOD /v1.0/path?query", $batch sub-requests included), oldest first. */
  recentRequests(): string[];
  close(): Promise<void>;
}

export async function startGraphEmulator(opts: EmulatorOptions = {}): Promise<GraphEmulator> {
  const identity = loadOrCreateIdentity(opts.dataDir);
  const store = new Store(opts.dataDir ? path.join(opts.dataDir, 'state.json') : undefined, opts.maxTokenGenerations ?? 50);
  const faults = new Faults();
  const counts = { total: 0, byMailbox: new Map<string, number>(), recent: [] as string[], throttled: new Map<string, number>() };
  const quirks = new Map<string, DeltaQuirks>();
  const throttle = new Throttle({ requestsPer10Minutes: opts.throttle?.requestsPer10Minutes ?? 10_000, concurrentRequests: opts.throttle?.concurrentRequests ?? 4, windowMs: opts.throttle?.windowMs });
  const tenantId = opts.tenantId ?? EMULATOR_TENANT;
  const clientSecret = opts.clientSecret ?? EMULATOR_CLIENT_SECRET;
  // The origin is known only after listen() picks the port; the deps object is filled in then.
  const auth: AuthConfig = {
    origin: '',
    tenantId,
    clientId: opts.clientId ?? EMULATOR_CLIENT_ID,
    clientSecret,
    signingKey: crypto.createHash('sha256').update(identity.keyPem).update(tenantId).digest(),
    app: defaultAppRegistration(),
  };
  const mailboxesNotEnabled = new Set<string>();
  const tenant = { auth, mailboxesNotEnabled, defaultSecret: clientSecret };
  const admin = createAdmin(store, faults, quirks, tenant, () => {
    counts.total = 0;
    counts.byMailbox.clear();
    counts.throttled.clear();
    counts.recent.length = 0;
    throttle.reset();
  });
  const graph = {
    store,
    graphBaseUrl: '',
    maxPageSize: opts.maxPageSize ?? 100,
    deltaQuirks: (mb: { upn: string }) => quirks.get(mb.upn.toLowerCase()) ?? opts.deltaQuirks ?? {},
  };
  const server = https.createServer({ cert: identity.certPem, key: identity.keyPem }, createRequestHandler({ auth, mailboxesNotEnabled, graph, faults, admin, counts, throttle, latencyMs: opts.latencyMs ?? 0, log: opts.log }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8443, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `https://localhost:${port}`;
  auth.origin = origin;
  graph.graphBaseUrl = `${origin}/v1.0`;
  opts.log?.(`Graph emulator listening on ${origin} (tenant ${tenantId})`);

  let closed: Promise<void> | undefined;
  return {
    origin,
    graphBaseUrl: graph.graphBaseUrl,
    authorityHost: origin,
    tenantId,
    caCertPem: identity.certPem,
    admin,
    requestCount: (mailbox) => (mailbox === undefined ? counts.total : (counts.byMailbox.get((store.findMailbox(mailbox)?.upn ?? mailbox).toLowerCase()) ?? 0)),
    throttledCount: (mailbox) => counts.throttled.get((store.findMailbox(mailbox)?.upn ?? mailbox).toLowerCase()) ?? 0,
    recentRequests: () => [...counts.recent],
    close() {
      closed ??= new Promise<void>((resolve) => {
        store.flush();
        // A short grace after the sockets are gone lets in-process clients see the close of their pooled
        // keep-alive connections; otherwise an immediate restart on the same port races a dead socket.
        server.close(() => setTimeout(resolve, 50));
        // Keep-alive sockets from clients would hold close() open indefinitely.
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
