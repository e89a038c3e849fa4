/**
 * The messages Exchange sends on its own when an app writes meetings (src/emulator/meeting-messages.ts), through
 * the production client stack: invitations on create and on added attendees, updates, cancellations on delete
 * and on POST …/cancel — and nothing for events without attendees, for an attendee's copy, for the organizer's
 * own properties, for a repeated transactionId, or for what the user does (the admin API). Read through the
 * in-process emulator object and the admin HTTP API, cleared per mailbox and by the admin reset.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type Client } from '@microsoft/microsoft-graph-client';
import { type GraphConnection } from '../../src/activities/exchange/graph-client';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import type { SentMessage } from '../../src/emulator/meeting-messages';
import { connect, graphError, raw } from '../helpers/emulator-client';

const UPN = 'dana@contoso.test';
const OTHER = 'erik@contoso.test';

type Item = Record<string, any>;

const utc = (dateTime: string) => ({ dateTime, timeZone: 'UTC' });
const person = (address: string, name?: string) => ({ emailAddress: { address, ...(name ? { name } : {}) }, type: 'required' });
const meeting = (subject: string, attendees: string[]) => ({
  subject,
  start: utc('2030-05-06T09:00:00'),
  end: utc('2030-05-06T10:00:00'),
  attendees: attendees.map((a) => person(a)),
});
/** What a test asserts: the kind, event, recipients (sorted) and subject of each message, oldest first. */
const brief = (ms: SentMessage[]) => ms.map((m) => ({ kind: m.kind, eventId: m.eventId, to: [...m.recipients].sort(), subject: m.subject, ...(m.comment !== undefined ? { comment: m.comment } : {}) }));

describe('Graph emulator: messages Exchange sends for meetings', () => {
  let emu: GraphEmulator;
  let conn: GraphConnection;
  let client: Client;
  const base = `/users/${UPN}`;
  const sent = () => brief(emu.admin.sentMessages(UPN));

  before(async () => {
    emu = await startGraphEmulator({ port: 0 });
    emu.admin.ensureMailbox(UPN, 'Dana');
    emu.admin.ensureMailbox(OTHER, 'Erik');
    conn = connect(emu);
    client = conn.client;
  });
  after(() => emu.close());
  beforeEach(() => emu.admin.clearSentMessages(UPN));

  test('create with attendees: one invitation to every attendee (addresses lower-cased, the organizer left out)', async () => {
    const ev = await client.api(`${base}/events`).post({ ...meeting('Kick-off', ['Ann@Example.com', 'bob@example.org', 'ANN@example.com']), attendees: [person('Ann@Example.com', 'Ann'), person('bob@example.org'), person(UPN)] });
    const ms = emu.admin.sentMessages(UPN);
    assert.deepEqual(brief(ms), [{ kind: 'invitation', eventId: ev.id, to: ['ann@example.com', 'bob@example.org'], subject: 'Kick-off' }]);
    assert.ok(!Number.isNaN(Date.parse(ms[0].at)));
    assert.deepEqual(emu.admin.sentMessages(OTHER), [], 'per mailbox');
  });

  test('create without attendees: nothing is sent; a later update of it neither', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Focus time', []));
    await client.api(`${base}/events/${ev.id}`).patch({ subject: 'Deep work', location: { displayName: 'Home' } });
    assert.deepEqual(sent(), []);
  });

  test('a repeated create with the same transactionId returns the first event and sends nothing more', async () => {
    const body = { ...meeting('Retried', ['ann@example.com']), transactionId: 'b8a9a2b4-0a76-4b8e-9a49-6d3c57c0e001' };
    const first = await client.api(`${base}/events`).post(body);
    const again = await client.api(`${base}/events`).post(body);
    assert.equal(again.id, first.id);
    assert.deepEqual(sent().map((m) => m.kind), ['invitation']);
  });

  test('update of a meeting\'s subject, time, location or body: one update to every attendee', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Review', ['ann@example.com', 'bob@example.org']));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({ subject: 'Review (moved)' });
    await client.api(`${base}/events/${ev.id}`).patch({ start: utc('2030-05-07T09:00:00'), end: utc('2030-05-07T10:00:00') });
    await client.api(`${base}/events/${ev.id}`).patch({ location: { displayName: 'Room 2' } });
    await client.api(`${base}/events/${ev.id}`).patch({ body: { contentType: 'text', content: 'Agenda' } });
    const update = { kind: 'update', eventId: ev.id, to: ['ann@example.com', 'bob@example.org'], subject: 'Review (moved)' };
    assert.deepEqual(sent(), [update, update, update, update]);
  });

  test('the organizer\'s own properties (categories, reminder, free/busy, extended properties) send nothing', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Quiet', ['ann@example.com']));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({
      categories: ['CRM'],
      isReminderOn: false,
      showAs: 'tentative',
      singleValueExtendedProperties: [{ id: 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name cxsyncId', value: 'x' }],
    });
    assert.deepEqual(sent(), []);
  });

  test('attendees alone: an added attendee is invited, a removed one gets a cancellation, the others nothing', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Planning', ['ann@example.com', 'bob@example.org']));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({ attendees: [person('ann@example.com'), person('bob@example.org'), person('cy@example.net')] });
    assert.deepEqual(sent(), [{ kind: 'invitation', eventId: ev.id, to: ['cy@example.net'], subject: 'Planning' }]);
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({ attendees: [person('ann@example.com'), person('cy@example.net')] });
    assert.deepEqual(sent(), [{ kind: 'cancellation', eventId: ev.id, to: ['bob@example.org'], subject: 'Canceled: Planning' }]);
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({ attendees: [person('cy@example.net'), person('ANN@example.com')] });
    assert.deepEqual(sent(), [], 'the same attendees: nobody changed');
  });

  test('attendees added to an event that had none: they are invited', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Solo', []));
    await client.api(`${base}/events/${ev.id}`).patch({ subject: 'Now a meeting', attendees: [person('ann@example.com')] });
    assert.deepEqual(sent(), [{ kind: 'invitation', eventId: ev.id, to: ['ann@example.com'], subject: 'Now a meeting' }]);
  });

  test('attendees with other properties: the new ones are invited and everyone else gets the update', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Sync', ['ann@example.com']));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${ev.id}`).patch({ subject: 'Sync v2', attendees: [person('ann@example.com'), person('bob@example.org')] });
    assert.deepEqual(sent(), [
      { kind: 'invitation', eventId: ev.id, to: ['bob@example.org'], subject: 'Sync v2' },
      { kind: 'update', eventId: ev.id, to: ['ann@example.com'], subject: 'Sync v2' },
    ]);
  });

  test('delete of a meeting: a cancellation to every attendee; of an event without attendees: nothing', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Lunch', ['ann@example.com', 'bob@example.org']));
    const solo = await client.api(`${base}/events`).post(meeting('Dentist', []));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${solo.id}`).delete();
    assert.deepEqual(sent(), []);
    await client.api(`${base}/events/${ev.id}`).delete();
    assert.deepEqual(sent(), [{ kind: 'cancellation', eventId: ev.id, to: ['ann@example.com', 'bob@example.org'], subject: 'Canceled: Lunch' }]);
  });

  test('a failed write sends nothing: a stale If-Match, a delete of a missing event', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Guarded', ['ann@example.com']));
    emu.admin.clearSentMessages(UPN);
    const stale = await graphError(client.api(`${base}/events/${ev.id}`).header('If-Match', 'W/"stale"').patch({ subject: 'x' }));
    assert.equal(stale.statusCode, 412);
    assert.equal((await graphError(client.api(`${base}/events/AAMkAnothere`).delete())).statusCode, 404);
    assert.deepEqual(sent(), []);
  });

  test('POST /events/{id}/cancel: 202, the event is gone, the attendees get a cancellation with the comment', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Offsite', ['ann@example.com']));
    emu.admin.clearSentMessages(UPN);
    const res = await raw(emu, conn, `${base}/events/${ev.id}/cancel`, { method: 'POST', body: { Comment: 'Postponed to June' } });
    assert.equal(res.status, 202);
    assert.equal((await graphError(client.api(`${base}/events/${ev.id}`).get())).statusCode, 404);
    assert.deepEqual(sent(), [{ kind: 'cancellation', eventId: ev.id, to: ['ann@example.com'], subject: 'Canceled: Offsite', comment: 'Postponed to June' }]);
    const noComment = await client.api(`${base}/events`).post(meeting('Offsite 2', ['bob@example.org']));
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${noComment.id}/cancel`).post({});
    assert.deepEqual(sent(), [{ kind: 'cancellation', eventId: noComment.id, to: ['bob@example.org'], subject: 'Canceled: Offsite 2' }]);
  });

  test('an attendee\'s copy (another organizer): cancel is refused with 400; update and delete send nothing', async () => {
    const copy = emu.admin.createEvent(UPN, null, { ...meeting('Their meeting', ['ann@example.com', UPN]), organizer: { emailAddress: { address: OTHER, name: 'Erik' } } });
    const err = await graphError(client.api(`${base}/events/${copy.id}/cancel`).post({ comment: 'no' }));
    assert.equal(err.statusCode, 400);
    assert.match(err.message, /You need to be an organizer to cancel a meeting/);
    await client.api(`${base}/events/${copy.id}`).patch({ subject: 'Renamed locally', categories: ['CRM'] });
    await client.api(`${base}/events/${copy.id}`).delete();
    assert.deepEqual(sent(), []);
  });

  test('what the user does (the admin API) sends nothing: only an app\'s writes are recorded', async () => {
    const ev = emu.admin.createEvent(UPN, null, meeting('Mine', ['ann@example.com']));
    emu.admin.updateEvent(UPN, ev.id, { subject: 'Mine, renamed' });
    emu.admin.deleteEvent(UPN, ev.id);
    assert.deepEqual(sent(), []);
  });

  test('series: an update of the master mails once for the series and once per separately updated occurrence; deleting one occurrence cancels it', async () => {
    const master = await client.api(`${base}/events`).post({
      ...meeting('Weekly', ['ann@example.com']),
      start: utc('2030-06-03T09:00:00'),
      end: utc('2030-06-03T10:00:00'),
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: '2030-06-03', numberOfOccurrences: 4 } },
    });
    const instances = (await client.api(`${base}/events/${master.id}/instances`).query({ startDateTime: '2030-06-01T00:00:00Z', endDateTime: '2030-07-01T00:00:00Z' }).get()).value as Item[];
    assert.equal(instances.length, 4);
    await client.api(`${base}/events/${instances[1].id}`).patch({ subject: 'Weekly (special)' });
    await client.api(`${base}/events/${instances[2].id}`).delete();
    assert.deepEqual(sent(), [
      { kind: 'invitation', eventId: master.id, to: ['ann@example.com'], subject: 'Weekly' },
      { kind: 'update', eventId: instances[1].id, to: ['ann@example.com'], subject: 'Weekly (special)' },
      { kind: 'cancellation', eventId: instances[2].id, to: ['ann@example.com'], subject: 'Canceled: Weekly' },
    ]);
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${master.id}`).patch({ location: { displayName: 'Room 4' } });
    assert.deepEqual(sent(), [
      { kind: 'update', eventId: master.id, to: ['ann@example.com'], subject: 'Weekly' },
      { kind: 'update', eventId: instances[1].id, to: ['ann@example.com'], subject: 'Weekly (special)' },
    ]);
    emu.admin.clearSentMessages(UPN);
    await client.api(`${base}/events/${master.id}`).delete();
    assert.deepEqual(sent(), [{ kind: 'cancellation', eventId: master.id, to: ['ann@example.com'], subject: 'Canceled: Weekly' }]);
  });

  test('writes inside $batch are recorded like direct ones', async () => {
    const out = await raw(emu, conn, '/$batch', {
      method: 'POST',
      body: { requests: [{ id: '1', method: 'POST', url: `${base}/events`, headers: { 'Content-Type': 'application/json' }, body: meeting('Batched', ['ann@example.com']) }] },
    });
    assert.equal(out.status, 200);
    const created = (out.body!.responses as Array<{ status: number; body: Item }>)[0];
    assert.equal(created.status, 201);
    assert.deepEqual(sent(), [{ kind: 'invitation', eventId: created.body.id, to: ['ann@example.com'], subject: 'Batched' }]);
  });

  test('admin HTTP API: GET and DELETE /admin/mailboxes/{upn}/sent-messages; the admin reset clears them with everything else', async () => {
    const ev = await client.api(`${base}/events`).post(meeting('Over HTTP', ['ann@example.com']));
    const listed = await raw(emu, conn, `${emu.origin}/admin/mailboxes/${encodeURIComponent(UPN)}/sent-messages`);
    assert.equal(listed.status, 200);
    assert.deepEqual(brief(listed.body!.value as SentMessage[]), [{ kind: 'invitation', eventId: ev.id, to: ['ann@example.com'], subject: 'Over HTTP' }]);
    assert.equal((await raw(emu, conn, `${emu.origin}/admin/mailboxes/${UPN}/sent-messages`, { method: 'DELETE' })).status, 204);
    assert.deepEqual((await raw(emu, conn, `${emu.origin}/admin/mailboxes/${UPN}/sent-messages`)).body!.value, []);
    assert.equal((await raw(emu, conn, `${emu.origin}/admin/mailboxes/nobody@contoso.test/sent-messages`)).status, 404);

    await client.api(`${base}/events`).post(meeting('Before reset', ['ann@example.com']));
    assert.equal(emu.admin.sentMessages(UPN).length, 1);
    assert.equal((await raw(emu, conn, `${emu.origin}/admin/reset`, { method: 'POST' })).status, 204);
    emu.admin.ensureMailbox(UPN, 'Dana');
    emu.admin.ensureMailbox(OTHER, 'Erik');
    assert.deepEqual(emu.admin.sentMessages(UPN), []);
  });
});
