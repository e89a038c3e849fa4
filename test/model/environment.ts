/**
 * The one PostgreSQL database and the one HTTPS Graph emulator every model run shares, with the activities wired
 * as src/worker/worker.ts wires them (real Graph client + MSAL, real adapters). A fresh database and emulator per
 * run would cost seconds; `reset` costs milliseconds, which is what lets a thousand sequences run in CI.
 * Mail is wired too (MailApi, as the worker passes it); a run with email gets a policy with email.enabled, so its
 * cycles file what users drop into the drop folders VAccounts, VContacts and VLeads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { createMailboxActivities } from '../../src/activities/mailbox-activities';
import { graphAdapters } from '../../src/activities/graph-adapters';
import { forgetMasterCategories } from '../../src/activities/exchange/categories';
import { configureMailboxLimits } from '../../src/activities/exchange/gate';
import { graphConnection } from '../../src/activities/exchange/graph-client';
import { openDb, type Db } from '../../src/db/connection';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import type { MailboxActivities } from '../../src/workflows/activities-contract';
import { DEFAULT_ACTIVITY_SETTINGS } from '../../src/worker/worker';
import { freshDatabase } from '../helpers/database';
import { emulatorGraphSettings } from '../helpers/stack';

/** The two mailboxes a model run may enroll; both users share a workgroup, so they share contacts. */
export const MAILBOXES = { A: 'model.a@contoso.com', B: 'model.b@contoso.com' } as const;
export type Mailbox = keyof typeof MAILBOXES;
/** The CRM user contacts are reassigned to when they leave both mailboxes' scope. */
const OUTSIDER = 'model.outside@contoso.com';
export const FOLDER = 'VContacts';
/** The policy's default drop folders (mail folders, not the contact folder above) and the record type each files to. */
export const DROP_FOLDERS = { VAccounts: 'account', VContacts: 'contact', VLeads: 'lead' } as const;
export type DropFolder = keyof typeof DROP_FOLDERS;
export const POLICY = 'model';

export interface RunSettings {
  mailboxes: Mailbox[];
  batchSize: number;
  /** Merged over the contact section of the model's policy (filter "workgroup" by default). */
  contact?: Record<string, unknown>;
  /** Story 1 needs a second record type after contacts; the property keeps to contacts. */
  tasks?: boolean;
  /** Calendars synced too (runs with meetings: no message may be sent by surprise). */
  meetings?: boolean;
  /** Mail dropped into the drop folders is filed (email.enabled; email sync with its CRM Email folder stays off). */
  email?: boolean;
}

export interface ModelEnv {
  db: Db;
  emulator: GraphEmulator;
  acts: MailboxActivities;
  /** CRM user ids: the mailboxes' users and one outside their workgroup. */
  users: Record<Mailbox | 'outside', string>;
  settings: RunSettings;
  reset(settings: RunSettings): Promise<void>;
  setBatchSize(n: number): Promise<void>;
  /** Whatever a 429's Retry-After taught the client-side gate is forgotten: the model's "time passes" between attempts. */
  forgetThrottling(): void;
  close(): Promise<void>;
}

function policySettings(s: RunSettings): Record<string, unknown> {
  return {
    batchSize: s.batchSize,
    contact: { filter: 'workgroup', ...s.contact },
    event: { enabled: !!s.meetings },
    task: { enabled: !!s.tasks },
    // Filing only: email.sync (the CRM Email folder) is not part of the model yet.
    email: { enabled: !!s.email },
  };
}

/** A SQL string literal (the reset's one statement takes no parameters). */
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * Every sync.* table that holds per-run state (not sync.policy), and the CRM tables the runs write: the
 * statements that empty them, built once. DELETE, not TRUNCATE: TRUNCATE gives each of the ~15 tables a new
 * file and makes every pooled connection reload its catalog entries (50–300 ms a run here); deleting the few
 * rows a run leaves costs a few ms. Referencing tables go before the tables they reference, and crm.tombstone
 * last, since deleting CRM rows records tombstones (crm.record_tombstones).
 */
async function clearStateSql(db: Db): Promise<string> {
  const tables = (
    await sql<{ t: string }>`
      select quote_ident(table_schema) || '.' || quote_ident(table_name) as t from information_schema.tables
      where table_type = 'BASE TABLE' and ((table_schema = 'sync' and table_name not in ('policy'))
        or (table_schema = 'crm' and table_name <> 'users'))
      order by 1`.execute(db)
  ).rows.map((x) => x.t);
  const refs = (
    await sql<{ child: string; parent: string }>`
      select conrelid::regclass::text as child, confrelid::regclass::text as parent from pg_constraint
      where contype = 'f' and conrelid <> confrelid and connamespace in ('sync'::regnamespace, 'crm'::regnamespace)`.execute(db)
  ).rows;
  const ordered: string[] = [];
  const visit = (t: string, path: string[]) => {
    if (ordered.includes(t)) return;
    if (path.includes(t)) throw new Error(`reset: foreign keys form a cycle: ${[...path, t].join(' -> ')}`);
    for (const r of refs) if (r.parent === t && tables.includes(r.child)) visit(r.child, [...path, t]);
    ordered.push(t);
  };
  for (const t of tables) if (t !== 'crm.tombstone') visit(t, []);
  if (tables.includes('crm.tombstone')) ordered.push('crm.tombstone');
  return ordered.map((t) => `delete from ${t};`).join(' ');
}

/**
 * The same database through the server's Unix socket, when it has one on this host (the system PostgreSQL and
 * the embedded one both do); undefined otherwise, and the URL's TCP connection serves. A run sends ~750
 * queries: over loopback TCP the socket writes alone were a fifth of the test process's CPU profile.
 */
async function overUnixSocket(url: string, db: Db): Promise<Db | undefined> {
  const identity = sql<{ started: string; oid: string }>`select pg_postmaster_start_time()::text as started,
    (select oid::text from pg_database where datname = current_database()) as oid`;
  const here = (await identity.execute(db)).rows[0];
  const r = await sql<{ dirs: string; port: string }>`select current_setting('unix_socket_directories') as dirs, current_setting('port') as port`.execute(db);
  const u = new URL(url);
  for (const dir of r.rows[0].dirs.split(',').map((d) => d.trim())) {
    if (!dir.startsWith('/') || !fs.existsSync(path.join(dir, `.s.PGSQL.${r.rows[0].port}`))) continue;
    const candidate = openDb(`postgres://${u.username}${u.password ? `:${u.password}` : ''}@${u.pathname}?host=${encodeURIComponent(dir)}&port=${r.rows[0].port}`);
    // The socket must lead to the very server and database the URL names.
    const there = await identity.execute(candidate).then((x) => x.rows[0], () => undefined);
    if (there?.started === here.started && there.oid === here.oid) return candidate;
    await candidate.destroy();
  }
  return undefined;
}

export async function startModelEnv(): Promise<ModelEnv> {
  // One worker process serves a thousand runs against the same mailboxes: Outlook's 10,000 requests per 10
  // minutes would make the client-side gate wait, which is not what these tests are about.
  configureMailboxLimits({ requestsPerWindow: 1_000_000_000 });
  const database = await freshDatabase();
  // Thousands of small transactions per minute: waiting for each commit's WAL flush would be most of the run
  // time, and a test database has nothing to lose in a crash. New connections take the setting.
  await sql.raw(`alter database ${new URL(database.url).pathname.slice(1)} set synchronous_commit = off`).execute(database.db);
  const socket = await overUnixSocket(database.url, database.db);
  const db = socket ?? database.db;
  await sql`select set_config('synchronous_commit', 'off', false)`.execute(db);
  const emulator = await startGraphEmulator({ port: 0 });
  const graph = graphConnection(emulatorGraphSettings(emulator), emulator.caCertPem);
  const acts = createMailboxActivities({ db, ...graphAdapters(db, graph.client), settings: DEFAULT_ACTIVITY_SETTINGS });
  const user = async (email: string, workgroup: string) =>
    (await sql<{ id: string }>`insert into crm.users (email, display_name, workgroup) values (${email}, ${email}, ${workgroup}) returning id`.execute(db)).rows[0].id;
  const users = { A: await user(MAILBOXES.A, 'model'), B: await user(MAILBOXES.B, 'model'), outside: await user(OUTSIDER, 'elsewhere') };
  await sql`insert into sync.policy (name, settings) values (${POLICY}, '{}'::jsonb)`.execute(db);
  const clearState = await clearStateSql(db);

  const env: ModelEnv = {
    db,
    emulator,
    acts,
    users,
    settings: { mailboxes: ['A'], batchSize: 500 },
    async reset(settings) {
      env.settings = settings;
      // One round trip (a multi-statement query, one transaction): a thousand runs pay for it a thousand times.
      const enroll = settings.mailboxes.map(
        (m) => `insert into sync.mailbox (id, display_name, crm_user_id, policy_name) values (${literal(MAILBOXES[m])}, ${literal(`Model ${m}`)}, ${literal(users[m])}, ${literal(POLICY)});`,
      );
      await sql
        .raw(
          [
            'begin;',
            clearState,
            `update sync.policy set settings = ${literal(JSON.stringify(policySettings(settings)))}::jsonb where name = ${literal(POLICY)};`,
            ...enroll,
            'commit;',
          ].join(' '),
        )
        .execute(db);
      emulator.admin.reset();
      forgetMasterCategories();
      env.forgetThrottling();
      for (const m of settings.mailboxes) emulator.admin.ensureMailbox(MAILBOXES[m], `Model ${m}`);
    },
    async setBatchSize(n) {
      env.settings = { ...env.settings, batchSize: n };
      await sql`update sync.policy set settings = ${JSON.stringify(policySettings(env.settings))}::jsonb, updated_at = now() where name = ${POLICY}`.execute(db);
    },
    forgetThrottling() {
      configureMailboxLimits({});
    },
    async close() {
      await emulator.close().catch(() => undefined);
      await socket?.destroy().catch(() => undefined);
      await database.drop().catch(() => undefined);
    },
  };
  return env;
}
