/**
 * How the worker and the CLI reach Temporal: plain text by default (the local dev server, a cluster on a private
 * network), TLS with a server CA and an optional client certificate (mTLS, a secured self-hosted cluster or
 * Temporal Cloud with certificates), and an API key (Temporal Cloud). The variable names are Temporal's own
 * client environment configuration (docs.temporal.io/references/client-environment-configuration), so the
 * `temporal` CLI reads the same environment.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

export interface TemporalTlsEnv {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_API_KEY?: string;
  TEMPORAL_TLS?: 'true' | 'false';
  TEMPORAL_TLS_SERVER_CA_CERT_PATH?: string;
  TEMPORAL_TLS_CLIENT_CERT_PATH?: string;
  TEMPORAL_TLS_CLIENT_KEY_PATH?: string;
  TEMPORAL_TLS_SERVER_NAME?: string;
}

/** What both Connection.connect (CLI) and NativeConnection.connect (worker) take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

interface Problem {
  variable: string;
  message: string;
}

function readPem(variable: string, file: string, kind: 'certificate' | 'key', problems: Problem[]): Buffer | undefined {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push({ variable, message: code === 'ENOENT' ? `${file} does not exist` : code === 'EACCES' ? `${file} is not readable by this user` : code === 'EISDIR' ? `${file} is a directory` : `${file} cannot be read (${code ?? (err as Error).message})` });
    return undefined;
  }
  try {
    if (kind === 'certificate') new X509Certificate(pem);
    else createPrivateKey(pem);
  } catch {
    problems.push({ variable, message: `${file} is not a PEM ${kind === 'certificate' ? 'X.509 certificate' : 'private key (unencrypted)'}` });
    return undefined;
  }
  return pem;
}

/** Reads and checks the TLS files; every mistake is one problem naming its variable. */
export function resolveTemporalConnection(env: TemporalTlsEnv): { value?: TemporalConnectionOptions; problems: Problem[] } {
  const problems: Problem[] = [];
  const files = {
    ca: env.TEMPORAL_TLS_SERVER_CA_CERT_PATH,
    cert: env.TEMPORAL_TLS_CLIENT_CERT_PATH,
    key: env.TEMPORAL_TLS_CLIENT_KEY_PATH,
  };
  const anyTlsSetting = !!(files.ca || files.cert || files.key || env.TEMPORAL_TLS_SERVER_NAME);
  if (env.TEMPORAL_TLS === 'false' && anyTlsSetting) {
    problems.push({ variable: 'TEMPORAL_TLS', message: 'is false but TEMPORAL_TLS_* certificate settings are given: remove them or set TEMPORAL_TLS=true' });
  }
  if (files.cert && !files.key) problems.push({ variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: 'is required with TEMPORAL_TLS_CLIENT_CERT_PATH (the private key of the client certificate)' });
  if (files.key && !files.cert) problems.push({ variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH', message: 'is required with TEMPORAL_TLS_CLIENT_KEY_PATH (the client certificate of that key)' });
  const ca = files.ca ? readPem('TEMPORAL_TLS_SERVER_CA_CERT_PATH', files.ca, 'certificate', problems) : undefined;
  const crt = files.cert ? readPem('TEMPORAL_TLS_CLIENT_CERT_PATH', files.cert, 'certificate', problems) : undefined;
  const key = files.key ? readPem('TEMPORAL_TLS_CLIENT_KEY_PATH', files.key, 'key', problems) : undefined;
  if (crt && key && !new X509Certificate(crt).checkPrivateKey(createPrivateKey(key))) {
    problems.push({ variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH', message: `${files.key} is not the private key of the certificate in ${files.cert}` });
  }
  if (problems.length) return { problems };

  // An API key turns TLS on unless TEMPORAL_TLS=false says otherwise (Temporal's own rule): a bearer token is
  // not sent in plain text by accident.
  const tlsOn = env.TEMPORAL_TLS === 'true' || (env.TEMPORAL_TLS !== 'false' && (anyTlsSetting || !!env.TEMPORAL_API_KEY));
  const value: TemporalConnectionOptions = { address: env.TEMPORAL_ADDRESS };
  if (tlsOn) {
    value.tls = {
      ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    };
  }
  if (env.TEMPORAL_API_KEY) value.apiKey = env.TEMPORAL_API_KEY;
  return { value, problems };
}

/** The connection options of a validated environment (loadEnv has reported any problem already). */
export function temporalConnectionOptions(env: TemporalTlsEnv): TemporalConnectionOptions {
  const { value, problems } = resolveTemporalConnection(env);
  if (!value) throw new Error(problems.map((p) => `${p.variable} ${p.message}`).join('; '));
  return value;
}

/** One line for logs: how the connection is secured, never the secrets. */
export function describeTemporalSecurity(o: TemporalConnectionOptions): string {
  if (!o.tls) return o.apiKey ? 'plain text, API key' : 'plain text';
  return ['TLS', o.tls.clientCertPair ? 'client certificate' : undefined, o.apiKey ? 'API key' : undefined].filter(Boolean).join(', ');
}

/**
 * For a connection error that is the server refusing who we are (a wrong or expired API key, a certificate the
 * server does not accept for the namespace), the line to show instead of "unreachable"; undefined otherwise.
 */
export function refusedCredentialsMessage(address: string, err: unknown): string | undefined {
  // The client wraps the gRPC status in `cause` ("Failed to connect to Temporal server"); the worker's core (tonic)
  // says it in words only: "code: 'The request does not have valid authentication credentials'".
  const chain: { code?: unknown; message?: string }[] = [];
  for (let e = err as { code?: unknown; message?: string; cause?: unknown } | undefined; e && chain.length < 5; e = e.cause as typeof e) chain.push(e);
  const unauthenticated = chain.some((e) => e.code === 16 || /UNAUTHENTICATED|Unauthenticated|does not have valid authentication credentials/.test(e.message ?? ''));
  const denied = chain.some((e) => e.code === 7 || /PERMISSION_DENIED|PermissionDenied|does not have permission to execute/.test(e.message ?? ''));
  if (!unauthenticated && !denied) return undefined;
  return unauthenticated
    ? `Temporal at ${address} refused cxsync's credentials (unauthenticated): check TEMPORAL_API_KEY, or the client certificate in TEMPORAL_TLS_CLIENT_CERT_PATH`
    : `Temporal at ${address} denied access (permission denied): the API key or client certificate is valid but not allowed on namespace or action; check its grants`;
}
