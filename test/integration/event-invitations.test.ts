/**
 * Nothing sent by surprise (issue 8, item 11; policy `event.invitations`), on the real stack (Temporal dev server,
 * PostgreSQL, the HTTPS Graph emulator through the real Graph client). The emulator records every message
 * Exchange would send for cxsync's writes (`sentMessages`), so each test states exactly who was mailed.
 *
 * - new-future (the default): enrolment exports the upcoming CRM meetings without attendees, their list the last
 *   line of the body — nobody is mailed; the line never reaches the CRM description and the CRM keeps its
 *   attendees through an Outlook edit; a CRM attendee change rewrites the line; deleting or reassigning such a
 *   meeting cancels nothing. A meeting created after enrolment and starting in the future is written with its
 *   attendees (Exchange invites them) and keeps that handling, whatever the policy says later; one already
 *   started is not. The stored decision outlives a copy that no longer shows it.
 * - A meeting from Outlook is handled as its copy shows.
 * - never and always.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { bodyText } from '../../src/domain/event';
import { ATTENDEE_BLOCK_LABEL } from '../../src/domain/invitations';
import type { TypeSummary } from '../../src/domain/status';
import type { SentMessage } from '../../src/emulator/meeting-messages';
import { addDays } from '../../src/domain/timezone';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const CARLA = 'carla@contoso.com';
const DAVE = 'dave@contoso.com';

const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);

type Ev = Record<string, unknown> & { id: string; subject: string; attendees?: Array<{ emailAddress: { address: string } }>; body?: { content?: string; contentType?: string } };
/** Who was mailed what, oldest first, recipients sorted. */
const brief = (ms: SentMessage[]) => ms.map((m) => ({ kind: m.kind, to: [...m.recipients].sort(), subject: m.subject }));

describe('meeting invitations: nothing sent by surprise, on the real stack', () => {
  let s: Stack;
  let anna: string;
  let ben: string;
  let lukas: string;

  const events = (upn: string) => s.emulator.admin.listEvents(upn, 'VEvents') as unknown as Ev[];
  const copy = (subject: string, upn = ANNA) => {
    const found = events(upn).filter((e) => e.subject === subject);
    assert.equal(found.length, 1, `one Outlook copy of ${subject}: ${JSON.stringify(events(upn).map((e) => e.subject))}`);
    return found[0];
  };
  const text = (e: Ev) => bodyText(e.body as { content?: string; contentType?: string }) ?? '';
  const lastLine = (e: Ev) => text(e).split('\n').pop()!;
  const attendeesOf = (e: Ev) => (e.attendees ?? []).map((a) => a.emailAddress.address).sort();
  const sent = (upn = ANNA) => brief(s.emulator.admin.sentMessages(upn));

  const sync = async (upn = ANNA) => {
    const st = await s.operator.syncNow(upn, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    const t = st!.lastCycle!.types.event!;
    assert.equal(t.errors, 0, JSON.stringify(t));
    return t;
  };
  /** What a cycle wrote on each side (a TypeSummary is one). */
  type Counts = Pick<TypeSummary, 'exchange' | 'crm'>;
  /**
   * Cycles until `done` holds (a CRM change reaches the feed once every transaction older than it has ended, and
   * tests of other files share the PostgreSQL cluster): what the cycles wrote, summed.
   */
  const syncUntil = async (what: string, done: () => boolean | Promise<boolean>, upn = ANNA): Promise<Counts> => {
    const sum: Counts = { exchange: { created: 0, updated: 0, deleted: 0 }, crm: { created: 0, updated: 0, deleted: 0 } };
    for (let i = 0; i < 10; i++) {
      const t = await sync(upn);
      for (const side of ['exchange', 'crm'] as const) for (const k of ['created', 'updated', 'deleted'] as const) sum[side][k] += t[side][k];
      if (await done()) return sum;
    }
    assert.fail(`${what}: not reached after 10 cycles`);
  };
  const quiet = async (upn = ANNA) => {
    const q = await sync(upn);
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.exchange.deleted, q.crm.created, q.crm.updated, q.crm.deleted], [0, 0, 0, 0, 0, 0], `a quiet cycle writes nothing: ${JSON.stringify(q)}`);
  };

  async function meeting(owner: string, subject: string, start: string, attendees: Array<{ email: string; name?: string; attendance?: string; response?: string; contact?: string; user?: string }>, description: string | null = null): Promise<string> {
    const r = await sql<{ id: string }>`insert into crm.events (owner_id, event_type, subject, description, start_local, end_local, time_zone)
      values (${owner}::uuid, 'Meeting', ${subject}, ${description}, ${`${start}T10:00`}::timestamp, ${`${start}T11:00`}::timestamp, 'Europe/Berlin') returning id::text`.execute(s.db);
    const id = r.rows[0].id;
    for (const a of attendees) await addAttendee(id, a);
    return id;
  }
  async function addAttendee(eventId: string, a: { email: string; name?: string; attendance?: string; response?: string; contact?: string; user?: string }): Promise<void> {
    await sql`insert into crm.event_attendees (event_id, email, name, attendance, response, contact_id, user_id)
      values (${eventId}::uuid, ${a.email}, ${a.name ?? null}, ${a.attendance ?? 'required'}, ${a.response ?? 'none'}, ${a.contact ?? null}::uuid, ${a.user ?? null}::uuid)`.execute(s.db);
  }
  const crmAttendees = async (eventId: string) =>
    (await sql<{ email: string; attendance: string; response: string }>`select email, attendance, response from crm.event_attendees where event_id = ${eventId}::uuid order by email`.execute(s.db)).rows.map((r) => [r.email, r.attendance, r.response]);
  const crmDescription = async (eventId: string) => (await sql<{ description: string | null }>`select description from crm.events where id = ${eventId}::uuid`.execute(s.db)).rows[0].description;
  const stored = async (upn: string, eventId: string) =>
    (await sql<{ handling: string }>`select handling from sync.event_invitation where mailbox_id = ${upn} and crm_id = ${eventId}`.execute(s.db)).rows[0]?.handling;

  let review: string;
  let debrief: string;
  let toDelete: string;
  let toReassign: string;
  let kickoff: string;

  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    ben = await s.addUser(BEN, 'Ben Carter');
    await sql`update crm.users set time_zone = 'Europe/Berlin'`.execute(s.db);
    const c = await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Lukas', 'Weber', 'lukas@fabrikam.de') returning id::text`.execute(s.db);
    lukas = c.rows[0].id;
  });
  after(async () => s?.teardown());

  it('new-future: enrolling mails nobody; the upcoming meetings carry no attendees and list them as the last line of their body', async () => {
    review = await meeting(anna, 'Quarterly review', day(5), [
      { email: 'lukas@fabrikam.de', contact: lukas },
      { email: BEN, user: ben, attendance: 'optional' },
      { email: 'sofia@adventure-works.it', name: 'Sofia Rossi', response: 'accepted' },
    ], 'Agenda: numbers, then plans');
    debrief = await meeting(anna, "Last week's debrief", day(-3), [{ email: 'lukas@fabrikam.de', contact: lukas }]);
    toDelete = await meeting(anna, 'Workshop (to be deleted)', day(6), [{ email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);
    toReassign = await meeting(anna, 'Site visit (to be reassigned)', day(7), [{ email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);

    await s.operator.enroll(ANNA);
    const t = await syncUntil('four copies', () => events(ANNA).length === 4);
    assert.equal(t.exchange.created, 4, JSON.stringify(t));
    assert.deepEqual(sent(), [], 'no invitation on enrolment');

    const r = copy('Quarterly review');
    assert.deepEqual(attendeesOf(r), [], 'written without attendees');
    assert.equal(text(r), `Agenda: numbers, then plans\n\n${ATTENDEE_BLOCK_LABEL} Ben Carter (optional) <ben@contoso.com>, Lukas Weber <lukas@fabrikam.de>, Sofia Rossi (accepted) <sofia@adventure-works.it>`);
    for (const subject of ["Last week's debrief", 'Workshop (to be deleted)', 'Site visit (to be reassigned)']) {
      assert.deepEqual(attendeesOf(copy(subject)), [], subject);
      assert.ok(lastLine(copy(subject)).startsWith(ATTENDEE_BLOCK_LABEL), `${subject}: ${text(copy(subject))}`);
    }
    // Read back, the copies equal the CRM records: nothing is written on either side.
    await quiet();
    assert.equal(await crmDescription(review), 'Agenda: numbers, then plans');
    assert.deepEqual(await crmAttendees(review), [[BEN, 'optional', 'none'], ['lukas@fabrikam.de', 'required', 'none'], ['sofia@adventure-works.it', 'required', 'accepted']]);
  });

  it('an Outlook edit of such a meeting reaches the CRM without the line; the CRM keeps its attendees', async () => {
    const r = copy('Quarterly review');
    s.emulator.admin.updateEvent(ANNA, r.id, { body: { contentType: 'text', content: `Agenda: numbers only\nBring the forecast.\n\n${lastLine(r)}` } });
    const t = await sync();
    assert.equal(t.crm.updated, 1, JSON.stringify(t));
    assert.equal(await crmDescription(review), 'Agenda: numbers only\nBring the forecast.');
    assert.deepEqual(await crmAttendees(review), [[BEN, 'optional', 'none'], ['lukas@fabrikam.de', 'required', 'none'], ['sofia@adventure-works.it', 'required', 'accepted']]);
    assert.equal(await stored(ANNA, review), 'list-in-body', 'the handling is stored with the meeting');
    await quiet();
    assert.deepEqual(sent(), []);
  });

  it('a CRM attendee change of such a meeting rewrites the line and mails nobody', async () => {
    await addAttendee(review, { email: 'nora@northwind.com', name: 'Nora Berg' });
    const t = await syncUntil('Nora listed', () => text(copy('Quarterly review')).includes('nora@northwind.com'));
    assert.equal(t.exchange.updated, 1, JSON.stringify(t));
    const r = copy('Quarterly review');
    assert.deepEqual(attendeesOf(r), []);
    assert.equal(lastLine(r), `${ATTENDEE_BLOCK_LABEL} Ben Carter (optional) <ben@contoso.com>, Lukas Weber <lukas@fabrikam.de>, Nora Berg <nora@northwind.com>, Sofia Rossi (accepted) <sofia@adventure-works.it>`);
    assert.ok(text(r).startsWith('Agenda: numbers only\nBring the forecast.\n\n'), text(r));
    await quiet();
    assert.deepEqual(sent(), []);
  });

  it('deleting or reassigning such a meeting in the CRM removes the copy and cancels nothing', async () => {
    await sql`update crm.events set deleted_at = now() where id = ${toDelete}::uuid`.execute(s.db);
    await sql`update crm.events set owner_id = ${ben}::uuid where id = ${toReassign}::uuid`.execute(s.db);
    const t = await syncUntil('both copies gone', () => events(ANNA).filter((e) => e.subject === 'Workshop (to be deleted)' || e.subject === 'Site visit (to be reassigned)').length === 0);
    assert.equal(t.exchange.deleted, 2, JSON.stringify(t));
    assert.equal(events(ANNA).filter((e) => e.subject === 'Workshop (to be deleted)' || e.subject === 'Site visit (to be reassigned)').length, 0);
    assert.deepEqual(sent(), [], 'the copies had no attendees: a delete mails nobody');
  });

  it('a meeting created after enrolment and starting in the future is written with its attendees; one already past is not', async () => {
    kickoff = await meeting(anna, 'Kick-off', day(9), [{ email: 'lukas@fabrikam.de', contact: lukas }, { email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);
    await meeting(anna, 'Call yesterday, logged today', day(-1), [{ email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);
    const t = await syncUntil('both copies made', () => events(ANNA).filter((e) => e.subject === 'Kick-off' || e.subject === 'Call yesterday, logged today').length === 2);
    assert.equal(t.exchange.created, 2, JSON.stringify(t));
    assert.deepEqual(sent(), [{ kind: 'invitation', to: ['lukas@fabrikam.de', 'sofia@adventure-works.it'], subject: 'Kick-off' }], 'Exchange invites, as for any meeting the user creates');
    const k = copy('Kick-off');
    assert.deepEqual(attendeesOf(k), ['lukas@fabrikam.de', 'sofia@adventure-works.it']);
    assert.equal(text(k).includes(ATTENDEE_BLOCK_LABEL), false);
    const past = copy('Call yesterday, logged today');
    assert.deepEqual(attendeesOf(past), [], 'a past meeting mails nobody');
    assert.ok(lastLine(past).startsWith(ATTENDEE_BLOCK_LABEL));
    await quiet();
    assert.equal(sent().length, 1);
  });

  it('an invited meeting keeps its handling for its life, whatever the policy says later', async () => {
    s.emulator.admin.clearSentMessages(ANNA);
    await sql`update crm.events set start_local = start_local + interval '1 hour', end_local = end_local + interval '1 hour' where id = ${kickoff}::uuid`.execute(s.db);
    await syncUntil('the move written', () => sent().length > 0);
    assert.deepEqual(sent(), [{ kind: 'update', to: ['lukas@fabrikam.de', 'sofia@adventure-works.it'], subject: 'Kick-off' }]);
    assert.equal(await stored(ANNA, kickoff), 'invite');

    await s.operator.createPolicy('no-invites', { event: { invitations: 'never' } });
    await s.operator.assign(ANNA, 'no-invites');
    s.emulator.admin.clearSentMessages(ANNA);
    await addAttendee(kickoff, { email: 'nora@northwind.com', name: 'Nora Berg' });
    await syncUntil('Nora added', () => attendeesOf(copy('Kick-off')).length === 3);
    assert.deepEqual(sent(), [{ kind: 'invitation', to: ['nora@northwind.com'], subject: 'Kick-off' }], 'only the one added is invited');
    assert.deepEqual(attendeesOf(copy('Kick-off')), ['lukas@fabrikam.de', 'nora@northwind.com', 'sofia@adventure-works.it']);
    await quiet();

    // Deleted in the CRM: Exchange cancels it with everyone invited, as Outlook does for the organizer.
    s.emulator.admin.clearSentMessages(ANNA);
    await sql`update crm.events set deleted_at = now() where id = ${kickoff}::uuid`.execute(s.db);
    const t = await syncUntil('the copy gone', () => !events(ANNA).some((e) => e.subject === 'Kick-off'));
    assert.equal(t.exchange.deleted, 1, JSON.stringify(t));
    assert.deepEqual(sent(), [{ kind: 'cancellation', to: ['lukas@fabrikam.de', 'nora@northwind.com', 'sofia@adventure-works.it'], subject: 'Canceled: Kick-off' }]);
  });

  it('a listed meeting stays listed after its copy stopped showing it (all attendees removed, then one added, under "always")', async () => {
    await s.operator.createPolicy('invite-all', { event: { invitations: 'always' } });
    await s.operator.assign(ANNA, 'invite-all');
    s.emulator.admin.clearSentMessages(ANNA);
    await sql`delete from crm.event_attendees where event_id = ${review}::uuid`.execute(s.db);
    await syncUntil('the line removed', () => !text(copy('Quarterly review')).includes(ATTENDEE_BLOCK_LABEL));
    let r = copy('Quarterly review');
    assert.equal(text(r), 'Agenda: numbers only\nBring the forecast.', 'no attendees: no line');
    await addAttendee(review, { email: 'otto@contoso.com', name: 'Otto Maier' });
    await syncUntil('Otto written', () => JSON.stringify(copy('Quarterly review')).includes('otto@contoso.com'));
    r = copy('Quarterly review');
    assert.deepEqual(attendeesOf(r), [], 'the stored decision wins over "always"');
    assert.equal(lastLine(r), `${ATTENDEE_BLOCK_LABEL} Otto Maier <otto@contoso.com>`);
    assert.deepEqual(sent(), []);
    await quiet();
  });

  it('a meeting from Outlook is handled as its copy shows: attendees invited there stay invited, even under "never"', async () => {
    await s.operator.assign(ANNA, 'no-invites');
    // The user organises a meeting in Outlook and invites Lukas (Outlook mails him; the admin API acts as the user).
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Planning (from Outlook)',
      start: { dateTime: `${day(12)}T08:00:00`, timeZone: 'UTC' },
      end: { dateTime: `${day(12)}T09:00:00`, timeZone: 'UTC' },
      attendees: [{ emailAddress: { address: 'lukas@fabrikam.de', name: 'Lukas Weber' }, type: 'required' }],
    });
    s.emulator.admin.clearSentMessages(ANNA);
    let t: Counts = await sync();
    assert.equal(t.crm.created, 1, JSON.stringify(t));
    const row = (await sql<{ id: string }>`select id::text from crm.events where subject = 'Planning (from Outlook)'`.execute(s.db)).rows[0];
    assert.deepEqual(await crmAttendees(row.id), [['lukas@fabrikam.de', 'required', 'none']]);
    assert.equal(await stored(ANNA, row.id), 'invite');
    await addAttendee(row.id, { email: 'sofia@adventure-works.it', name: 'Sofia Rossi' });
    t = await syncUntil('Sofia added', () => attendeesOf(copy('Planning (from Outlook)')).length === 2);
    assert.equal(t.exchange.updated, 1, JSON.stringify(t));
    assert.deepEqual(attendeesOf(copy('Planning (from Outlook)')), ['lukas@fabrikam.de', 'sofia@adventure-works.it']);
    assert.deepEqual(sent(), [{ kind: 'invitation', to: ['sofia@adventure-works.it'], subject: 'Planning (from Outlook)' }]);
    await quiet();
  });

  it('"never": a meeting created after enrolment and starting in the future is listed, not invited', async () => {
    const carla = await s.addUser(CARLA, 'Carla Diaz');
    await sql`update crm.users set time_zone = 'Europe/Berlin' where id = ${carla}::uuid`.execute(s.db);
    await s.operator.enroll(CARLA, { policy: 'no-invites' });
    await sync(CARLA);
    await meeting(carla, 'Demo', day(4), [{ email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);
    const t = await syncUntil('the copy made', () => events(CARLA).some((e) => e.subject === 'Demo'), CARLA);
    assert.equal(t.exchange.created, 1, JSON.stringify(t));
    assert.deepEqual(attendeesOf(copy('Demo', CARLA)), []);
    assert.equal(lastLine(copy('Demo', CARLA)), `${ATTENDEE_BLOCK_LABEL} Sofia Rossi <sofia@adventure-works.it>`);
    assert.deepEqual(sent(CARLA), []);
    await quiet(CARLA);
  });

  it('"always": enrolment invites the attendees of every upcoming meeting, as in the CRM', async () => {
    const dave = await s.addUser(DAVE, 'Dave Jones');
    await sql`update crm.users set time_zone = 'Europe/Berlin' where id = ${dave}::uuid`.execute(s.db);
    await meeting(dave, 'Board meeting', day(3), [{ email: 'sofia@adventure-works.it', name: 'Sofia Rossi' }]);
    await s.operator.enroll(DAVE, { policy: 'invite-all' });
    const t = await syncUntil('the copy made', () => events(DAVE).some((e) => e.subject === 'Board meeting'), DAVE);
    assert.equal(t.exchange.created, 1, JSON.stringify(t));
    assert.deepEqual(attendeesOf(copy('Board meeting', DAVE)), ['sofia@adventure-works.it']);
    assert.deepEqual(sent(DAVE), [{ kind: 'invitation', to: ['sofia@adventure-works.it'], subject: 'Board meeting' }]);
    await quiet(DAVE);
  });
});
