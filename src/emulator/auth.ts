/**
 * Just enough of the Microsoft identity platform for MSAL's client-credentials flow. Access tokens are
 * HMAC-signed JWTs keyed from the TLS key, so with a dataDir they stay valid across emulator restarts
 * (MSAL caches them for an hour and would otherwise present a token the restarted emulator refuses).
 */
import crypto from 'node:crypto';

export interface AuthConfig {
  origin: string;
  tenantId: string;
  clientId: string;
  /** The secret the app registration accepts; admin.setApplication changes it (the client then sends a wrong one). */
  clientSecret: string;
  signingKey: Buffer;
  app: AppRegistration;
}

/**
 * The app registration's state in the tenant, as an administrator would change it: what the token endpoint
 * answers (Microsoft Entra error codes, docs/identity-platform/reference-error-codes.md in MicrosoftDocs/entra-docs)
 * and which application permissions (the token's `roles`) admin consent granted.
 */
export interface AppRegistration {
  /** The secret is past its end date: AADSTS7000222 InvalidClientSecretExpiredKeysProvided. */
  secretExpired: boolean;
  /** The service principal is disabled: AADSTS7000112 UnauthorizedClientApplicationDisabled. */
  disabled: boolean;
  /** Application permissions granted with admin consent; a Graph resource needing another answers 403. */
  roles: string[];
}

export const DEFAULT_APP_ROLES = ['Contacts.ReadWrite', 'Calendars.ReadWrite', 'Tasks.ReadWrite.All', 'Mail.ReadWrite', 'MailboxSettings.ReadWrite', 'User.Read.All'];

export function defaultAppRegistration(): AppRegistration {
  return { secretExpired: false, disabled: false, roles: [...DEFAULT_APP_ROLES] };
}

const TOKEN_LIFETIME_S = 3599;

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

export function issueToken(cfg: AuthConfig, scope: string): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64json({ typ: 'JWT', alg: 'HS256' });
  const body = b64json({
    aud: scope.replace(/\/\.default$/, ''),
    iss: `${cfg.origin}/${cfg.tenantId}/v2.0`,
    iat: now,
    nbf: now,
    exp: now + TOKEN_LIFETIME_S,
    appid: cfg.clientId,
    tid: cfg.tenantId,
    roles: [...cfg.app.roles],
    jti: crypto.randomUUID(),
  });
  const sig = crypto.createHmac('sha256', cfg.signingKey).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Returns why the Authorization header is refused, or undefined when it is fine. */
export function checkBearer(cfg: AuthConfig, header: string | undefined): string | undefined {
  if (!header) return 'Access token is empty.';
  const m = /^Bearer\s+([\w-]+)\.([\w-]+)\.([\w-]+)$/i.exec(header.trim());
  if (!m) return 'IDX14100: JWT is not well formed.';
  const expected = crypto.createHmac('sha256', cfg.signingKey).update(`${m[1]}.${m[2]}`).digest();
  const given = Buffer.from(m[3], 'base64url');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return 'Access token validation failure. Invalid audience.';
  const claims = JSON.parse(Buffer.from(m[2], 'base64url').toString('utf8')) as { exp: number; tid: string };
  if (claims.exp * 1000 < Date.now()) return 'Lifetime validation failed, the token is expired.';
  if (claims.tid !== cfg.tenantId) return 'Access token validation failure. Invalid tenant.';
  return undefined;
}

/** The application permissions of a bearer token checkBearer accepted. */
export function tokenRoles(header: string): string[] {
  const payload = header.trim().split(/\s+/)[1]?.split('.')[1] ?? '';
  try {
    const roles = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { roles?: unknown }).roles;
    return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * The application permissions that allow a request on a mailbox resource (any one suffices; a ReadWrite
 * permission includes reading), per the "Permissions" section of each Graph API page (e.g. contact-get.md,
 * user-list-contactfolders.md, user-list-calendars.md, todo-list-lists.md in microsoftgraph/microsoft-graph-docs-contrib);
 * undefined when not checked.
 */
export function rolesAllowing(method: string, rest: string[]): string[] | undefined {
  const r0 = rest[0]?.toLowerCase();
  const write = method.toUpperCase() !== 'GET';
  const family = (name: string, readSuffix = '') => (write ? [`${name}.ReadWrite${readSuffix}`] : [`${name}.Read${readSuffix}`, `${name}.ReadWrite${readSuffix}`]);
  if (r0 === undefined) return ['User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All'];
  if (r0 === 'contacts' || r0 === 'contactfolders') return family('Contacts');
  if (r0 === 'calendar' || r0 === 'calendars' || r0 === 'events' || r0 === 'calendarview') return family('Calendars');
  if (r0 === 'todo') return family('Tasks', '.All');
  if (r0 === 'outlook' || r0 === 'mailboxsettings') return family('MailboxSettings');
  if (r0 === 'messages' || r0 === 'mailfolders') return family('Mail');
  return undefined;
}

export function openIdConfiguration(cfg: AuthConfig, tenant: string): Record<string, unknown> {
  const base = `${cfg.origin}/${tenant}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${cfg.origin}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${cfg.origin}/${cfg.tenantId}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${cfg.origin}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
    tenant_region_scope: 'EU',
    cloud_instance_name: new URL(cfg.origin).host,
    cloud_graph_host_name: new URL(cfg.origin).host,
    msgraph_host: new URL(cfg.origin).host,
  };
}

export function instanceDiscovery(cfg: AuthConfig): Record<string, unknown> {
  const host = new URL(cfg.origin).host;
  return {
    tenant_discovery_endpoint: `${cfg.origin}/${cfg.tenantId}/v2.0/.well-known/openid-configuration`,
    'api-version': '1.1',
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  };
}

export interface TokenOutcome {
  status: number;
  body: Record<string, unknown>;
}

function oauthError(status: number, error: string, code: string, description: string): TokenOutcome {
  const traceId = crypto.randomUUID();
  const correlationId = crypto.randomUUID();
  return {
    status,
    body: {
      error,
      error_description: `${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${new Date().toISOString()}`,
      error_codes: [Number(code.replace('AADSTS', ''))],
      timestamp: new Date().toISOString(),
      trace_id: traceId,
      correlation_id: correlationId,
    },
  };
}

export function tokenRequest(cfg: AuthConfig, tenant: string, form: URLSearchParams): TokenOutcome {
  if (tenant.toLowerCase() !== cfg.tenantId.toLowerCase()) {
    return oauthError(400, 'invalid_request', 'AADSTS90002', `Tenant '${tenant}' not found.`);
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(400, 'unsupported_grant_type', 'AADSTS70003', 'The app requested an unsupported grant type.');
  }
  if (form.get('client_id') !== cfg.clientId) {
    return oauthError(400, 'unauthorized_client', 'AADSTS700016', `Application with identifier '${form.get('client_id')}' was not found in the directory.`);
  }
  if (cfg.app.disabled) {
    return oauthError(400, 'unauthorized_client', 'AADSTS7000112', `Application '${cfg.clientId}'(cxsync) is disabled.`);
  }
  if (form.get('client_secret') !== cfg.clientSecret) {
    return oauthError(401, 'invalid_client', 'AADSTS7000215', 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
  }
  if (cfg.app.secretExpired) {
    return oauthError(401, 'invalid_client', 'AADSTS7000222', `The provided client secret keys for app '${cfg.clientId}' are expired. Visit the Azure portal to create new keys for your app.`);
  }
  const scope = form.get('scope') ?? '';
  const resource = scope.split(' ').find((s) => s.endsWith('/.default'));
  if (!resource) {
    return oauthError(400, 'invalid_scope', 'AADSTS1002012', `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
  }
  return {
    status: 200,
    body: { token_type: 'Bearer', expires_in: TOKEN_LIFETIME_S, ext_expires_in: TOKEN_LIFETIME_S, access_token: issueToken(cfg, resource) },
  };
}
