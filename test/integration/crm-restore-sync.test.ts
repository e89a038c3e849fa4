/**
 * The CRM feed's restore guard wired into the cycle, on the real stack (Temporal, PostgreSQL, the HTTPS Graph
 * emulator): a hard DELETE of a synced CRM row removes its Outlook copy; a saved watermark from another
 * cluster, ahead of the transaction counter, or with no recorded origin makes the next read a full one that
 * brings edits hidden below the watermark to Outlook and duplicates nothing on either side, with the reason
 * in the sync log; `cxsync maintenance` purges tombstones no mailbox needs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { addDays } from '../../src/domain/timezone';
import type { RecordType } from '../../src/domain/status';
import type { EmulatorEvent } from '../../src/emulator/calendar';
import type { EmulatorTask } from '../../src/emulator/todo';
import { cxsync, oneLine } from '../helpers/cli';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);
const TABLE: Record<RecordType, 'contacts' | 'events' | 'tasks'> = { contact: 'contacts', event: 'events', task: 'tasks' };
const TYPES: RecordType[] = ['contact', 'event', 'task'];
/** The emulator's events and tasks with the Graph fields these tests read. */
type OutlookEvent = EmulatorEvent & { subject: string; location?: { displayName?: string } };
type OutlookTask = EmulatorTask & { title: string; importance: string; body: { content: string } };

describe('CRM restore guard in the sync cycle', () => {
  let s: Stack;
  let anna: string;
  let other: string;

  /** The Outlook copies: contacts by surname, events and tasks by subject/title. */
  const outlook = (t: RecordType): string[] => {
    if (t === 'contact') return s.emulator.admin.listContacts(ANNA, 'VContacts').map((c) => String(c.surname)).sort();
    if (t === 'event') return (s.emulator.admin.listEvents(ANNA, 'VEvents') as OutlookEvent[]).map((e) => e.subject).sort();
    return (s.emulator.admin.listTasks(ANNA, 'VTasks') as OutlookTask[]).map((x) => x.title).sort();
  };
  const crmCount = async (t: RecordType) =>
    Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(`crm.${TABLE[t]}`)} where deleted_at is null`.execute(s.db)).rows[0].n);
  const mappings = async (t: RecordType) =>
    Number((await sql<{ n: string }>`select count(*)::text as n from sync.mapping where mailbox_id = ${ANNA} and record_type = ${t}`.execute(s.db)).rows[0].n);
  const sync = async () => {
    const st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    return st!.lastCycle!;
  };
  /** Sync log lines (newest first) for a record type since a given log id. */
  const logSince = async (id: number, t?: RecordType) =>
    (await sql<{ id: string; message: string; level: string; item_id: string | null; record_type: string | null }>`
      select id::text, message, level, item_id, record_type from sync.log
      where mailbox_id = ${ANNA} and id > ${id} and (${t ?? null}::text is null or record_type = ${t ?? null}) order by id`.execute(s.db)).rows;
  const lastLogId = async () => Number((await sql<{ n: string }>`select coalesce(max(id), 0)::text as n from sync.log`.execute(s.db)).rows[0].n);
  const cursor = async (t: RecordType) =>
    (await sql<{ crm_watermark: string | null; pending_crm_watermark: string | null; crm_watermark_origin: string | null }>`
      select crm_watermark, pending_crm_watermark, crm_watermark_origin from sync.cursor where mailbox_id = ${ANNA} and record_type = ${t}`.execute(s.db)).rows[0];
  /** Writes a row as if it came from a restored dump of another cluster: stamped with an old, low transaction id. */
  const restamp = async (t: RecordType, id: string, set: ReturnType<typeof sql>) => {
    const table = sql.table(`crm.${TABLE[t]}`);
    await s.db.transaction().execute(async (tx) => {
      await sql`alter table ${table} disable trigger ${sql.id(`${TABLE[t]}_stamp`)}`.execute(tx);
      await sql`update ${table} set ${set}, change_txid = '3'::xid8, changed_by = null, updated_at = now() where id = ${id}::uuid`.execute(tx);
      await sql`alter table ${table} enable trigger ${sql.id(`${TABLE[t]}_stamp`)}`.execute(tx);
    });
  };
  const totals = (c: NonNullable<Awaited<ReturnType<typeof sync>>>, t: RecordType) => {
    const x = c.types[t]!;
    return { exCreated: x.exchange.created, exDeleted: x.exchange.deleted, crmCreated: x.crm.created, crmDeleted: x.crm.deleted };
  };

  const ids: Record<string, string> = {};
  const insert = async (key: string, q: ReturnType<typeof sql<{ id: string }>>) => {
    ids[key] = (await q.execute(s.db)).rows[0].id;
  };

  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    other = await s.addUser('bob@contoso.com', 'Bob Stone');
    for (const n of ['Weber', 'Rossi', 'Keller', 'Novak']) {
      await insert(`contact ${n}`, sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}::uuid, 'X', ${n}, ${`${n.toLowerCase()}@fabrikam.de`}) returning id::text as id`);
    }
    for (const [n, d] of [['Kickoff', 5], ['Review', 6], ['Retro', 7]] as const) {
      await insert(`event ${n}`, sql<{ id: string }>`insert into crm.events (owner_id, subject, start_local, end_local, time_zone) values
        (${anna}::uuid, ${n}, ${`${day(d)}T09:00`}::timestamp, ${`${day(d)}T10:00`}::timestamp, 'Europe/Berlin') returning id::text as id`);
    }
    for (const n of ['Call back', 'Send offer', 'Book travel']) {
      await insert(`task ${n}`, sql<{ id: string }>`insert into crm.tasks (owner_id, subject, status, priority, due_date) values
        (${anna}::uuid, ${n}, 'Open', 'Medium', ${day(4)}::date) returning id::text as id`);
    }
    // Bob's contact is not in Anna's scope: its hard delete is nothing to her mailbox.
    await insert('bob contact', sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name) values (${other}::uuid, 'Y', 'Fremd') returning id::text as id`);
    await s.operator.enroll(ANNA);
    const c = await sync();
    assert.deepEqual(outlook('contact'), ['Keller', 'Novak', 'Rossi', 'Weber']);
    assert.deepEqual(outlook('event'), ['Kickoff', 'Retro', 'Review']);
    assert.deepEqual(outlook('task'), ['Book travel', 'Call back', 'Send offer']);
    for (const t of TYPES) assert.equal(c.types[t]?.errors, 0, t);
  });
  after(async () => s?.teardown());

  it('a hard DELETE of a synced contact, event or task removes its Outlook copy on the next cycle, logged as such', async () => {
    const since = await lastLogId();
    const deleted = { contact: ids['contact Novak'], event: ids['event Retro'], task: ids['task Book travel'] };
    for (const t of TYPES) await sql`delete from ${sql.table(`crm.${TABLE[t]}`)} where id = ${deleted[t]}::uuid`.execute(s.db);
    await sql`delete from crm.contacts where id = ${ids['bob contact']}::uuid`.execute(s.db);
    const c = await sync();
    for (const t of TYPES) assert.deepEqual(totals(c, t), { exCreated: 0, exDeleted: 1, crmCreated: 0, crmDeleted: 0 }, t);
    assert.deepEqual(outlook('contact'), ['Keller', 'Rossi', 'Weber']);
    assert.deepEqual(outlook('event'), ['Kickoff', 'Review']);
    assert.deepEqual(outlook('task'), ['Call back', 'Send offer']);
    for (const t of TYPES) assert.equal(await mappings(t), outlook(t).length, `${t}: the mapping went with the copy`);
    const log = await logSince(since);
    for (const t of TYPES) {
      assert.ok(log.some((l) => l.record_type === t && l.item_id === deleted[t] && /was hard-deleted \(DELETE or TRUNCATE, recorded in crm\.tombstone\): handled as a CRM delete/.test(l.message)), `${t}: ${JSON.stringify(log)}`);
    }
    assert.ok(!log.some((l) => l.item_id === ids['bob contact']), 'a row the mailbox never synced is not reported');

    const quiet = await sync();
    for (const t of TYPES) assert.deepEqual(totals(quiet, t), { exCreated: 0, exDeleted: 0, crmCreated: 0, crmDeleted: 0 }, t);
  });

  it('a watermark ahead of the transaction counter (a rewound counter) makes a full read: edits below it reach Outlook, nothing is duplicated', async () => {
    const since = await lastLogId();
    const before = { outlook: Object.fromEntries(TYPES.map((t) => [t, outlook(t)])), crm: {} as Record<string, number> };
    for (const t of TYPES) before.crm[t] = await crmCount(t);
    // The saved watermarks as a cluster far ahead left them; events keep their window after the ';'.
    await sql`update sync.cursor set crm_watermark = regexp_replace(crm_watermark, '^[0-9]+', '9000000000000') where mailbox_id = ${ANNA}`.execute(s.db);
    // Edits made now are stamped below those watermarks: an incremental read would never see them.
    await sql`update crm.contacts set company = 'Fabrikam AG' where id = ${ids['contact Weber']}::uuid`.execute(s.db);
    await sql`update crm.events set location = 'Room 4' where id = ${ids['event Kickoff']}::uuid`.execute(s.db);
    await sql`update crm.tasks set priority = 'High' where id = ${ids['task Call back']}::uuid`.execute(s.db);

    const c = await sync();
    for (const t of TYPES) {
      assert.deepEqual(totals(c, t), { exCreated: 0, exDeleted: 0, crmCreated: 0, crmDeleted: 0 }, t);
      assert.equal(c.types[t]!.exchange.updated, 1, `${t}: the edit below the watermark was written to Outlook`);
      assert.equal(c.types[t]!.crm.updated, 0, t);
      assert.ok(c.types[t]!.pulled.crm >= before.crm[t], `${t}: a full read (${c.types[t]!.pulled.crm} read)`);
      assert.deepEqual(outlook(t), before.outlook[t], `${t}: no second copy in Outlook`);
      assert.equal(await crmCount(t), before.crm[t], `${t}: no second copy in the CRM`);
      assert.equal(await mappings(t), before.outlook[t].length, t);
    }
    assert.equal(s.emulator.admin.listContacts(ANNA, 'VContacts').find((x) => x.surname === 'Weber')?.companyName, 'Fabrikam AG');
    assert.equal((s.emulator.admin.listEvents(ANNA, 'VEvents') as OutlookEvent[]).find((e) => e.subject === 'Kickoff')?.location?.displayName, 'Room 4');
    assert.equal((s.emulator.admin.listTasks(ANNA, 'VTasks') as OutlookTask[]).find((x) => x.title === 'Call back')?.importance, 'high');
    const log = await logSince(since);
    for (const t of TYPES) {
      const line = log.find((l) => l.record_type === t && l.level === 'warn');
      assert.match(line?.message ?? '', /^the CRM database was restored or replaced \(its transaction counter is at \d+, behind the saved watermark 9000000000000: the counter was rewound, e\.g\. by a restore or pg_resetwal\): a full resync of (contacts|events|tasks) starts; nothing is duplicated$/, t);
    }
    for (const t of TYPES) {
      const cur = await cursor(t);
      assert.ok(BigInt(cur.crm_watermark!.split(';')[0]) < 9000000000000n, `${t}: the watermark counts in this counter again`);
    }
    // The next read is incremental again (no second full read: the warn count below) and writes nothing. It may
    // read the edited rows once more: the full read's watermark is the oldest transaction still running in the
    // cluster, which another test file's transaction can hold below those edits; reading a row again is a no-op.
    const quiet = await sync();
    for (const t of TYPES) assert.equal(quiet.types[t]!.exchange.updated + quiet.types[t]!.crm.updated, 0, t);
    assert.equal((await logSince(since)).filter((l) => l.level === 'warn').length, 3, 'one full read per type, not one per cycle');
  });

  it('a watermark saved under another cluster makes a full read: a restored row stamped below it reaches Outlook, a mapped row missing without a tombstone is deleted there', async () => {
    const since = await lastLogId();
    const cur = await cursor('contact');
    assert.match(cur.crm_watermark_origin ?? '', /^system=\d+ /, 'the cycle saved the origin with the watermark');
    // As after a restore from another cluster's dump: its rows keep that cluster's (low) stamps, the
    // watermark was saved under another system identifier, and a row deleted since the dump has no tombstone.
    await sql`update sync.cursor set crm_watermark_origin = regexp_replace(crm_watermark_origin, 'system=[0-9]+', 'system=6000000000000000001')
      where mailbox_id = ${ANNA} and record_type = 'contact'`.execute(s.db);
    await restamp('contact', ids['contact Rossi'], sql`job_title = 'Buyer'`);
    await sql`delete from crm.contacts where id = ${ids['contact Keller']}::uuid`.execute(s.db);
    await sql`delete from crm.tombstone where id = ${ids['contact Keller']}::uuid`.execute(s.db);

    const c = await sync();
    assert.deepEqual(totals(c, 'contact'), { exCreated: 0, exDeleted: 1, crmCreated: 0, crmDeleted: 0 });
    assert.equal(c.types.contact!.exchange.updated, 1);
    assert.deepEqual(outlook('contact'), ['Rossi', 'Weber']);
    assert.equal(s.emulator.admin.listContacts(ANNA, 'VContacts').find((x) => x.surname === 'Rossi')?.jobTitle, 'Buyer');
    assert.equal(await crmCount('contact'), 2, 'Weber and Rossi; nothing re-created');
    assert.equal(await mappings('contact'), 2);
    // The other types kept their origin: read incrementally, nothing to do.
    for (const t of ['event', 'task'] as const) assert.equal(c.types[t]!.exchange.updated + c.types[t]!.crm.updated + c.types[t]!.exchange.deleted, 0, t);
    const log = await logSince(since);
    assert.match(log.find((l) => l.level === 'warn')?.message ?? '',
      /^the CRM database was restored or replaced \(another PostgreSQL cluster: system identifier \d+, the watermark was saved under 6000000000000000001\): a full resync of contacts starts; nothing is duplicated$/);
    assert.ok(log.some((l) => l.item_id === ids['contact Keller'] && /no longer exists \(missing from a full read of the CRM\): handled as a CRM delete/.test(l.message)), JSON.stringify(log));
    assert.equal(log.filter((l) => l.level === 'warn').length, 1);
    assert.doesNotMatch((await cursor('contact')).crm_watermark_origin ?? '', /system=6000000000000000001/);
    const quiet = await sync();
    assert.equal(quiet.types.contact!.exchange.updated + quiet.types.contact!.crm.updated, 0);
    assert.deepEqual(outlook('contact'), ['Rossi', 'Weber']);
  });

  it('a watermark with no recorded origin (saved before origins were kept) makes one full read, then reads go on incrementally', async () => {
    const since = await lastLogId();
    await sql`update sync.cursor set crm_watermark_origin = null where mailbox_id = ${ANNA} and record_type = 'task'`.execute(s.db);
    await restamp('task', ids['task Send offer'], sql`description = 'Prices as agreed'`);
    const c = await sync();
    assert.deepEqual(totals(c, 'task'), { exCreated: 0, exDeleted: 0, crmCreated: 0, crmDeleted: 0 });
    assert.equal(c.types.task!.exchange.updated, 1);
    assert.match((s.emulator.admin.listTasks(ANNA, 'VTasks') as OutlookTask[]).find((x) => x.title === 'Send offer')?.body.content ?? '', /Prices as agreed/);
    assert.deepEqual(outlook('task'), ['Call back', 'Send offer']);
    assert.equal(await crmCount('task'), 2);
    const warn = (await logSince(since, 'task')).filter((l) => l.level === 'warn');
    assert.equal(warn.length, 1);
    assert.match(warn[0].message, /^the saved CRM watermark \d+ has no recorded origin, so a restored or replaced CRM database cannot be ruled out: a full resync of tasks starts; nothing is duplicated$/);
    assert.ok((await cursor('task')).crm_watermark_origin, 'the full read saved its origin');
    const quiet = await sync();
    assert.equal(quiet.types.task!.exchange.updated + quiet.types.task!.crm.updated, 0);
    // No second full read (a row read again, when another transaction held the watermark back, is a no-op).
    assert.equal((await logSince(since, 'task')).filter((l) => l.level === 'warn').length, 1);
  });

  it('cxsync maintenance purges tombstones every watermark has passed and keeps younger ones', async () => {
    const env = { DATABASE_URL: s.dbUrl, TEMPORAL_ADDRESS: s.temporalAddress, TEMPORAL_TASK_QUEUE: s.taskQueue };
    const count = async () => Number((await sql<{ n: string }>`select count(*)::text as n from crm.tombstone`.execute(s.db)).rows[0].n);
    // An email activity hard-deleted in the CRM leaves a tombstone too (read by email sync).
    const owner = (await sql<{ id: string }>`select id::text from crm.users limit 1`.execute(s.db)).rows[0].id;
    await sql`insert into crm.email_activities (owner_id, subject, direction) values (${owner}::uuid, 'Gone', 'incoming')`.execute(s.db);
    await sql`delete from crm.email_activities where subject = 'Gone'`.execute(s.db);
    const n = await count();
    assert.ok(n >= 5, `tombstones of the hard deletes above (${n})`);
    let r = await cxsync(['maintenance', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { tombstonesPurged: { contacts: 0, events: 0, tasks: 0, email_activities: 0 } }, 'younger than 7 days: kept');
    r = await cxsync(['maintenance', '--older-than', '0 seconds'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tombstones purged: contacts [1-9]\d*, events 1, tasks 1, email activities 1$/m);
    assert.equal(await count(), 0);
    r = await cxsync(['maintenance', '--older-than', 'a week or so'], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: --older-than "a week or so" is not a PostgreSQL interval of zero or more (e.g. "7 days")');
    r = await cxsync(['--help'], env);
    assert.match(r.stdout, /\n\s+maintenance\b/);
  });
});
