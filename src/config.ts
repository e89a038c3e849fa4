/**
 * The one place where cxsync reads its environment. Every variable is validated at start-up and each mistake
 * is reported with the variable's name and what it accepts, so an operator never has to read source.
 */
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { parseCodecKeys } from './security/codec';
import { resolveTemporalConnection } from './security/temporal-connection';

const port = z.coerce.number().int().min(0).max(65535);
const positiveSeconds = z.coerce.number().int().min(1).max(7 * 24 * 3600);
// The Temporal SDK's exporter binds a socket address: an IP literal, not a host name.
const metricsAddress = z.string().refine((v) => v === 'off' || parseIpPort(v) !== undefined, 'must be IP:port such as 0.0.0.0:9464 or [::]:9464 (a port from 1 to 65535), or off');

const schema = z
  .object({
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection URL')
      .optional(),
    CXSYNC_DATA_DIR: z.string().min(1).default('.cxsync'),
    CXSYNC_EMBEDDED_PG_PORT: port.default(54329),
    TEMPORAL_ADDRESS: z
      .string()
      .regex(/^[^:\s]+:\d+$/, 'must be host:port, e.g. localhost:7233')
      .default('localhost:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('cxsync'),
    TEMPORAL_UI_PORT: port.default(8233),
    TEMPORAL_CLI_PATH: z.string().min(1).optional(),
    // Secured Temporal (TLS, mTLS, API key), named as in Temporal's client environment configuration.
    TEMPORAL_API_KEY: z.string().min(1).optional(),
    TEMPORAL_TLS: z.enum(['true', 'false'], { errorMap: () => ({ message: 'must be true or false' }) }).optional(),
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
    TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
    TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
    TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
    // Payload encryption: id:base64key[,id:base64key…] and the id new payloads are sealed with (src/security/codec.ts).
    CXSYNC_CODEC_KEYS: z.string().min(1).optional(),
    CXSYNC_CODEC_KEY_ID: z.string().min(1).optional(),
    CXSYNC_CODEC_CORS_ORIGINS: z.string().min(1).default('http://localhost:8233,http://localhost:8080'),
    CXSYNC_CODEC_AUTH_TOKEN: z.string().min(16, 'must be at least 16 characters (openssl rand -hex 24)').optional(),
    GRAPH_BASE_URL: z.string().url('must be an absolute https URL such as https://graph.microsoft.com/v1.0').optional(),
    GRAPH_AUTHORITY_HOST: z.string().url('must be an absolute https URL such as https://login.microsoftonline.com').optional(),
    GRAPH_TENANT_ID: z.string().min(1).optional(),
    GRAPH_CLIENT_ID: z.string().min(1).optional(),
    GRAPH_CLIENT_SECRET: z.string().min(1).optional(),
    GRAPH_CERT_PATH: z.string().min(1).optional(),
    GRAPH_CERT_THUMBPRINT: z.string().regex(/^[0-9a-fA-F]{40}$/, 'must be the 40-hex-digit SHA-1 thumbprint').optional(),
    GRAPH_CA_FILE: z.string().min(1).optional(),
    CXSYNC_EMULATOR_PORT: port.default(8443),
    CXSYNC_SYNC_INTERVAL_SECONDS: positiveSeconds.default(300),
    CXSYNC_BATCH_SIZE: z.coerce.number().int().min(1).max(10000).default(500),
    // How long a mailbox may fail every attempt (Graph 5xx, network, a database error) before it goes to
    // needs-attention instead of retrying on; throttling does not count (docs/OPERATIONS.md).
    CXSYNC_RETRY_BUDGET_SECONDS: z.coerce.number({ invalid_type_error: 'must be a number of seconds from 10 to 604800 (default 1800)' }).int('must be a whole number of seconds').min(10, 'must be at least 10 seconds').max(604800, 'must be at most 604800 seconds (7 days)').default(1800),
    // Attempts an operation gets when errors are about it (a CRM write that throws, a Graph 409) before it is marked failed.
    CXSYNC_MAIL_RESCAN_SECONDS: z.coerce.number({ invalid_type_error: 'must be a number of seconds from 60 to 604800 (default 21600)' }).int('must be a whole number of seconds').min(60, 'must be at least 60 seconds').max(604800, 'must be at most 604800 seconds (7 days)').default(21600),
    CXSYNC_OPERATION_ATTEMPTS: z.coerce.number({ invalid_type_error: 'must be a whole number from 1 to 100 (default 5)' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(5),
    // Days of sync history kept (sync.log, sync.conflict, sync.operation, sync.cycle); LinkPoint keeps 30.
    CXSYNC_RETENTION_DAYS: z.coerce
      .number({ invalid_type_error: 'must be a whole number of days from 1 to 3650 (default 30)' })
      .int('must be a whole number of days from 1 to 3650 (default 30)')
      .min(1, 'must be a whole number of days from 1 to 3650 (default 30)')
      .max(3650, 'must be a whole number of days from 1 to 3650 (default 30)')
      .default(30),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // Prometheus endpoints of a worker (docs/OPERATIONS.md, "Metrics"): cxsync's own and the Temporal SDK's.
    CXSYNC_METRICS_ADDRESS: metricsAddress.default('0.0.0.0:9464'),
    CXSYNC_TEMPORAL_METRICS_ADDRESS: metricsAddress.default('0.0.0.0:9465'),
  })
  .superRefine((env, ctx) => {
    if (env.CXSYNC_METRICS_ADDRESS !== 'off' && parseIpPort(env.CXSYNC_METRICS_ADDRESS)?.port === parseIpPort(env.CXSYNC_TEMPORAL_METRICS_ADDRESS)?.port) {
      ctx.addIssue({ code: 'custom', path: ['CXSYNC_TEMPORAL_METRICS_ADDRESS'], message: 'must use another port than CXSYNC_METRICS_ADDRESS: they are two endpoints' });
    }
    for (const p of [...parseCodecKeys(env.CXSYNC_CODEC_KEYS, env.CXSYNC_CODEC_KEY_ID).problems, ...resolveTemporalConnection(env).problems]) {
      ctx.addIssue({ code: 'custom', path: [p.variable], message: p.message });
    }
    for (const o of env.CXSYNC_CODEC_CORS_ORIGINS.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) ctx.addIssue({ code: 'custom', path: ['CXSYNC_CODEC_CORS_ORIGINS'], message: `${o} is not an origin (scheme://host[:port], no path), e.g. http://localhost:8233` });
    }
    const real = env.GRAPH_TENANT_ID ?? env.GRAPH_CLIENT_ID;
    if (real) {
      for (const key of ['GRAPH_TENANT_ID', 'GRAPH_CLIENT_ID'] as const) {
        if (!env[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when talking to real Microsoft Graph' });
      }
      if (!env.GRAPH_CLIENT_SECRET && !env.GRAPH_CERT_PATH) {
        ctx.addIssue({ code: 'custom', path: ['GRAPH_CLIENT_SECRET'], message: 'or GRAPH_CERT_PATH (+ GRAPH_CERT_THUMBPRINT) is required for app-only auth' });
      }
      if (env.GRAPH_CERT_PATH && !env.GRAPH_CERT_THUMBPRINT) {
        ctx.addIssue({ code: 'custom', path: ['GRAPH_CERT_THUMBPRINT'], message: 'is required with GRAPH_CERT_PATH' });
      }
    }
  });

export type Env = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  // Empty strings are treated as unset: `FOO= cxsync ...` should not be an error.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'} ${i.message}`));
  }
  return parsed.data;
}

/** Where Graph lives and how to authenticate; the emulator when no Azure tenant is configured. */
export interface GraphSettings {
  baseUrl: string;
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  certificate?: { path: string; thumbprint: string };
  /** Extra CA certificate (PEM file) to trust, for the emulator's self-signed certificate. */
  caFile?: string;
  usesEmulator: boolean;
}

export const EMULATOR_TENANT = 'cxsync-emulator';
export const EMULATOR_CLIENT_ID = 'cxsync-local';
export const EMULATOR_CLIENT_SECRET = 'cxsync-local-secret';

export function dataDir(env: Env): string {
  return path.resolve(env.CXSYNC_DATA_DIR);
}

export function emulatorCaFile(env: Env): string {
  return path.join(dataDir(env), 'emulator', 'cert.pem');
}

export function graphSettings(env: Env): GraphSettings {
  if (env.GRAPH_TENANT_ID) {
    return {
      baseUrl: env.GRAPH_BASE_URL ?? 'https://graph.microsoft.com/v1.0',
      authorityHost: env.GRAPH_AUTHORITY_HOST ?? 'https://login.microsoftonline.com',
      tenantId: env.GRAPH_TENANT_ID,
      clientId: env.GRAPH_CLIENT_ID!,
      clientSecret: env.GRAPH_CLIENT_SECRET,
      certificate: env.GRAPH_CERT_PATH ? { path: env.GRAPH_CERT_PATH, thumbprint: env.GRAPH_CERT_THUMBPRINT! } : undefined,
      caFile: env.GRAPH_CA_FILE,
      usesEmulator: false,
    };
  }
  const origin = `https://localhost:${env.CXSYNC_EMULATOR_PORT}`;
  return {
    baseUrl: env.GRAPH_BASE_URL ?? `${origin}/v1.0`,
    authorityHost: env.GRAPH_AUTHORITY_HOST ?? origin,
    tenantId: EMULATOR_TENANT,
    clientId: EMULATOR_CLIENT_ID,
    clientSecret: EMULATOR_CLIENT_SECRET,
    caFile: env.GRAPH_CA_FILE ?? emulatorCaFile(env),
    usesEmulator: true,
  };
}

/** `IP:port` or `[IPv6]:port` with a port from 1 to 65535, else undefined. */
export function parseIpPort(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (net.isIP(host) === 0 || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** The worker's two Prometheus endpoints; null for one turned off. */
export function metricsAddresses(env: Env): { cxsync: { host: string; port: number } | null; temporal: string | null } {
  return {
    cxsync: env.CXSYNC_METRICS_ADDRESS === 'off' ? null : parseIpPort(env.CXSYNC_METRICS_ADDRESS)!,
    temporal: env.CXSYNC_TEMPORAL_METRICS_ADDRESS === 'off' ? null : env.CXSYNC_TEMPORAL_METRICS_ADDRESS,
  };
}
