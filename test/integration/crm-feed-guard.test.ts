/**
 * The CRM feed's restore guard (migration 0007_crm_restore_guard, src/activities/crm/feed-guard.ts) on a real
 * PostgreSQL: hard deletes as tombstones in the feed's xid8 window, the watermark check (origin and counter),
 * the migration's backfill, the purge, and — when PostgreSQL's client and server binaries are installed —
 * real pg_dump/pg_restore round trips: into a new database of the same cluster, and between this cluster and
 * a freshly initdb'd one whose transaction counter is in another epoch.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Migrator, sql, type Kysely, type RawBuilder } from 'kysely';
import pg from 'pg';
import { migrate, openDb, type Db } from '../../src/db/connection';
import { migrationProvider } from '../../src/db/migrations';
import type { Database } from '../../src/db/schema';
import { checkWatermark, currentOrigin, purgeTombstones, tombstonesSince, type FeedTable } from '../../src/activities/crm/feed-guard';
import { freshDatabase } from '../helpers/database';
import { freePort } from '../helpers/ports';

const EPOCH = 1n << 32n;
const plus = (x: string, n: bigint) => (BigInt(x) + n).toString();

async function one<T>(db: Kysely<Database>, q: RawBuilder<T>): Promise<T> {
  return (await q.execute(db)).rows[0];
}
/** The feed's upper bound: everything below it has finished. */
const feedUpper = async (db: Kysely<Database>) => (await one(db, sql<{ x: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as x`)).x;
/** The next transaction id the cluster will hand out. */
const nextXid = async (db: Kysely<Database>) => (await one(db, sql<{ x: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as x`)).x;

async function addUser(db: Kysely<Database>, email: string): Promise<string> {
  return (await one(db, sql<{ id: string }>`insert into crm.users (email, display_name) values (${email}, ${email}) returning id::text as id`)).id;
}
async function addMailbox(db: Kysely<Database>, id: string, userId: string): Promise<void> {
  await sql`insert into sync.mailbox (id, crm_user_id) values (${id}, ${userId}::uuid)`.execute(db);
}
async function addRow(db: Kysely<Database>, table: FeedTable, owner: string, label: string): Promise<string> {
  const q =
    table === 'contacts'
      ? sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}::uuid, ${label}, 'Test') returning id::text as id`
      : table === 'events'
        ? sql<{ id: string }>`insert into crm.events (owner_id, subject, start_local, end_local) values (${owner}::uuid, ${label}, '2030-01-07 09:00', '2030-01-07 10:00') returning id::text as id`
        : sql<{ id: string }>`insert into crm.tasks (owner_id, subject) values (${owner}::uuid, ${label}) returning id::text as id`;
  return (await one(db, q)).id;
}
/** Waits until every transaction up to `txid` has finished (other test files share the cluster). */
async function waitUpperPast(db: Kysely<Database>, txid: string): Promise<string> {
  let upper = await feedUpper(db);
  for (let i = 0; i < 400 && BigInt(upper) <= BigInt(txid); i++) {
    await new Promise((r) => setTimeout(r, 50));
    upper = await feedUpper(db);
  }
  assert.ok(BigInt(upper) > BigInt(txid), `transactions below ${txid} still running`);
  return upper;
}

/** Hard-deletes a row in its own transaction (as `writer`'s sync when given) and answers that transaction's id. */
async function hardDelete(db: Kysely<Database>, table: FeedTable, id: string, writer?: string): Promise<string> {
  return db.transaction().execute(async (tx) => {
    if (writer) await sql`select set_config('cxsync.writer', ${writer}, true)`.execute(tx);
    await sql`delete from ${sql.table(`crm.${table}`)} where id = ${id}::uuid`.execute(tx);
    return (await sql<{ t: string }>`select pg_current_xact_id()::text as t`.execute(tx)).rows[0].t;
  });
}

describe('tombstones of hard-deleted CRM rows', () => {
  let env: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let anna: string;
  const MB = 'anna@contoso.com';

  before(async () => {
    env = await freshDatabase();
    db = env.db;
    anna = await addUser(db, MB);
    await addMailbox(db, MB, anna);
  });
  after(async () => env?.drop());

  for (const table of ['contacts', 'events', 'tasks'] as const) {
    it(`a hard DELETE on crm.${table} is in the window that holds its transaction and only there`, async () => {
      const id = await addRow(db, table, anna, `Delete me (${table})`);
      const t = await hardDelete(db, table, id);
      assert.deepEqual(await tombstonesSince(db, table, { after: t, upper: plus(t, 1n), mailboxId: MB }), [{ id, ownerId: anna, changeTxid: t }]);
      assert.deepEqual(await tombstonesSince(db, table, { after: null, upper: plus(t, 1n), mailboxId: MB }), [{ id, ownerId: anna, changeTxid: t }]);
      // Before the window (already read) and after it (upper is exclusive, as in the row query).
      assert.deepEqual(await tombstonesSince(db, table, { after: plus(t, 1n), upper: plus(t, 1000n), mailboxId: MB }), []);
      assert.deepEqual(await tombstonesSince(db, table, { after: null, upper: t, mailboxId: MB }), []);
      // Another table's feed does not see it.
      const other: FeedTable = table === 'contacts' ? 'tasks' : 'contacts';
      assert.deepEqual(await tombstonesSince(db, other, { after: t, upper: plus(t, 1n), mailboxId: MB }), []);
    });

    it(`a hard DELETE on crm.${table} made by the mailbox's own sync is not echoed to it, but reaches other mailboxes`, async () => {
      const id = await addRow(db, table, anna, `Synced delete (${table})`);
      const t = await hardDelete(db, table, id, MB);
      const window = { after: t, upper: plus(t, 1n) };
      assert.deepEqual(await tombstonesSince(db, table, { ...window, mailboxId: MB }), []);
      assert.deepEqual(await tombstonesSince(db, table, { ...window, mailboxId: 'bob@contoso.com' }), [{ id, ownerId: anna, changeTxid: t }]);
    });
  }

  it('a soft delete leaves no tombstone (the row query reports it); an id inserted again is not reported deleted', async () => {
    const soft = await addRow(db, 'contacts', anna, 'Soft');
    const u0 = await nextXid(db);
    await sql`update crm.contacts set deleted_at = now() where id = ${soft}::uuid`.execute(db);
    assert.deepEqual(await tombstonesSince(db, 'contacts', { after: u0, upper: plus(await nextXid(db), 1n), mailboxId: MB }), []);

    const again = await addRow(db, 'contacts', anna, 'Phoenix');
    const t = await hardDelete(db, 'contacts', again);
    await sql`insert into crm.contacts (id, owner_id, first_name) values (${again}::uuid, ${anna}::uuid, 'Phoenix')`.execute(db);
    assert.deepEqual(await tombstonesSince(db, 'contacts', { after: t, upper: plus(t, 1n), mailboxId: MB }), []);
  });

  it('one entry per id, its last deletion in the window; a delete, re-insert and delete in one transaction is one tombstone', async () => {
    const id = await addRow(db, 'tasks', anna, 'Twice');
    const t = await db.transaction().execute(async (tx) => {
      await sql`delete from crm.tasks where id = ${id}::uuid`.execute(tx);
      await sql`insert into crm.tasks (id, owner_id, subject) values (${id}::uuid, ${anna}::uuid, 'Twice')`.execute(tx);
      await sql`delete from crm.tasks where id = ${id}::uuid`.execute(tx);
      return (await sql<{ t: string }>`select pg_current_xact_id()::text as t`.execute(tx)).rows[0].t;
    });
    assert.deepEqual(await tombstonesSince(db, 'tasks', { after: t, upper: plus(t, 1n), mailboxId: MB }), [{ id, ownerId: anna, changeTxid: t }]);
    // Re-created by someone, then deleted by the mailbox's own sync: the last deletion decides, an echo.
    await sql`insert into crm.tasks (id, owner_id, subject) values (${id}::uuid, ${anna}::uuid, 'Twice')`.execute(db);
    const t2 = await hardDelete(db, 'tasks', id, MB);
    assert.deepEqual(await tombstonesSince(db, 'tasks', { after: t, upper: plus(t2, 1n), mailboxId: MB }), []);
    assert.deepEqual(await tombstonesSince(db, 'tasks', { after: t, upper: plus(t2, 1n), mailboxId: 'bob@contoso.com' }), [{ id, ownerId: anna, changeTxid: t2 }]);
  });

  it('a TRUNCATE leaves a tombstone per row; rows reloaded afterwards are not reported deleted', async () => {
    const ids = [await addRow(db, 'tasks', anna, 'T1'), await addRow(db, 'tasks', anna, 'T2'), await addRow(db, 'tasks', anna, 'T3')];
    const t = await db.transaction().execute(async (tx) => {
      await sql`truncate crm.tasks`.execute(tx);
      return (await sql<{ t: string }>`select pg_current_xact_id()::text as t`.execute(tx)).rows[0].t;
    });
    const got = await tombstonesSince(db, 'tasks', { after: t, upper: plus(t, 1n), mailboxId: MB });
    assert.deepEqual(got.map((g) => g.id).sort(), [...ids].sort());
    await sql`insert into crm.tasks (id, owner_id, subject) values (${ids[0]}::uuid, ${anna}::uuid, 'T1')`.execute(db);
    assert.deepEqual((await tombstonesSince(db, 'tasks', { after: t, upper: plus(t, 1n), mailboxId: MB })).map((g) => g.id).sort(), [ids[1], ids[2]].sort());

    // TRUNCATE … CASCADE empties the referencing tables too, and each leaves its tombstones.
    const contact = await addRow(db, 'contacts', anna, 'Referenced');
    const task = (await one(db, sql<{ id: string }>`insert into crm.tasks (owner_id, subject, contact_id) values (${anna}::uuid, 'Call back', ${contact}::uuid) returning id::text as id`)).id;
    const t2 = await db.transaction().execute(async (tx) => {
      await sql`truncate crm.contacts cascade`.execute(tx);
      return (await sql<{ t: string }>`select pg_current_xact_id()::text as t`.execute(tx)).rows[0].t;
    });
    const w = { after: t2, upper: plus(t2, 1n), mailboxId: MB };
    assert.ok((await tombstonesSince(db, 'contacts', w)).some((g) => g.id === contact));
    assert.deepEqual((await tombstonesSince(db, 'tasks', w)).map((g) => g.id).sort(), [ids[0], task].sort());
  });

  it('a TRUNCATE of crm.tombstone with the feed tables in one statement (as test resets do) leaves nothing behind', async () => {
    await addRow(db, 'contacts', anna, 'Reset');
    await addRow(db, 'tasks', anna, 'Reset');
    await sql`truncate crm.contacts, crm.events, crm.event_attendees, crm.tasks, crm.tombstone cascade`.execute(db);
    assert.equal((await one(db, sql<{ n: number }>`select count(*)::int as n from crm.tombstone`)).n, 0);
  });

  it('is commit-order safe: a delete still open when the window closes lands in the next window', async () => {
    const id = await addRow(db, 'contacts', anna, 'Slow');
    const w0 = await feedUpper(db);
    const slow = new pg.Client({ connectionString: env.url });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query('delete from crm.contacts where id = $1', [id]);
      const t = (await slow.query<{ t: string }>('select pg_current_xact_id()::text as t')).rows[0].t;
      const w1 = await feedUpper(db);
      assert.ok(BigInt(w1) <= BigInt(t), 'the window closes below a transaction still running');
      assert.deepEqual(await tombstonesSince(db, 'contacts', { after: w0, upper: w1, mailboxId: MB }), []);
      await slow.query('commit');
      const w2 = await waitUpperPast(db, t);
      assert.deepEqual(await tombstonesSince(db, 'contacts', { after: w1, upper: w2, mailboxId: MB }), [{ id, ownerId: anna, changeTxid: t }]);
    } finally {
      await slow.end();
    }
  });
});

describe('checkWatermark', () => {
  let env: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;

  before(async () => {
    env = await freshDatabase();
    db = env.db;
  });
  after(async () => env?.drop());

  it('the origin names the cluster, the database and the feed tables, and is the same on every connection', async () => {
    const origin = await currentOrigin(db);
    const control = await one(db, sql<{ sysid: string; db: string }>`
      select (select system_identifier::text from pg_control_system()) as sysid,
             (select oid::text from pg_database where datname = current_database()) as db`);
    assert.match(origin, new RegExp(`^system=${control.sysid} db=${control.db} crm\\.contacts=\\d+ crm\\.events=\\d+ crm\\.tasks=\\d+ crm\\.tombstone=\\d+ crm\\.email_activities=\\d+$`));
    const other = openDb(env.url, { max: 1 });
    try {
      assert.equal(await currentOrigin(other), origin);
    } finally {
      await other.destroy();
    }
  });

  it('is ok for no watermark, for a watermark the feed just produced, and for one at the next transaction id', async () => {
    const origin = await currentOrigin(db);
    assert.deepEqual(await checkWatermark(db, { watermark: null, origin: null }), { ok: true });
    assert.deepEqual(await checkWatermark(db, { watermark: await feedUpper(db), origin }), { ok: true });
    assert.deepEqual(await checkWatermark(db, { watermark: '0', origin }), { ok: true });
    assert.deepEqual(await checkWatermark(db, { watermark: await nextXid(db), origin }), { ok: true });
  });

  it('is not ok for a watermark ahead of the transaction counter (the same cluster rewound)', async () => {
    const origin = await currentOrigin(db);
    for (const watermark of [plus(await nextXid(db), 1000n), plus(await nextXid(db), 3n * EPOCH)]) {
      const r = await checkWatermark(db, { watermark, origin, recordType: 'contact' });
      assert.equal(r.ok, false);
      assert.ok(!r.ok);
      assert.match(r.reason, /^the CRM database was restored or replaced \(its transaction counter is at \d+, behind the saved watermark \d+: the counter was rewound/);
      assert.match(r.reason, /: a full resync of contacts starts; nothing is duplicated$/);
    }
  });

  it('is not ok for a watermark saved under another origin, and says which part differs', async () => {
    const origin = await currentOrigin(db);
    const otherCluster = origin.replace(/^system=\S+/, 'system=1234567890123456789');
    const r = await checkWatermark(db, { watermark: await feedUpper(db), origin: otherCluster, recordType: 'event' });
    assert.ok(!r.ok);
    assert.match(r.reason, /^the CRM database was restored or replaced \(another PostgreSQL cluster: system identifier \d+, the watermark was saved under 1234567890123456789\): a full resync of events starts; nothing is duplicated$/);

    const tableRecreated = origin.replace(/crm\.tasks=\d+/, 'crm.tasks=1');
    const r2 = await checkWatermark(db, { watermark: await feedUpper(db), origin: tableRecreated, recordType: 'task' });
    assert.ok(!r2.ok);
    assert.match(r2.reason, /table crm\.tasks was re-created: oid \d+, was 1/);
  });

  it('is not ok for a watermark without an origin, or one that is not a transaction id', async () => {
    const r = await checkWatermark(db, { watermark: await feedUpper(db), origin: null, recordType: 'task' });
    assert.ok(!r.ok);
    assert.match(r.reason, /has no recorded origin.*a full resync of tasks starts; nothing is duplicated$/);
    const r2 = await checkWatermark(db, { watermark: 'not-a-txid', origin: await currentOrigin(db) });
    assert.ok(!r2.ok);
    assert.match(r2.reason, /is not a transaction id: a full resync of this record type starts/);
  });

  it('is not ok once a feed table was dropped and created again (as pg_restore --clean does), even with its data copied', async () => {
    const watermark = await feedUpper(db);
    const origin = await currentOrigin(db);
    await sql`create table crm.tasks_copy (like crm.tasks including all)`.execute(db);
    await sql`insert into crm.tasks_copy select * from crm.tasks`.execute(db);
    await sql`drop table crm.tasks`.execute(db);
    await sql`alter table crm.tasks_copy rename to tasks`.execute(db);
    const r = await checkWatermark(db, { watermark, origin, recordType: 'task' });
    assert.ok(!r.ok);
    assert.match(r.reason, /^the CRM database was restored or replaced \(table crm\.tasks was re-created: oid \d+, was \d+\): a full resync of tasks starts; nothing is duplicated$/);
  });
});

describe('migration 0007 on a database with saved watermarks', () => {
  it('records the current origin with watermarks that fit the counter, and none with one ahead of it', async () => {
    const admin = process.env.DATABASE_URL!;
    const name = `cxsync_t_${process.pid}_${randomBytes(3).toString('hex')}`;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`create database ${name}`);
    const u = new URL(admin);
    u.pathname = `/${name}`;
    const db = openDb(u.toString());
    try {
      const names = Object.keys(await migrationProvider.getMigrations()).sort();
      const before0007 = names[names.indexOf('0007_crm_restore_guard') - 1];
      const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema: 'public' });
      const r = await migrator.migrateTo(before0007);
      assert.equal(r.error, undefined);
      const user = await addUser(db, 'old@contoso.com');
      await addMailbox(db, 'old@contoso.com', user);
      await addMailbox(db, 'moved@contoso.com', user);
      const w = await feedUpper(db);
      await sql`insert into sync.cursor (mailbox_id, record_type, crm_watermark) values
        ('old@contoso.com', 'contact', ${w}), ('old@contoso.com', 'event', null), ('moved@contoso.com', 'contact', ${plus(await nextXid(db), EPOCH)})`.execute(db);

      await migrate(db);
      const rows = (
        await sql<{ mailbox_id: string; record_type: string; origin: string | null }>`
          select mailbox_id, record_type, crm_watermark_origin as origin from sync.cursor order by mailbox_id, record_type`.execute(db)
      ).rows;
      const origin = await currentOrigin(db);
      // 0007 recorded the origin of its day; 0015 later names crm.email_activities too. checkWatermark compares
      // the keys both origins have, so the older one still passes (no full read for every mailbox on upgrade).
      const recorded = origin.replace(/ crm\.email_activities=\d+$/, '');
      assert.deepEqual(rows, [
        { mailbox_id: 'moved@contoso.com', record_type: 'contact', origin: null },
        { mailbox_id: 'old@contoso.com', record_type: 'contact', origin: recorded },
        { mailbox_id: 'old@contoso.com', record_type: 'event', origin: null },
      ]);
      assert.deepEqual(await checkWatermark(db, { watermark: w, origin: recorded }), { ok: true });
      assert.deepEqual(await checkWatermark(db, { watermark: w, origin }), { ok: true });

      assert.equal((await migrator.migrateTo(before0007)).error, undefined);
      const left = await one(db, sql<{ tombstone: string | null; origin: number }>`
        select to_regclass('crm.tombstone')::text as tombstone,
          (select count(*)::int from information_schema.columns where table_schema = 'sync' and table_name = 'cursor' and column_name = 'crm_watermark_origin') as origin`);
      assert.deepEqual(left, { tombstone: null, origin: 0 });
    } finally {
      await db.destroy();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    }
  });
});

describe('purgeTombstones', () => {
  let env: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;

  before(async () => {
    env = await freshDatabase();
    db = env.db;
  });
  after(async () => env?.drop());

  it('keeps what a saved watermark may still read and what is younger than the age floor; drops tombstones from another counter', async () => {
    const user = await addUser(db, 'carl@contoso.com');
    await addMailbox(db, 'carl@contoso.com', user);
    const read = await addRow(db, 'contacts', user, 'Read');
    const unread = await addRow(db, 'contacts', user, 'Unread');
    const event = await addRow(db, 'events', user, 'Event');
    const tRead = await hardDelete(db, 'contacts', read);
    const watermark = plus(tRead, 1n);
    const tUnread = await hardDelete(db, 'contacts', unread);
    await waitUpperPast(db, await hardDelete(db, 'events', event));
    await sql`insert into sync.cursor (mailbox_id, record_type, crm_watermark) values ('carl@contoso.com', 'contact', ${watermark})`.execute(db);
    // Restored from another cluster: stamped by a counter ahead of ours.
    const foreign = plus(await nextXid(db), 2n * EPOCH);
    await sql`insert into crm.tombstone (table_name, id, owner_id, change_txid) values ('contacts', gen_random_uuid(), null, ${foreign}::xid8)`.execute(db);
    const left = async () => (await sql<{ table_name: string; change_txid: string }>`select table_name, change_txid::text from crm.tombstone order by change_txid`.execute(db)).rows;

    assert.deepEqual(await purgeTombstones(db), { contacts: 1, events: 0, tasks: 0, email_activities: 0 });
    assert.equal((await left()).length, 3, 'the age floor keeps tombstones below the watermarks for now');

    assert.deepEqual(await purgeTombstones(db, { olderThan: '0 seconds' }), { contacts: 1, events: 1, tasks: 0, email_activities: 0 });
    assert.deepEqual(await left(), [{ table_name: 'contacts', change_txid: tUnread }]);
  });
});

// ——— Real dump and restore ———————————————————————————————————————————————————————————————————————————————

interface PgBin {
  dir: string;
  major: number;
}

function binMajor(file: string): number | null {
  const r = spawnSync(file, ['--version'], { encoding: 'utf8' });
  const m = /\(PostgreSQL\)\s+(\d+)/.exec(r.stdout ?? '');
  return r.status === 0 && m ? Number(m[1]) : null;
}

/** A directory with pg_dump and pg_restore able to dump a server of `serverMajor`, newest first. */
function findPgBin(serverMajor: number, need: string[]): PgBin | null {
  const dirs: string[] = [];
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0) dirs.push(cfg.stdout.trim());
  if (fs.existsSync('/usr/lib/postgresql')) {
    for (const v of fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) dirs.push(`/usr/lib/postgresql/${v}/bin`);
  }
  for (const dir of dirs) {
    if (!need.every((b) => fs.existsSync(path.join(dir, b)))) continue;
    const major = binMajor(path.join(dir, 'pg_dump'));
    if (major !== null && major >= serverMajor) return { dir, major };
  }
  return null;
}

function run(file: string, args: string[], asPostgres = false): string {
  const root = process.getuid?.() === 0;
  const [cmd, argv] = asPostgres && root ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A new PostgreSQL cluster (initdb), its transaction counter moved to `epoch` before its first start. */
async function startCluster(bin: PgBin, epoch: number): Promise<{ url: string; stop(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-cluster-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    fs.chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  run(path.join(bin.dir, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], true);
  run(path.join(bin.dir, 'pg_resetwal'), ['-e', String(epoch), '-D', data], true);
  const port = await freePort();
  run(path.join(bin.dir, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`, 'start'], true);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        run(path.join(bin.dir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], true);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

const parseKeys = (origin: string) => new Map(origin.split(' ').map((kv) => kv.split('=') as [string, string]));

function dbUrl(serverUrl: string, name: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(serverUrl: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/** pg_dump of `fromUrl` restored into a new database `name` of the server at `toServerUrl`. */
async function dumpRestore(bin: PgBin, fromUrl: string, toServerUrl: string, name: string): Promise<string> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-dump-'));
  try {
    const file = path.join(tmp, 'crm.dump');
    run(path.join(bin.dir, 'pg_dump'), ['-Fc', '-f', file, fromUrl]);
    await adminQuery(toServerUrl, `create database ${name}`);
    const url = dbUrl(toServerUrl, name);
    run(path.join(bin.dir, 'pg_restore'), ['--no-owner', '--exit-on-error', '-d', url, file]);
    return url;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** A CRM with a synced mailbox: a contact, a hard-deleted one, and a cursor whose watermark and origin were saved. */
async function seedSyncedCrm(db: Kysely<Database>): Promise<{ watermark: string; origin: string; contact: string }> {
  const user = await addUser(db, 'dora@contoso.com');
  await addMailbox(db, 'dora@contoso.com', user);
  const contact = await addRow(db, 'contacts', user, 'Kept');
  await hardDelete(db, 'contacts', await addRow(db, 'contacts', user, 'Gone'));
  const watermark = await feedUpper(db);
  const origin = await currentOrigin(db);
  await sql`insert into sync.cursor (mailbox_id, record_type, crm_watermark, crm_watermark_origin) values ('dora@contoso.com', 'contact', ${watermark}, ${origin})`.execute(db);
  return { watermark, origin, contact };
}

async function savedCursor(db: Kysely<Database>): Promise<{ watermark: string; origin: string }> {
  return one(db, sql<{ watermark: string; origin: string }>`
    select crm_watermark as watermark, crm_watermark_origin as origin from sync.cursor where mailbox_id = 'dora@contoso.com' and record_type = 'contact'`);
}

describe('a real pg_dump / pg_restore', () => {
  const admin = process.env.DATABASE_URL ?? '';
  let serverMajor = 0;
  let dumpBin: PgBin | null = null;
  let clusterBin: PgBin | null = null;
  const cleanup: Array<() => Promise<void> | void> = [];

  before(async () => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    serverMajor = Math.floor(Number((await c.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0].v) / 10000);
    await c.end();
    dumpBin = findPgBin(serverMajor, ['pg_dump', 'pg_restore']);
    clusterBin = findPgBin(serverMajor, ['pg_dump', 'pg_restore', 'initdb', 'pg_ctl', 'pg_resetwal']);
  });
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('into a new database of the same cluster: origin differs (database and tables re-created), counter not rewound', async (t) => {
    if (!dumpBin) return t.skip(`no pg_dump/pg_restore for PostgreSQL ${serverMajor} or newer on this machine`);
    const src = await freshDatabase();
    cleanup.push(() => src.drop());
    const saved = await seedSyncedCrm(src.db);

    const name = `cxsync_t_${process.pid}_${randomBytes(3).toString('hex')}`;
    const url = await dumpRestore(dumpBin, src.url, admin, name);
    const restored = openDb(url, { max: 2 });
    cleanup.push(async () => {
      await restored.destroy();
      await adminQuery(admin, `drop database if exists ${name} with (force)`);
    });

    // The dump carried sync.cursor along: the restored database holds the same watermark and origin.
    assert.deepEqual(await savedCursor(restored), { watermark: saved.watermark, origin: saved.origin });
    // Rows and tombstones keep their change_txid (triggers are created after the data is loaded).
    const stamp = async (d: Kysely<Database>) => (await one(d, sql<{ t: string }>`select change_txid::text as t from crm.contacts where id = ${saved.contact}::uuid`)).t;
    assert.equal(await stamp(restored), await stamp(src.db));
    assert.equal((await one(restored, sql<{ n: number }>`select count(*)::int as n from crm.tombstone`)).n, 1);

    const check = await checkWatermark(restored, { watermark: saved.watermark, origin: saved.origin, recordType: 'contact' });
    assert.ok(!check.ok);
    assert.match(check.reason, /^the CRM database was restored or replaced \(the database was re-created: oid \d+, was \d+\): a full resync of contacts starts; nothing is duplicated$/);
    // Every feed table was re-created too (what a restore of the crm tables alone into this database would show).
    const [was, is] = [parseKeys(saved.origin), parseKeys(await currentOrigin(restored))];
    for (const key of ['crm.contacts', 'crm.events', 'crm.tasks', 'crm.tombstone']) assert.notEqual(is.get(key), was.get(key), key);
    assert.equal(is.get('system'), was.get('system'));
    // Same cluster, so the counter went on: the watermark is not ahead of it. The resync is the guard's
    // conservative answer: it cannot tell this from a restore of the crm tables under a newer sync state.
    assert.deepEqual(await checkWatermark(restored, { watermark: saved.watermark, origin: await currentOrigin(restored) }), { ok: true });
    // The original database is untouched by all this.
    assert.deepEqual(await checkWatermark(src.db, { watermark: saved.watermark, origin: saved.origin }), { ok: true });
  });

  it('between this cluster and a new one in another counter epoch: the system identifier catches what the counter cannot', async (t) => {
    if (!clusterBin) return t.skip(`no initdb/pg_ctl/pg_resetwal with pg_dump for PostgreSQL ${serverMajor} or newer on this machine`);
    const other = await startCluster(clusterBin, 3);
    cleanup.push(() => other.stop());

    // This cluster (epoch 0) → the new one (epoch 3): the new counter is far past the watermark, so only the
    // origin tells that the watermark counts in another cluster's numbers.
    const src = await freshDatabase();
    cleanup.push(() => src.drop());
    const saved = await seedSyncedCrm(src.db);
    const intoOther = openDb(await dumpRestore(clusterBin, src.url, other.url, 'restored_here'), { max: 2 });
    cleanup.push(() => intoOther.destroy());
    const check = await checkWatermark(intoOther, { ...(await savedCursor(intoOther)), recordType: 'contact' });
    assert.ok(!check.ok);
    assert.match(check.reason, /^the CRM database was restored or replaced \(another PostgreSQL cluster: system identifier \d+, the watermark was saved under \d+/);
    assert.match(check.reason, /a full resync of contacts starts; nothing is duplicated$/);
    assert.ok(BigInt(saved.watermark) < BigInt(await nextXid(intoOther)));
    assert.deepEqual(await checkWatermark(intoOther, { watermark: saved.watermark, origin: await currentOrigin(intoOther) }), { ok: true }, 'the counter check alone would have let it through');

    // The new cluster (epoch 3) → this one (epoch 0): the watermark is also ahead of this counter, and the
    // restored rows are stamped above it, so a full read bounded by `change_txid < upper` would not see them.
    await adminQuery(other.url, 'create database crm_there');
    const there = openDb(dbUrl(other.url, 'crm_there'), { max: 2 });
    cleanup.push(() => there.destroy());
    await migrate(there);
    const savedThere = await seedSyncedCrm(there);
    assert.ok(BigInt(savedThere.watermark) > 3n * EPOCH);

    const name = `cxsync_t_${process.pid}_${randomBytes(3).toString('hex')}`;
    const back = openDb(await dumpRestore(clusterBin, dbUrl(other.url, 'crm_there'), admin, name), { max: 2 });
    cleanup.push(async () => {
      await back.destroy();
      await adminQuery(admin, `drop database if exists ${name} with (force)`);
    });
    const check2 = await checkWatermark(back, { ...(await savedCursor(back)), recordType: 'contact' });
    assert.ok(!check2.ok);
    assert.match(check2.reason, /another PostgreSQL cluster/);
    const counterOnly = await checkWatermark(back, { watermark: savedThere.watermark, origin: await currentOrigin(back), recordType: 'contact' });
    assert.ok(!counterOnly.ok);
    assert.match(counterOnly.reason, /its transaction counter is at \d+, behind the saved watermark \d+/);
    const stamps = await one(back, sql<{ rows: number; above: number }>`
      select count(*)::int as rows, count(*) filter (where change_txid >= pg_snapshot_xmax(pg_current_snapshot()))::int as above from crm.contacts`);
    assert.deepEqual(stamps, { rows: 1, above: 1 });
  });
});
