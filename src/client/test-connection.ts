/**
 * `cxsync test-connection` (and the check `enroll` runs first), like Acumatica's "Test Server" and Dynamics 365's
 * "Test & Enable": can cxsync get a token, reach the mailbox, use each record type the policy enables, find or
 * create its folders, and match the mailbox to a CRM user? Every check reads; none writes to Exchange or the CRM.
 * One result per check, with what to do when it fails.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { sql } from 'kysely';
import type { GraphSettings } from '../config';
import type { Db } from '../db/connection';
import { PolicyStore } from '../db/policy-store';
import { SyncStore } from '../db/sync-store';
import { PostgresCrmStore } from '../activities/crm/postgres-crm';
import { classifyCredentialError, classifyGraphError } from '../activities/exchange/errors';
import { graphConnection } from '../activities/exchange/graph-client';
import { DEFAULT_POLICY_NAME, markingCategory, parsePolicy, typePolicy, type Policy } from '../domain/policy';
import { RECORD_TYPES, type RecordType } from '../domain/status';
import { normaliseMailbox, normalisePolicyName, OperatorError } from './operator';

export type CheckResult = 'ok' | 'failed' | 'skipped';

export interface Check {
  /** token, crm-user, policy, mailbox, contact, event, task, contact-folder, event-folder, task-folder, categories, email */
  check: string;
  result: CheckResult;
  /** What was found, or what is wrong. */
  detail: string;
  /** What to do, when the check failed. */
  fix?: string;
}

export interface MailboxReport {
  mailbox: string;
  checks: Check[];
}

export interface ConnectionReport {
  ok: boolean;
  token: Check;
  mailboxes: MailboxReport[];
}

/** What an operator calls each record type, and the Graph application permission it needs (docs/DEPLOYMENT.md). */
const NOUN: Record<RecordType, string> = { contact: 'contacts', event: 'calendar', task: 'To Do' };
const CONTAINER: Record<RecordType, string> = { contact: 'folder', event: 'calendar', task: 'list' };
export const PERMISSIONS: Record<RecordType, string> = { contact: 'Contacts.ReadWrite', event: 'Calendars.ReadWrite', task: 'Tasks.ReadWrite.All' };
/** Email filing and email sync (the policy's `email` section) read, move and create messages and mail folders. */
const MAIL_PERMISSION = 'Mail.ReadWrite';

const enc = encodeURIComponent;
const q = (s: string) => s.replace(/'/g, "''");

/** How many mailboxes are checked at once with --all (each runs up to three Graph requests in parallel). */
const PARALLEL_MAILBOXES = 4;

export interface TestConnectionDeps {
  db: Db;
  graph: GraphSettings;
  /** PEM to trust for Graph instead of graph.caFile (tests pass the emulator's). */
  caPem?: string;
}

export async function testConnection(deps: TestConnectionDeps, mailboxes: string[], opts: { policy?: string } = {}): Promise<ConnectionReport> {
  const ids = mailboxes.map(normaliseMailbox);
  const policies = new PolicyStore(deps.db);
  const given = opts.policy === undefined ? undefined : await namedPolicy(policies, opts.policy);
  let client: Client | undefined;
  let token: Check;
  try {
    const conn = graphConnection(deps.graph, deps.caPem);
    await conn.getToken();
    client = conn.client;
    token = { check: 'token', result: 'ok', detail: deps.graph.usesEmulator ? `access token issued by the Graph emulator at ${deps.graph.authorityHost}` : `access token issued for app ${deps.graph.clientId} in tenant ${deps.graph.tenantId}` };
  } catch (err) {
    token = tokenFailure(err, deps.graph);
  }
  const reports: MailboxReport[] = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      reports[i] = await checkMailbox(deps.db, client, ids[i], given);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_MAILBOXES, ids.length) }, worker));
  const ok = token.result !== 'failed' && reports.every((r) => r.checks.every((c) => c.result !== 'failed'));
  return { ok, token, mailboxes: reports };
}

/** The policy a mailbox being enrolled with --policy gets; refused like `enroll --policy` refuses it. */
async function namedPolicy(policies: PolicyStore, name: string): Promise<{ name: string; policy: Policy | string }> {
  const n = normalisePolicyName(name);
  const row = await policies.get(n);
  if (!row) {
    if (n === DEFAULT_POLICY_NAME) return { name: n, policy: parsedOrError(n, {}) };
    const names = (await policies.list()).map((p) => p.name);
    throw new OperatorError(`unknown policy ${n}: the policies are ${names.join(', ')} (cxsync policy create ${n} --file <policy.json>)`);
  }
  return { name: n, policy: parsedOrError(n, row.settings) };
}

function parsedOrError(name: string, settings: unknown): Policy | string {
  const r = parsePolicy(settings);
  return r.ok ? r.value : `policy ${name} is invalid: ${r.error}`;
}

function tokenFailure(err: unknown, graph: GraphSettings): Check {
  const p = classifyCredentialError(err);
  if (p) return { check: 'token', result: 'failed', detail: `${p.aadsts ?? p.oauthError ?? 'credentials'}: ${p.what}`, fix: p.fix };
  const msg = ((err as Error)?.message ?? String(err)).split('\n')[0];
  return {
    check: 'token',
    result: 'failed',
    detail: `no access token from ${graph.authorityHost}: ${msg}`,
    fix: graph.usesEmulator
      ? 'start cxsync with npm start (it runs the Graph emulator), or set CXSYNC_EMULATOR_PORT to the port the emulator listens on'
      : `check that this host reaches ${graph.authorityHost} (proxy, firewall, DNS) and GRAPH_AUTHORITY_HOST`,
  };
}

async function checkMailbox(db: Db, client: Client | undefined, id: string, given: { name: string; policy: Policy | string } | undefined): Promise<MailboxReport> {
  const checks: Check[] = [];
  const store = new SyncStore(db);
  const enrolled = await store.getMailbox(id);

  const user = await new PostgresCrmStore(db).findUserByEmail(id);
  if (user) checks.push({ check: 'crm-user', result: 'ok', detail: `CRM user ${user.displayName} (id ${user.id}) has this email` });
  else checks.push({ check: 'crm-user', result: 'failed', detail: `no CRM user has the email ${id}`, fix: 'create the user in the CRM with this address as its email (or correct the email of the existing user)' });

  let effective: { name: string; policy: Policy | string };
  if (given) effective = given;
  else if (enrolled) {
    const eff = await new PolicyStore(db).effective(id);
    effective = { name: eff.name, policy: eff.policy.ok ? eff.policy.value : eff.policy.error };
  } else effective = await namedPolicy(new PolicyStore(db), DEFAULT_POLICY_NAME);
  if (typeof effective.policy === 'string') {
    checks.push({ check: 'policy', result: 'failed', detail: effective.policy, fix: `fix it with cxsync policy update ${effective.name} --file <policy.json>` });
    return { mailbox: id, checks };
  }
  const policy = effective.policy;
  const types = RECORD_TYPES.filter((t) => typePolicy(policy, t).enabled);
  checks.push({ check: 'policy', result: 'ok', detail: `policy ${effective.name}: syncs ${types.map((t) => NOUN[t]).join(', ') || 'nothing (every record type is disabled)'}` });

  if (!client) {
    checks.push({ check: 'mailbox', result: 'skipped', detail: 'not checked: no access token' });
    return { mailbox: id, checks };
  }
  const saved = enrolled
    ? await sql<{ record_type: string; exchange_folder_id: string | null }>`select record_type, exchange_folder_id from sync.cursor where mailbox_id = ${id}`.execute(db).then((r) => new Map(r.rows.map((x) => [x.record_type, x.exchange_folder_id])))
    : new Map<string, string | null>();
  const probes = await Promise.all(types.map((t) => probe(client, id, t, typePolicy(policy, t).folder, saved.get(t) ?? null)));

  // The mailbox itself: a user or mailbox error on any probe is about the mailbox, not the record type.
  const gone = probes.find((p) => p.error?.kind === 'mailbox');
  const answered = probes.some((p) => !p.error);
  if (gone) checks.push(mailboxFailure(id, gone.error!.code, gone.error!.status));
  else if (answered || probes.length === 0) checks.push({ check: 'mailbox', result: probes.length ? 'ok' : 'skipped', detail: probes.length ? 'the mailbox answers in Microsoft Graph' : 'not checked: the policy syncs no record type' });
  else if (probes.every((p) => p.error?.kind === 'forbidden')) {
    checks.push({
      check: 'mailbox',
      result: 'failed',
      detail: 'every record type was refused (403)',
      fix: `grant the app its Microsoft Graph application permissions with admin consent; if they are granted, an Exchange Online application access policy excludes this mailbox (Test-ApplicationAccessPolicy -Identity ${id} -AppId <client id>)`,
    });
  } else checks.push({ check: 'mailbox', result: 'failed', detail: 'Microsoft Graph did not answer for this mailbox', fix: 'see the record type lines below' });

  for (const t of RECORD_TYPES.filter((x) => !types.includes(x))) checks.push({ check: t, result: 'skipped', detail: `${NOUN[t]}: disabled by the policy` });
  for (const p of probes) {
    const noun = NOUN[p.recordType];
    const container = `${noun} ${CONTAINER[p.recordType]}`;
    if (gone) {
      checks.push({ check: p.recordType, result: 'skipped', detail: `${noun}: not checked (the mailbox is not reachable)` });
      continue;
    }
    if (p.error) {
      checks.push(typeFailure(p.recordType, p.error));
      checks.push({ check: `${p.recordType}-folder`, result: 'skipped', detail: `${container}: not checked` });
      continue;
    }
    checks.push({ check: p.recordType, result: 'ok', detail: `${noun}: readable (writing needs ${PERMISSIONS[p.recordType]}; not tested, the check writes nothing)` });
    checks.push(p.container);
  }
  // The marking category is added to the mailbox's master category list before the first item carries it.
  const marked = types.filter((t) => markingCategory(policy, t));
  if (!gone && marked.length) {
    try {
      await client.api(`/users/${enc(id)}/outlook/masterCategories`).get();
      checks.push({ check: 'categories', result: 'ok', detail: `categories: the master category list is readable (writing needs MailboxSettings.ReadWrite; not tested)` });
    } catch (err) {
      const e = probeError(err);
      checks.push(
        e.kind === 'forbidden'
          ? { check: 'categories', result: 'failed', detail: `categories: ${e.status} ${e.code}: the app may not read the master category list (the marking category goes there)`, fix: `grant the Microsoft Graph application permission MailboxSettings.ReadWrite with admin consent, or set syncWithoutCategory in the policy for ${marked.join(', ')}` }
          : typeFailure('categories', e),
      );
    }
  }
  if (!gone && policy.email.enabled) checks.push(await emailCheck(client, id));
  return { mailbox: id, checks };
}

/** Email (filing, and email sync when on) needs the mailbox's mail folders; the Inbox answers for all of them. */
async function emailCheck(client: Client, id: string): Promise<Check> {
  try {
    await client.api(`/users/${enc(id)}/mailFolders/inbox`).select('id').get();
    return { check: 'email', result: 'ok', detail: `email: the mail folders are readable (filing and email sync need ${MAIL_PERMISSION}; writing not tested)` };
  } catch (err) {
    const e = probeError(err);
    if (e.kind !== 'forbidden') return typeFailure('email', e);
    return {
      check: 'email',
      result: 'failed',
      detail: `email: ${e.status} ${e.code}: the app may not use this mailbox's mail (the policy files email)`,
      fix: `grant the Microsoft Graph application permission ${MAIL_PERMISSION} with admin consent, or turn email off in the policy (email.enabled: false)`,
    };
  }
}

interface ProbeError {
  kind: 'mailbox' | 'forbidden' | 'credentials' | 'not-found' | 'transient' | 'other';
  status: number;
  code: string;
}

/** What a failed probe says about the mailbox and the app, from the status and Graph code classifyGraphError reads. */
function probeError(err: unknown): ProbeError {
  const g = classifyGraphError(err);
  const c = g.code.toLowerCase();
  const base = { status: g.status, code: g.code || (g.status > 0 ? `status ${g.status}` : 'no answer') };
  if (c === 'errorinvaliduser' || c.endsWith('mailboxnotenabledforrestapi')) return { ...base, kind: 'mailbox' };
  if (g.status === 403) return { ...base, kind: 'forbidden' };
  if (g.status === 401 || classifyCredentialError(err)) return { ...base, kind: 'credentials' };
  if (g.status === 404) return { ...base, kind: 'not-found' };
  if (g.status === 429 || g.status === -1 || g.status >= 500) return { ...base, kind: 'transient' };
  return { ...base, kind: 'other' };
}

interface Probe {
  recordType: RecordType;
  error?: ProbeError;
  container: Check;
}

/** GETs of the containers cxsync would use: they prove read access and tell whether the container exists. */
async function probe(client: Client, upn: string, recordType: RecordType, folder: string | null, savedId: string | null): Promise<Probe> {
  const base = `/users/${enc(upn)}`;
  const noun = `${NOUN[recordType]} ${CONTAINER[recordType]}`;
  const check = `${recordType}-folder`;
  try {
    if (savedId) {
      const byId = recordType === 'contact' ? `${base}/contactFolders/${enc(savedId)}` : recordType === 'event' ? `${base}/calendars/${enc(savedId)}` : `${base}/todo/lists/${enc(savedId)}`;
      try {
        await client.api(byId).header('Prefer', 'IdType="ImmutableId"').get();
        return { recordType, container: { check, result: 'ok', detail: `${noun} ${folder ?? '(default)'}: the one cxsync syncs exists` } };
      } catch (err) {
        if (probeError(err).kind !== 'not-found') throw err;
        return {
          recordType,
          container: {
            check,
            result: 'failed',
            detail: `${noun} ${folder ?? '(default)'}: the one cxsync was syncing is gone (deleted or moved in Outlook)`,
            fix: `restore it in Outlook (Deleted Items), or see cxsync status ${upn} for what the sync does about it`,
          },
        };
      }
    }
    if (folder === null) {
      const url = recordType === 'contact' ? `${base}/contactFolders/contacts` : recordType === 'event' ? `${base}/calendar` : `${base}/todo/lists`;
      const req = client.api(url);
      if (recordType === 'task') req.filter(`wellknownListName eq 'defaultList'`);
      const res = (await req.get()) as { id?: string; value?: unknown[] };
      if (recordType === 'task' && !res.value?.length) {
        return { recordType, container: { check, result: 'failed', detail: `${noun}: the mailbox has no default To Do list`, fix: 'open To Do once as the user, or set task.folder in the policy to a list name' } };
      }
      return { recordType, container: { check, result: 'ok', detail: `${noun}: the mailbox's default one is used` } };
    }
    const url = recordType === 'contact' ? `${base}/contactFolders` : recordType === 'event' ? `${base}/calendars` : `${base}/todo/lists`;
    const field = recordType === 'event' ? 'name' : 'displayName';
    const res = (await client.api(url).filter(`${field} eq '${q(folder)}'`).get()) as { value?: unknown[] };
    return {
      recordType,
      container: { check, result: 'ok', detail: res.value?.length ? `${noun} ${folder} exists` : `${noun} ${folder} does not exist yet: the first cycle creates it` },
    };
  } catch (err) {
    return { recordType, error: probeError(err), container: { check, result: 'skipped', detail: `${noun}: not checked` } };
  }
}

function mailboxFailure(id: string, code: string, status: number): Check {
  const c = code.toLowerCase();
  if (c.includes('mailboxnotenabledforrestapi')) {
    return {
      check: 'mailbox',
      result: 'failed',
      detail: `${status} ${code}: the user has no Exchange Online mailbox Graph can use (no licence, inactive, soft-deleted or on-premises)`,
      fix: `give ${id} an Exchange Online licence (or move the mailbox to Exchange Online), then try again`,
    };
  }
  return {
    check: 'mailbox',
    result: 'failed',
    detail: `${status} ${code}: no user or mailbox ${id} in the tenant`,
    fix: "check the address: it must be the user's principal name (UPN) in Microsoft Entra",
  };
}

function typeFailure(t: RecordType | 'categories' | 'email', e: ProbeError): Check {
  const noun = t === 'categories' || t === 'email' ? t : NOUN[t];
  if (e.kind === 'forbidden' && t !== 'categories' && t !== 'email') {
    return {
      check: t,
      result: 'failed',
      detail: `${noun}: ${e.status} ${e.code}: the app may not use this mailbox's ${noun}`,
      fix: `grant the Microsoft Graph application permission ${PERMISSIONS[t]} with admin consent (app registration > API permissions), or disable ${t} in the policy`,
    };
  }
  if (e.kind === 'credentials') return { check: t, result: 'failed', detail: `${noun}: ${e.status} ${e.code}: the access token was refused`, fix: 'check the app registration (client id, tenant, secret or certificate) and this host\'s clock' };
  if (e.kind === 'transient') return { check: t, result: 'failed', detail: `${noun}: Microsoft Graph did not answer (${e.status > 0 ? e.status : 'network'} ${e.code})`, fix: 'a temporary problem: try again in a few minutes' };
  return { check: t, result: 'failed', detail: `${noun}: ${e.status} ${e.code}`, fix: 'unexpected answer from Microsoft Graph: try again; if it persists, report it with this line' };
}

const LABEL: Record<string, string> = {
  token: 'token',
  'crm-user': 'CRM user',
  policy: 'policy',
  mailbox: 'mailbox',
  contact: 'contacts',
  event: 'calendar',
  task: 'To Do',
  'contact-folder': 'contacts folder',
  'event-folder': 'calendar',
  'task-folder': 'To Do list',
  categories: 'categories',
  email: 'email',
};

function line(c: Check): string {
  const mark = c.result === 'ok' ? '✓' : c.result === 'failed' ? '✗' : '-';
  return `${mark} ${(LABEL[c.check] ?? c.check).padEnd(16)} ${c.detail}${c.fix ? ` → ${c.fix}` : ''}`;
}

/** One line per check (✓ passed, ✗ failed and → what to do, - not checked); mailboxes under their address. */
export function formatReport(r: ConnectionReport): string {
  const lines = [line(r.token)];
  for (const m of r.mailboxes) {
    lines.push('', m.mailbox);
    for (const c of m.checks) lines.push(`  ${line(c)}`);
  }
  const failed = [r.token, ...r.mailboxes.flatMap((m) => m.checks)].filter((c) => c.result === 'failed').length;
  lines.push('', failed ? `${failed} check${failed > 1 ? 's' : ''} failed` : 'all checks passed');
  return lines.join('\n');
}
