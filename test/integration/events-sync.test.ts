/**
 * Calendar events in two-way sync on the real stack (Temporal dev server, PostgreSQL, the HTTPS Graph emulator
 * through the real Graph client): CRM events ⇄ appointments in VEvents, time zones across DST in Europe/Berlin
 * and America/New_York, attendees and responses, Acumatica's cancel/complete/delete rules, exclusions, an
 * idempotent create after a lost answer, and a weekly series with moved and cancelled occurrences both ways.
 *
 * Dates are computed from today (the sync window is), and the DST tests use each zone's next transition.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { PostgresCrmEvents, crmEntryWindow } from '../../src/activities/crm/postgres-crm-events';
import type { EventsApi } from '../../src/activities/exchange/events-api';
import { eventsAdapter } from '../../src/activities/record-types/events';
import { syncWindow } from '../../src/domain/event';
import { addDays, instantToWall, wallToInstant } from '../../src/domain/timezone';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';

const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);
/** The next Monday at least `n` days ahead. */
function mondayAfter(n: number): string {
  let d = day(n);
  while (new Date(`${d}T00:00:00Z`).getUTCDay() !== 1) d = addDays(d, 1);
  return d;
}
/** The date of the next DST (or standard-time) transition in a zone, at least two days ahead. */
function nextTransition(zone: string): string {
  const off = (t: number) => Date.parse(`${instantToWall(t, zone)}Z`) - t;
  let t = Date.parse(`${day(2)}T12:00:00Z`);
  const first = off(t);
  for (let i = 0; i < 400; i++, t += 86_400_000) if (off(t) !== first) return new Date(t).toISOString().slice(0, 10);
  throw new Error(`no transition in ${zone}`);
}
const utc = (wall: string, zone: string) => new Date(wallToInstant(wall, zone)).toISOString().slice(0, 19);

interface CrmEventRow {
  id: string;
  subject: string;
  start_local: string;
  end_local: string;
  time_zone: string;
  status: string;
  deleted: boolean;
  series_id: string | null;
  original_start: string | null;
  event_type: string;
}

async function crmEvents(s: Stack, where = sql`true`): Promise<CrmEventRow[]> {
  const r = await sql<CrmEventRow>`
    select id::text, subject, to_char(start_local, 'YYYY-MM-DD"T"HH24:MI:SS') as start_local, to_char(end_local, 'YYYY-MM-DD"T"HH24:MI:SS') as end_local,
      time_zone, status, deleted_at is not null as deleted, series_id::text, to_char(original_start, 'YYYY-MM-DD"T"HH24:MI:SS') as original_start, event_type
    from crm.events where ${where} order by subject, original_start nulls first`.execute(s.db);
  return r.rows;
}

type Ev = Record<string, unknown> & { id: string; subject: string; start: { dateTime: string }; end: { dateTime: string }; originalStartTimeZone: string; type: string };
const exchangeEvents = (s: Stack, upn = ANNA) => s.emulator.admin.listEvents(upn, 'VEvents') as unknown as Ev[];
const bySubject = (s: Stack, subject: string, upn = ANNA) => exchangeEvents(s, upn).filter((e) => e.subject === subject);

describe('calendar events two-way sync on the real stack', () => {
  let s: Stack;
  let anna: string;
  let ben: string;
  let lukas: string;

  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    ben = await s.addUser(BEN, 'Ben Carter');
    await sql`update crm.users set time_zone = 'Europe/Berlin' where id = ${anna}::uuid`.execute(s.db);
    await sql`update crm.users set time_zone = 'America/New_York' where id = ${ben}::uuid`.execute(s.db);
    const c = await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Lukas', 'Weber', 'lukas@fabrikam.de') returning id`.execute(s.db);
    lukas = c.rows[0].id;
  });
  after(async () => s?.teardown());

  const sync = async (upn = ANNA) => {
    const st = await s.operator.syncNow(upn, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    return st!.lastCycle!.types.event!;
  };

  it('exports CRM events of every type but Todo, at the same wall time in their own zone across DST', async () => {
    const berlin = nextTransition('Europe/Berlin');
    const ny = nextTransition('America/New_York');
    const insert = async (subject: string, type: string, start: string, end: string, zone: string, extra = sql``) => {
      const r = await sql<{ id: string }>`insert into crm.events (owner_id, event_type, subject, start_local, end_local, time_zone ${extra})
        values (${anna}::uuid, ${type}, ${subject}, ${start}::timestamp, ${end}::timestamp, ${zone}) returning id::text`.execute(s.db);
      return r.rows[0].id;
    };
    await insert('Berlin before', 'Meeting', `${addDays(berlin, -1)}T09:00`, `${addDays(berlin, -1)}T10:00`, 'Europe/Berlin');
    await insert('Berlin after', 'Call', `${addDays(berlin, 1)}T09:00`, `${addDays(berlin, 1)}T10:00`, 'Europe/Berlin');
    await insert('NY before', 'Demo', `${addDays(ny, -1)}T09:00`, `${addDays(ny, -1)}T09:30`, 'America/New_York');
    await insert('NY after', 'Meeting', `${addDays(ny, 1)}T09:00`, `${addDays(ny, 1)}T09:30`, 'America/New_York');
    await insert('Amsterdam alias', 'Meeting', `${day(10)}T14:00`, `${day(10)}T15:00`, 'Europe/Amsterdam');
    await insert('A todo is a task', 'Todo', `${day(3)}T09:00`, `${day(3)}T10:00`, 'Europe/Berlin');
    const withGuests = await insert('Kick-off', 'Meeting', `${day(5)}T11:00`, `${day(5)}T12:00`, 'Europe/Berlin');
    await sql`insert into crm.event_attendees (event_id, email, contact_id) values (${withGuests}::uuid, 'lukas@fabrikam.de', ${lukas}::uuid)`.execute(s.db);
    await sql`insert into crm.event_attendees (event_id, email, user_id, attendance) values (${withGuests}::uuid, ${BEN}, ${ben}::uuid, 'optional')`.execute(s.db);

    s.emulator.admin.ensureMailbox(ANNA);
    // Attendees written as in the CRM (the default would list those of meetings created before enrolment in the
    // body instead: test/integration/event-invitations.test.ts).
    await s.operator.createPolicy('invite-all', { event: { invitations: 'always' } });
    await s.operator.enroll(ANNA, { policy: 'invite-all' });
    const t = await sync();
    assert.equal(t.exchange.created, 6, JSON.stringify(t));
    assert.equal(t.errors, 0);

    const ev = (subject: string) => bySubject(s, subject)[0];
    for (const [subject, date, zone, windows] of [
      ['Berlin before', addDays(berlin, -1), 'Europe/Berlin', 'W. Europe Standard Time'],
      ['Berlin after', addDays(berlin, 1), 'Europe/Berlin', 'W. Europe Standard Time'],
      ['NY before', addDays(ny, -1), 'America/New_York', 'Eastern Standard Time'],
      ['NY after', addDays(ny, 1), 'America/New_York', 'Eastern Standard Time'],
    ] as const) {
      const e = ev(subject);
      assert.ok(e, `${subject} exported`);
      assert.equal(e.originalStartTimeZone, windows, `${subject} keeps its zone`);
      assert.equal(e.start.dateTime.slice(0, 19), utc(`${date}T09:00:00`, zone), `${subject}: 09:00 ${zone} is the same instant in Exchange`);
    }
    assert.equal(bySubject(s, 'A todo is a task').length, 0, 'Todo activities are not events');
    assert.deepEqual((ev('Kick-off').categories as string[]), ['CRM'], 'exported items carry the marking category');
    const guests = (ev('Kick-off').attendees as Array<{ emailAddress: { address: string }; type: string }>).map((a) => [a.emailAddress.address, a.type]).sort();
    assert.deepEqual(guests, [[BEN, 'optional'], ['lukas@fabrikam.de', 'required']]);

    // Seen from Ben's zone (New York), the Berlin meeting is at Berlin's 09:00 — no shift on the way.
    const view = s.emulator.admin.calendarView(ANNA, 'VEvents', `${addDays(berlin, 1)}T00:00:00Z`, `${addDays(berlin, 2)}T00:00:00Z`, 'W. Europe Standard Time') as unknown as Ev[];
    assert.equal(view.find((v) => v.subject === 'Berlin after')?.start.dateTime.slice(11, 16), '09:00');

    // A quiet cycle writes nothing, on either side (the zone alias is not an edit).
    const q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.exchange.deleted, q.crm.created, q.crm.updated, q.crm.deleted], [0, 0, 0, 0, 0, 0]);
    const alias = (await crmEvents(s, sql`subject = 'Amsterdam alias'`))[0];
    assert.equal(alias.time_zone, 'Europe/Amsterdam');
  });

  it('imports Outlook appointments at their own wall time and zone, for a user in another zone', async () => {
    const ny = nextTransition('America/New_York');
    const date = addDays(ny, 2);
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Call with the New York office',
      start: { dateTime: `${date}T09:00:00`, timeZone: 'Eastern Standard Time' },
      end: { dateTime: `${date}T09:45:00`, timeZone: 'Eastern Standard Time' },
      location: { displayName: 'Teams' },
      body: { contentType: 'html', content: '<p>Agenda: <b>pricing</b></p>' },
    });
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Company holiday',
      isAllDay: true,
      start: { dateTime: `${day(20)}T00:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${day(21)}T00:00:00`, timeZone: 'W. Europe Standard Time' },
    });
    const t = await sync();
    assert.equal(t.crm.created, 2, JSON.stringify(t));
    assert.equal(t.exchange.created, 0, 'the CRM copies do not echo back');
    const r = (await crmEvents(s, sql`subject = 'Call with the New York office'`))[0];
    assert.equal(r.start_local, `${date}T09:00:00`);
    assert.equal(r.end_local, `${date}T09:45:00`);
    assert.equal(r.time_zone, 'America/New_York', 'Anna lives in Berlin; the call keeps New York time');
    const d = await sql<{ description: string; location: string }>`select description, location from crm.events where id = ${r.id}::uuid`.execute(s.db);
    assert.equal(d.rows[0].description, 'Agenda: pricing');
    assert.equal(d.rows[0].location, 'Teams');
    const h = (await crmEvents(s, sql`subject = 'Company holiday'`))[0];
    assert.deepEqual([h.start_local, h.end_local], [`${day(20)}T00:00:00`, `${day(21)}T00:00:00`]);
    const q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0]);
  });

  it('carries edits, attendee changes and responses both ways', async () => {
    const kick = (await crmEvents(s, sql`subject = 'Kick-off'`))[0];
    // CRM: a new attendee and a new time.
    await sql`insert into crm.event_attendees (event_id, email, name) values (${kick.id}::uuid, 'sofia@adventure-works.it', 'Sofia Rossi')`.execute(s.db);
    await sql`update crm.events set start_local = start_local + interval '1 hour', end_local = end_local + interval '1 hour' where id = ${kick.id}::uuid`.execute(s.db);
    let t = await sync();
    assert.equal(t.exchange.updated, 1, JSON.stringify(t));
    let e = bySubject(s, 'Kick-off')[0];
    assert.equal(e.start.dateTime.slice(0, 19), utc(`${day(5)}T12:00:00`, 'Europe/Berlin'));
    assert.equal((e.attendees as unknown[]).length, 3);

    // Exchange: Lukas accepts; the user renames the call.
    s.emulator.admin.updateEvent(ANNA, e.id, {
      attendees: (e.attendees as Array<Record<string, unknown>>).map((a) =>
        (a.emailAddress as { address: string }).address === 'lukas@fabrikam.de' ? { ...a, status: { response: 'accepted' } } : a,
      ),
    });
    const call = bySubject(s, 'Call with the New York office')[0];
    s.emulator.admin.updateEvent(ANNA, call.id, { subject: 'Call with NY (pricing)' });
    t = await sync();
    assert.equal(t.crm.updated, 2, JSON.stringify(t));
    const resp = await sql<{ email: string; response: string; contact_id: string | null; user_id: string | null }>`
      select email, response, contact_id::text, user_id::text from crm.event_attendees where event_id = ${kick.id}::uuid order by email`.execute(s.db);
    assert.deepEqual(resp.rows.map((r) => [r.email, r.response]), [[BEN, 'none'], ['lukas@fabrikam.de', 'accepted'], ['sofia@adventure-works.it', 'none']]);
    assert.equal(resp.rows[1].contact_id, lukas, 'the attendee stays linked to the CRM contact');
    assert.equal(resp.rows[0].user_id, ben, 'and the CRM user');
    assert.equal((await crmEvents(s, sql`subject = 'Call with NY (pricing)'`)).length, 1);
    e = bySubject(s, 'Kick-off')[0];
    const q = await sync();
    assert.deepEqual([q.exchange.updated, q.crm.updated], [0, 0], 'the response did not bounce back');
  });

  it('Acumatica rules: completing needs no sync, cancelling deletes the appointment, an Outlook delete deletes the event', async () => {
    await sql`update crm.events set status = 'Completed' where subject = 'Berlin before'`.execute(s.db);
    let t = await sync();
    assert.deepEqual([t.exchange.created, t.exchange.updated, t.exchange.deleted], [0, 0, 0], 'completion is not synced');

    await sql`update crm.events set status = 'Canceled' where subject = 'Berlin after'`.execute(s.db);
    const holiday = bySubject(s, 'Company holiday')[0];
    s.emulator.admin.deleteEvent(ANNA, holiday.id);
    t = await sync();
    assert.equal(t.exchange.deleted, 1, JSON.stringify(t));
    assert.equal(t.crm.deleted, 1);
    assert.equal(bySubject(s, 'Berlin after').length, 0, 'a cancelled event deletes its appointment');
    assert.equal((await crmEvents(s, sql`subject = 'Company holiday'`))[0].deleted, true, 'an appointment deleted in Exchange deletes the CRM event');
  });

  it('leaves out private events and the DoNotSync category (policy default), on both sides', async () => {
    await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, visibility) values
      (${anna}::uuid, 'Doctor', ${`${day(6)}T08:00`}::timestamp, ${`${day(6)}T09:00`}::timestamp, 'Europe/Berlin', 'private')`.execute(s.db);
    await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, categories) values
      (${anna}::uuid, 'Internal only', ${`${day(6)}T10:00`}::timestamp, ${`${day(6)}T11:00`}::timestamp, 'Europe/Berlin', '{DoNotSync}')`.execute(s.db);
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Dentist', sensitivity: 'private',
      start: { dateTime: `${day(7)}T08:00:00`, timeZone: 'W. Europe Standard Time' }, end: { dateTime: `${day(7)}T09:00:00`, timeZone: 'W. Europe Standard Time' },
    });
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Birthday party', categories: ['DoNotSync'],
      start: { dateTime: `${day(7)}T18:00:00`, timeZone: 'W. Europe Standard Time' }, end: { dateTime: `${day(7)}T22:00:00`, timeZone: 'W. Europe Standard Time' },
    });
    const t = await sync();
    assert.deepEqual([t.exchange.created, t.crm.created], [0, 0], JSON.stringify(t));
    assert.equal(bySubject(s, 'Doctor').length + bySubject(s, 'Internal only').length, 0);
    assert.equal((await crmEvents(s, sql`subject in ('Dentist', 'Birthday party')`)).length, 0);
  });

  it('finds a create whose answer was lost by its sync id instead of creating it twice', async () => {
    await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone) values
      (${anna}::uuid, 'Lost answer', ${`${day(8)}T09:00`}::timestamp, ${`${day(8)}T10:00`}::timestamp, 'Europe/Berlin')`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 504, count: 1, method: 'POST', pathPattern: '/events$', applyThenFail: true });
    const t = await sync();
    assert.equal(t.exchange.created, 1, JSON.stringify(t));
    assert.equal(bySubject(s, 'Lost answer').length, 1, 'exactly one appointment');
    const lookups = s.emulator.recentRequests().filter((r) => /^GET .*\/events\?.*singleValueExtendedProperties\/Any/i.test(decodeURIComponent(r)));
    assert.equal(lookups.length, 1, 'the retry looked the appointment up by its sync id');
  });

  it('a weekly series with one moved and one cancelled occurrence syncs both ways without breaking or duplicating', async () => {
    // Spans Berlin's next DST change, so the series' occurrences are at 09:00 on both sides of it.
    const berlin = nextTransition('Europe/Berlin');
    let start = addDays(berlin, -21);
    if (start < day(1)) start = day(1);
    while (new Date(`${start}T00:00:00Z`).getUTCDay() !== 1) start = addDays(start, 1);
    const rec = { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: start, numberOfOccurrences: 8 } };
    const m = await sql<{ id: string }>`insert into crm.events (owner_id, subject, location, start_local, end_local, time_zone, recurrence)
      values (${anna}::uuid, 'Weekly sync', 'Room 1', ${`${start}T09:00`}::timestamp, ${`${start}T09:30`}::timestamp, 'Europe/Berlin', ${JSON.stringify(rec)}::jsonb) returning id::text`.execute(s.db);
    const master = m.rows[0].id;
    const wk = (n: number) => addDays(start, 7 * n);
    // Week 2 moved to Tuesday 14:00; week 4 cancelled.
    await sql`insert into crm.events (owner_id, subject, location, start_local, end_local, time_zone, series_id, original_start) values
      (${anna}::uuid, 'Weekly sync', 'Room 1', ${`${addDays(wk(2), 1)}T14:00`}::timestamp, ${`${addDays(wk(2), 1)}T14:30`}::timestamp, 'Europe/Berlin', ${master}::uuid, ${`${wk(2)}T09:00`}::timestamp)`.execute(s.db);
    await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, series_id, original_start, status) values
      (${anna}::uuid, 'Weekly sync', ${`${wk(4)}T09:00`}::timestamp, ${`${wk(4)}T09:30`}::timestamp, 'Europe/Berlin', ${master}::uuid, ${`${wk(4)}T09:00`}::timestamp, 'Canceled')`.execute(s.db);
    let t = await sync();
    assert.equal(t.exchange.created, 1, JSON.stringify(t));
    const series = bySubject(s, 'Weekly sync');
    assert.equal(series.length, 1, 'one series master in Exchange');
    assert.equal(series[0].type, 'seriesMaster');
    const view = () =>
      (s.emulator.admin.calendarView(ANNA, 'VEvents', `${addDays(start, -1)}T00:00:00Z`, `${addDays(start, 60)}T00:00:00Z`, 'W. Europe Standard Time') as unknown as Ev[])
        .filter((v) => v.subject.startsWith('Weekly sync'))
        .map((v) => v.start.dateTime.slice(0, 16).replace('T', ' '));
    assert.deepEqual(view(), [
      `${wk(0)} 09:00`, `${wk(1)} 09:00`, `${addDays(wk(2), 1)} 14:00`, `${wk(3)} 09:00`, `${wk(5)} 09:00`, `${wk(6)} 09:00`, `${wk(7)} 09:00`,
    ], 'every occurrence at 09:00 Berlin across the DST change, week 2 moved, week 4 cancelled');
    let q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0], 'quiet after the series was written');

    // Outlook: week 5 moved to 11:00 with its own subject, week 6 cancelled. One occurrence edited: the series stays one.
    const occ = (s.emulator.admin.calendarView(ANNA, 'VEvents', `${wk(5)}T00:00:00Z`, `${addDays(wk(6), 1)}T00:00:00Z`) as unknown as Ev[]).filter((v) => v.subject === 'Weekly sync');
    assert.equal(occ.length, 2);
    s.emulator.admin.updateEvent(ANNA, occ[0].id, {
      subject: 'Weekly sync (with CEO)',
      start: { dateTime: `${wk(5)}T11:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${wk(5)}T11:30:00`, timeZone: 'W. Europe Standard Time' },
    });
    s.emulator.admin.deleteEvent(ANNA, occ[1].id);
    t = await sync();
    assert.equal(t.crm.updated, 1, JSON.stringify(t));
    assert.equal(t.crm.created, 0, 'no duplicate series in the CRM');
    const rows = await crmEvents(s, sql`(id = ${master}::uuid or series_id = ${master}::uuid) and deleted_at is null`);
    assert.deepEqual(
      rows.filter((r) => r.series_id).map((r) => [r.original_start, r.status, r.start_local, r.subject]).sort(),
      // '' inherits the series' subject: the copies the rows were inserted with are rewritten that way.
      [
        [`${wk(2)}T09:00:00`, 'Open', `${addDays(wk(2), 1)}T14:00:00`, ''],
        [`${wk(4)}T09:00:00`, 'Canceled', `${wk(4)}T09:00:00`, ''],
        [`${wk(5)}T09:00:00`, 'Open', `${wk(5)}T11:00:00`, 'Weekly sync (with CEO)'],
        [`${wk(6)}T09:00:00`, 'Canceled', `${wk(6)}T09:00:00`, ''],
      ].sort(),
    );
    assert.equal((await crmEvents(s, sql`subject like 'Weekly sync%' and series_id is null and deleted_at is null`)).length, 1, 'one series in the CRM');
    q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0]);

    // CRM: the series moves to 10:00; the exceptions stay.
    await sql`update crm.events set start_local = start_local + interval '1 hour', end_local = end_local + interval '1 hour' where id = ${master}::uuid`.execute(s.db);
    t = await sync();
    assert.equal(t.exchange.updated, 1, JSON.stringify(t));
    assert.equal(bySubject(s, 'Weekly sync').length, 1);
    assert.deepEqual(view(), [
      `${wk(0)} 10:00`, `${wk(1)} 10:00`, `${addDays(wk(2), 1)} 14:00`, `${wk(3)} 10:00`, `${wk(5)} 11:00`, `${wk(7)} 10:00`,
    ]);
    q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0]);
  });

  it('a series created in Outlook comes over as one series; deleting it in Outlook deletes it with its exceptions', async () => {
    const start = mondayAfter(2);
    const created = s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Outlook series',
      start: { dateTime: `${start}T16:00:00`, timeZone: 'Eastern Standard Time' },
      end: { dateTime: `${start}T16:30:00`, timeZone: 'Eastern Standard Time' },
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'endDate', startDate: start, endDate: addDays(start, 35) } },
    });
    const occ = (s.emulator.admin.calendarView(ANNA, 'VEvents', `${addDays(start, 7)}T00:00:00Z`, `${addDays(start, 8)}T00:00:00Z`) as unknown as Ev[]).find((v) => v.subject === 'Outlook series')!;
    s.emulator.admin.deleteEvent(ANNA, occ.id);
    let t = await sync();
    assert.equal(t.crm.created, 1, JSON.stringify(t));
    const master = (await crmEvents(s, sql`subject = 'Outlook series' and series_id is null`))[0];
    assert.equal(master.time_zone, 'America/New_York');
    assert.equal(master.start_local, `${start}T16:00:00`);
    const rows = await crmEvents(s, sql`series_id = ${master.id}::uuid`);
    assert.deepEqual(rows.map((r) => [r.original_start, r.status]), [[`${addDays(start, 7)}T16:00:00`, 'Canceled']]);

    s.emulator.admin.deleteEvent(ANNA, created.id);
    t = await sync();
    assert.equal(t.crm.deleted, 1, JSON.stringify(t));
    assert.ok((await crmEvents(s, sql`id = ${master.id}::uuid or series_id = ${master.id}::uuid`)).every((r) => r.deleted), 'the master and its exception rows');
  });

  it('a series made in Outlook and renamed in the CRM: its moved occurrence follows the new subject and room, one with its own subject keeps it', async () => {
    const start = mondayAfter(9);
    const wk = (n: number) => addDays(start, 7 * n);
    const created = s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Design review',
      location: { displayName: 'Room A' },
      start: { dateTime: `${start}T10:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${start}T11:00:00`, timeZone: 'W. Europe Standard Time' },
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: start, numberOfOccurrences: 6 } },
    });
    const occurrences = () =>
      (s.emulator.admin.calendarView(ANNA, 'VEvents', `${addDays(start, -1)}T00:00:00Z`, `${wk(6)}T00:00:00Z`, 'W. Europe Standard Time') as unknown as Ev[])
        .filter((v) => v.seriesMasterId === created.id)
        .map((v) => [v.start.dateTime.slice(0, 16).replace('T', ' '), v.subject, (v.location as { displayName: string }).displayName]);
    const at = (n: number) => (s.emulator.admin.calendarView(ANNA, 'VEvents', `${wk(n)}T00:00:00Z`, `${addDays(wk(n), 1)}T00:00:00Z`) as unknown as Ev[]).find((v) => v.seriesMasterId === created.id)!;
    // Week 1 moved to Tuesday (the series' subject and room); week 3 with its own subject and room.
    s.emulator.admin.updateEvent(ANNA, at(1).id, {
      start: { dateTime: `${addDays(wk(1), 1)}T15:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${addDays(wk(1), 1)}T16:00:00`, timeZone: 'W. Europe Standard Time' },
    });
    s.emulator.admin.updateEvent(ANNA, at(3).id, { subject: 'Design review (customer)', location: { displayName: 'Customer site' } });
    let t = await sync();
    assert.equal(t.crm.created, 1, JSON.stringify(t));
    const master = (await crmEvents(s, sql`subject = 'Design review' and series_id is null and deleted_at is null`))[0];
    const rows = async () =>
      (
        await sql<{ original_start: string; subject: string; location: string | null; shown: string; shown_location: string | null }>`
          select to_char(x.original_start, 'YYYY-MM-DD"T"HH24:MI:SS') as original_start, x.subject, x.location,
            coalesce(nullif(x.subject, ''), m.subject) as shown, coalesce(x.location, m.location) as shown_location
          from crm.events x join crm.events m on m.id = x.series_id
          where x.series_id = ${master.id}::uuid and x.deleted_at is null order by x.original_start`.execute(s.db)
      ).rows;
    assert.deepEqual((await rows()).map((r) => [r.original_start, r.subject, r.location]), [
      [`${wk(1)}T10:00:00`, '', null],
      [`${wk(3)}T10:00:00`, 'Design review (customer)', 'Customer site'],
    ], 'the moved occurrence inherits the series subject and room; the other keeps its own');

    await sql`update crm.events set subject = 'Design review v2', location = 'Room B' where id = ${master.id}::uuid`.execute(s.db);
    t = await sync();
    assert.equal(t.exchange.updated, 1, JSON.stringify(t));
    assert.deepEqual(occurrences(), [
      [`${wk(0)} 10:00`, 'Design review v2', 'Room B'],
      [`${addDays(wk(1), 1)} 15:00`, 'Design review v2', 'Room B'],
      [`${wk(2)} 10:00`, 'Design review v2', 'Room B'],
      [`${wk(3)} 10:00`, 'Design review (customer)', 'Customer site'],
      [`${wk(4)} 10:00`, 'Design review v2', 'Room B'],
      [`${wk(5)} 10:00`, 'Design review v2', 'Room B'],
    ], 'Outlook: the moved occurrence is renamed with its series, still on Tuesday');
    assert.deepEqual((await rows()).map((r) => [r.original_start, r.shown, r.shown_location]), [
      [`${wk(1)}T10:00:00`, 'Design review v2', 'Room B'],
      [`${wk(3)}T10:00:00`, 'Design review (customer)', 'Customer site'],
    ], 'CRM: the exception row shows the new subject');

    const q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0], 'quiet afterwards');
  });

  it('an appointment moved out of the window in Outlook is not a delete', async () => {
    const e = bySubject(s, 'Lost answer')[0];
    const far = day(500);
    s.emulator.admin.updateEvent(ANNA, e.id, {
      start: { dateTime: `${far}T09:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${far}T10:00:00`, timeZone: 'W. Europe Standard Time' },
    });
    const t = await sync();
    assert.equal(t.crm.deleted, 0, JSON.stringify(t));
    assert.equal((await crmEvents(s, sql`subject = 'Lost answer'`))[0].deleted, false);
    assert.equal(bySubject(s, 'Lost answer').length, 1);
  });

  it('starts a new calendarView round over the moved window once the week turns; a round in progress finishes first', async () => {
    const calls: Array<{ link?: string; window: { start: string; end: string } }> = [];
    const fake = {
      client: undefined,
      async deltaPage(_upn: string, _cal: string, link: string | undefined, window: { start: string; end: string }) {
        calls.push({ link, window });
        const n = calls.length;
        return n % 2 ? { items: [], nextLink: `https://graph.test/v1.0/cv/delta?$skiptoken=${n}` } : { items: [], deltaLink: `https://graph.test/v1.0/cv/delta?$deltatoken=${n}` };
      },
    } as unknown as EventsApi;
    let now = Date.parse(`${mondayAfter(1)}T12:00:00Z`) + 2 * 86_400_000; // a Wednesday
    const a = eventsAdapter(s.db, fake, { now: () => now });
    const p1 = await a.deltaPage(ANNA, 'cal', undefined);
    assert.equal(calls[0].link, undefined);
    assert.deepEqual(calls[0].window, syncWindow(now, 30, 365), 'the policy window (30 days back, 365 ahead), on whole weeks');
    assert.match(p1.nextLink!, /#cxsync-window=/);
    now += 7 * 86_400_000;
    const p2 = await a.deltaPage(ANNA, 'cal', p1.nextLink);
    assert.equal(calls[1].link, 'https://graph.test/v1.0/cv/delta?$skiptoken=1', 'a round in progress goes on over its own window (the tag is not sent)');
    assert.deepEqual(calls[1].window, calls[0].window);
    await a.deltaPage(ANNA, 'cal', p2.deltaLink);
    assert.equal(calls[2].link, undefined, 'the finished round of last week: a new round');
    assert.deepEqual(calls[2].window, syncWindow(now, 30, 365));
    assert.notDeepEqual(calls[2].window, calls[0].window);
    let p3 = await a.deltaPage(ANNA, 'cal', undefined);
    while (!p3.deltaLink) p3 = await a.deltaPage(ANNA, 'cal', p3.nextLink);
    await a.deltaPage(ANNA, 'cal', p3.deltaLink);
    assert.match(calls[calls.length - 1].link ?? '', /deltatoken/, 'same week: the delta token is used');
  });

  it('reports a CRM event the moment the moving window reaches it, though it did not change', async () => {
    const feed = new PostgresCrmEvents(s.db);
    const far = day(380);
    await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone) values
      (${anna}::uuid, 'Next year', ${`${far}T09:00`}::timestamp, ${`${far}T10:00`}::timestamp, 'Europe/Berlin')`.execute(s.db);
    const now = Date.now();
    const ask = (at: number, after: string | null) =>
      feed.changes({ ownerId: anna, mailboxId: ANNA, after, entryWindow: crmEntryWindow(at, 30, 365), exceptionWindow: syncWindow(at, 30, 365) });
    const first = await ask(now, null);
    assert.ok(!first.changes.some((c) => c.payload?.subject === 'Next year'), 'beyond the window: not reported');
    const same = await ask(now, first.watermark);
    assert.equal(same.changes.length, 0);
    const later = await ask(now + 20 * 86_400_000, same.watermark);
    assert.deepEqual(later.changes.map((c) => c.payload?.subject), ['Next year'], 'reported when the window reaches it');
  });
});
