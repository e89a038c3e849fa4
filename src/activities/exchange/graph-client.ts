/**
 * Builds the Microsoft Graph client used by every Exchange activity: the real `@microsoft/microsoft-graph-client`
 * with an `@azure/msal-node` client-credentials token provider. The same code talks to real Graph or to the
 * bundled emulator; only the settings differ (base URL, authority, and an extra CA for the emulator's
 * self-signed certificate).
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { ConfidentialClientApplication, type Configuration, type INetworkModule, type NetworkResponse } from '@azure/msal-node';
import {
  AuthenticationHandler,
  Client,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  TelemetryHandler,
  type AuthenticationProvider,
} from '@microsoft/microsoft-graph-client';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';
import type { GraphSettings } from '../../config';
import { GraphMetricsHandler } from '../metrics';
import { classifyCredentialError, credentialsError } from './errors';

/** A fetch that trusts the system roots plus the configured extra CA, kept per CA so sockets are reused. */
const dispatchers = new Map<string, Dispatcher>();
function dispatcherFor(caPem: string | undefined): Dispatcher | undefined {
  if (!caPem) return undefined;
  let d = dispatchers.get(caPem);
  if (!d) {
    // Outlook allows 4 concurrent requests per mailbox; a handful of sockets per origin is plenty.
    d = new Agent({ connect: { ca: [...tls.rootCertificates, caPem] }, connections: 32, keepAliveTimeout: 10_000 });
    dispatchers.set(caPem, d);
  }
  return d;
}

function readCa(settings: GraphSettings, caPem?: string): string | undefined {
  if (caPem) return caPem;
  if (!settings.caFile) return undefined;
  try {
    return fs.readFileSync(settings.caFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the CA certificate ${settings.caFile} (GRAPH_CA_FILE): ${(err as Error).message}`);
  }
}

/** MSAL's network calls go through the same fetch so the emulator's certificate is trusted there too. */
function msalNetwork(dispatcher: Dispatcher | undefined): INetworkModule {
  const send = async <T>(method: 'GET' | 'POST', url: string, options?: { headers?: Record<string, string>; body?: string }): Promise<NetworkResponse<T>> => {
    const res = await undiciFetch(url, { method, headers: options?.headers, body: options?.body, dispatcher });
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    const text = await res.text();
    return { status: res.status, headers, body: (text ? JSON.parse(text) : {}) as T };
  };
  return {
    sendGetRequestAsync: (url, options) => send('GET', url, options),
    sendPostRequestAsync: (url, options) => send('POST', url, options),
  };
}

export interface GraphConnection {
  client: Client;
  /** The raw authenticated fetch, for the few calls the client library does not model well ($batch status pass-through). */
  settings: GraphSettings;
  getToken(): Promise<string>;
}

const connections = new Map<string, GraphConnection>();

/** One client per settings: MSAL caches the token and the dispatcher pools sockets. */
export function graphConnection(settings: GraphSettings, caPem?: string): GraphConnection {
  const key = JSON.stringify(settings) + (caPem ?? '');
  const existing = connections.get(key);
  if (existing) return existing;

  const ca = readCa(settings, caPem);
  const dispatcher = dispatcherFor(ca);
  const authorityUrl = new URL(settings.authorityHost);
  const msalConfig: Configuration = {
    auth: {
      clientId: settings.clientId,
      authority: `${settings.authorityHost.replace(/\/$/, '')}/${settings.tenantId}`,
      clientSecret: settings.clientSecret,
      ...(settings.certificate
        ? {
            clientCertificate: {
              thumbprintSha256: undefined,
              thumbprint: settings.certificate.thumbprint,
              privateKey: fs.readFileSync(settings.certificate.path, 'utf8'),
            },
          }
        : {}),
      // A non-Microsoft authority (the emulator) must be declared known, or MSAL asks Microsoft to validate it.
      ...(settings.usesEmulator ? { knownAuthorities: [authorityUrl.host] } : {}),
    },
    system: { networkClient: msalNetwork(dispatcher) },
  };
  const msal = new ConfidentialClientApplication(msalConfig);
  const scope = `${new URL(settings.baseUrl).origin}/.default`;
  const getToken = async (): Promise<string> => {
    let result;
    try {
      result = await msal.acquireTokenByClientCredential({ scopes: [scope] });
    } catch (err) {
      // A refused secret or certificate reaches the sync through the Graph client as status -1 ("network"):
      // named here, it becomes needs-attention instead of being retried for ever (errors.ts).
      const p = classifyCredentialError(err);
      throw p ? credentialsError(p) : err;
    }
    if (!result?.accessToken) throw new Error('Microsoft identity platform returned no access token');
    return result.accessToken;
  };
  const authProvider: AuthenticationProvider = { getAccessToken: getToken };
  const base = new URL(settings.baseUrl);
  // The default chain's RetryHandler would retry 429/503/504 inside one activity attempt, a POST included
  // (a duplicate when a 504 hid a success). Retries belong to Temporal, where Retry-After becomes the retry delay.
  const auth = new AuthenticationHandler(authProvider);
  const redirect = new RedirectHandler(new RedirectHandlerOptions());
  const telemetry = new TelemetryHandler();
  const http = new HTTPMessageHandler();
  // Innermost: every request really sent is counted with the status it got (cxsync_graph_requests_total).
  const metrics = new GraphMetricsHandler();
  auth.setNext(redirect);
  redirect.setNext(telemetry);
  telemetry.setNext(metrics);
  metrics.setNext(http);
  const client = Client.initWithMiddleware({
    middleware: auth,
    baseUrl: base.origin,
    defaultVersion: base.pathname.replace(/^\/|\/$/g, '') || 'v1.0',
    // The client only attaches the bearer token to Graph hosts and to these.
    customHosts: new Set([base.hostname]),
    fetchOptions: dispatcher ? ({ dispatcher } as RequestInit) : undefined,
  });
  const conn = { client, settings, getToken };
  connections.set(key, conn);
  return conn;
}
