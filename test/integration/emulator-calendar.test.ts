/**
 * The emulator's calendars and events through the production client stack (@microsoft/microsoft-graph-client +
 * @azure/msal-node over HTTPS): CRUD, transactionId, time zones across daylight-saving changes, recurring
 * series with exceptions and cancellations, calendarView/delta rounds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Client } from '@microsoft/microsoft-graph-client';
import { type GraphConnection } from '../../src/activities/exchange/graph-client';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect, raw, graphError } from '../helpers/emulator-client';

const UPN = 'carol@contoso.test';
const CXSYNC_PROP = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name cxsyncId';

type Item = Record<string, any>;
type DeltaPage = { value: Item[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };

async function deltaRound(client: Client, start: string, prefer?: string): Promise<DeltaPage[]> {
  const pages: DeltaPage[] = [];
  let url: string | undefined = start;
  while (url) {
    let req = client.api(url);
    if (prefer) req = req.header('Prefer', prefer);
    const page = (await req.get()) as DeltaPage;
    pages.push(page);
    url = page['@odata.nextLink'];
    assert.ok(pages.length < 100, 'delta round does not end');
  }
  return pages;
}
const items = (pages: DeltaPage[]) => pages.flatMap((p) => p.value);
const lastLink = (pages: DeltaPage[]) => pages[pages.length - 1]['@odata.deltaLink']!;
const removed = (pages: DeltaPage[]) => items(pages).filter((i) => i['@removed']).map((i) => i.id as string);
const live = (pages: DeltaPage[]) => items(pages).filter((i) => !i['@removed']);

const berlin = (dateTime: string) => ({ dateTime, timeZone: 'Europe/Berlin' });

describe('Graph emulator: calendars and events through the real client', () => {
  let emu: GraphEmulator;
  let conn: GraphConnection;
  let client: Client;
  const base = `/users/${UPN}`;

  before(async () => {
    emu = await startGraphEmulator({ port: 0, maxTokenGenerations: 3 });
    emu.admin.ensureMailbox(UPN, 'Carol');
    conn = connect(emu);
    client = conn.client;
  });
  after(() => emu.close());

  test('default calendar, a dedicated calendar found by name, duplicates refused', async () => {
    const def = await client.api(`${base}/calendar`).get();
    assert.equal(def.name, 'Calendar');
    assert.equal(def.isDefaultCalendar, true);
    const created = await client.api(`${base}/calendars`).post({ name: 'VEvents' });
    assert.equal(created.isDefaultCalendar, false);
    const found = await client.api(`${base}/calendars`).filter("name eq 'VEvents'").get();
    assert.deepEqual(found.value.map((c: Item) => c.id), [created.id]);
    const dup = await graphError(client.api(`${base}/calendars`).post({ name: 'vevents' }));
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.code, 'ErrorFolderExists');
  });

  test('event CRUD: fields, UTC by default, etag and changeKey, If-Match, delete', async () => {
    const cal = await client.api(`${base}/calendars`).post({ name: 'Crud' });
    const ev = await client.api(`${base}/calendars/${cal.id}/events`).post({
      subject: 'Kick-off',
      body: { contentType: 'text', content: 'Agenda:\nintro' },
      start: berlin('2025-06-02T09:00:00'),
      end: berlin('2025-06-02T10:30:00'),
      location: { displayName: 'Room 1' },
      sensitivity: 'private',
      showAs: 'tentative',
      categories: ['CRM'],
      attendees: [{ emailAddress: { address: 'ann@example.com', name: 'Ann' }, type: 'required' }],
      singleValueExtendedProperties: [{ id: CXSYNC_PROP, value: 'crm-ev-1' }],
    });
    assert.equal(ev.type, 'singleInstance');
    assert.equal(ev['@odata.etag'], `W/"${ev.changeKey}"`);
    assert.deepEqual(ev.start, { dateTime: '2025-06-02T07:00:00.0000000', timeZone: 'UTC' });
    assert.deepEqual(ev.end, { dateTime: '2025-06-02T08:30:00.0000000', timeZone: 'UTC' });
    assert.equal(ev.originalStartTimeZone, 'Europe/Berlin');
    assert.equal(ev.sensitivity, 'private');
    assert.equal(ev.showAs, 'tentative');
    assert.equal(ev.location.displayName, 'Room 1');
    assert.deepEqual(ev.attendees, [{ type: 'required', status: { response: 'none', time: '0001-01-01T00:00:00Z' }, emailAddress: { name: 'Ann', address: 'ann@example.com' } }]);
    assert.equal(ev.organizer.emailAddress.address, UPN);
    assert.equal(ev.isOrganizer, true);
    assert.equal(ev.body.contentType, 'html', 'Exchange keeps event bodies as HTML');
    assert.match(ev.body.content, /Agenda:<br>/);
    assert.equal(ev.bodyPreview, 'Agenda:\nintro');
    assert.ok(ev.iCalUId);
    assert.equal(ev.transactionId, undefined, 'transactionId only appears when an app set it');

    const asText = await client.api(`${base}/events/${ev.id}`).header('Prefer', 'outlook.body-content-type="text"').get();
    assert.deepEqual(asText.body, { contentType: 'text', content: 'Agenda:\nintro' });

    const found = await client
      .api(`${base}/calendars/${cal.id}/events`)
      .filter(`singleValueExtendedProperties/any(ep: ep/id eq '${CXSYNC_PROP}' and ep/value eq 'crm-ev-1')`)
      .expand(`singleValueExtendedProperties($filter=id eq '${CXSYNC_PROP}')`)
      .get();
    assert.deepEqual(found.value.map((e: Item) => e.id), [ev.id]);
    assert.deepEqual(found.value[0].singleValueExtendedProperties, [{ id: CXSYNC_PROP, value: 'crm-ev-1' }]);

    const patched = await client.api(`${base}/events/${ev.id}`).header('If-Match', ev['@odata.etag']).patch({ subject: 'Kick-off (moved)', end: berlin('2025-06-02T11:00:00') });
    assert.equal(patched.subject, 'Kick-off (moved)');
    assert.equal(patched.end.dateTime, '2025-06-02T09:00:00.0000000');
    assert.equal(patched.location.displayName, 'Room 1');
    assert.notEqual(patched.changeKey, ev.changeKey);

    const stale = await graphError(client.api(`${base}/events/${ev.id}`).header('If-Match', ev['@odata.etag']).patch({ subject: 'lost' }));
    assert.equal(stale.statusCode, 412);
    assert.equal(stale.code, 'ErrorIrresolvableConflict');

    const wrongCal = await graphError(client.api(`${base}/calendar/events/${ev.id}`).get());
    assert.equal(wrongCal.statusCode, 404);

    await client.api(`${base}/events/${ev.id}`).delete();
    const gone = await graphError(client.api(`${base}/events/${ev.id}`).get());
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.code, 'ErrorItemNotFound');
  });

  test('attendee responses come from the user side and survive an app rewriting the attendee list', async () => {
    const ev = await client.api(`${base}/events`).post({
      subject: 'Review',
      start: berlin('2025-06-03T09:00:00'),
      end: berlin('2025-06-03T10:00:00'),
      attendees: [{ emailAddress: { address: 'ann@example.com' }, type: 'required', status: { response: 'accepted', time: '2025-01-01T00:00:00Z' } }],
    });
    assert.equal(ev.attendees[0].status.response, 'none', 'an app cannot set a response');
    assert.equal(ev.attendees[0].emailAddress.name, 'ann@example.com');
    emu.admin.updateEvent(UPN, ev.id, { attendees: [{ emailAddress: { address: 'ann@example.com', name: 'Ann' }, type: 'required', status: { response: 'accepted', time: '2025-05-01T10:00:00Z' } }] });
    const patched = await client.api(`${base}/events/${ev.id}`).patch({
      attendees: [
        { emailAddress: { address: 'ANN@example.com', name: 'Ann' }, type: 'required' },
        { emailAddress: { address: 'bob@example.com', name: 'Bob' }, type: 'optional' },
      ],
    });
    assert.deepEqual(
      patched.attendees.map((a: Item) => [a.emailAddress.name, a.type, a.status.response]),
      [['Ann', 'required', 'accepted'], ['Bob', 'optional', 'none']],
    );
    // An invitation someone else organised.
    const invite = emu.admin.createEvent(UPN, null, { subject: 'Their meeting', organizer: { emailAddress: { address: 'zoe@partner.test', name: 'Zoe' } }, start: berlin('2025-06-04T09:00:00'), end: berlin('2025-06-04T10:00:00') });
    const got = await client.api(`${base}/events/${invite.id}`).get();
    assert.equal(got.isOrganizer, false);
    assert.equal(got.organizer.emailAddress.address, 'zoe@partner.test');
  });

  test('bad input is refused in Graph error shape', async () => {
    const unknownZone = await graphError(client.api(`${base}/events`).post({ subject: 'x', start: { dateTime: '2025-01-01T09:00:00', timeZone: 'Mars/Olympus' }, end: berlin('2025-01-01T10:00:00') }));
    assert.equal(unknownZone.statusCode, 400);
    assert.equal(unknownZone.code, 'TimeZoneNotSupportedException');
    const unknownProp = await graphError(client.api(`${base}/events`).post({ subject: 'x', mood: 'happy', start: berlin('2025-01-01T09:00:00'), end: berlin('2025-01-01T10:00:00') }));
    assert.equal(unknownProp.code, 'RequestBodyRead');
    assert.match(unknownProp.message, /mood.*microsoft\.graph\.event/);
    const badSensitivity = await graphError(client.api(`${base}/events`).post({ sensitivity: 'secret', start: berlin('2025-01-01T09:00:00'), end: berlin('2025-01-01T10:00:00') }));
    assert.equal(badSensitivity.statusCode, 400);
    const noWindow = await graphError(client.api(`${base}/calendarView/delta`).get());
    assert.equal(noWindow.statusCode, 400);
    assert.equal(noWindow.code, 'ErrorInvalidParameter');
  });

  test('transactionId: a repeated create returns the first event; a different event with it is refused', async () => {
    const cal = await client.api(`${base}/calendars`).post({ name: 'Idempotent' });
    const body = { subject: 'Retry me', transactionId: 'crm-tx-1', start: berlin('2025-05-05T14:00:00'), end: berlin('2025-05-05T15:00:00') };
    const first = await client.api(`${base}/calendars/${cal.id}/events`).post(body);
    assert.equal(first.transactionId, 'crm-tx-1');
    const second = await client.api(`${base}/calendars/${cal.id}/events`).post(body);
    assert.equal(second.id, first.id);
    assert.equal((await client.api(`${base}/calendars/${cal.id}/events`).get()).value.length, 1);
    const different = await graphError(client.api(`${base}/calendars/${cal.id}/events`).post({ ...body, subject: 'Another meeting' }));
    assert.equal(different.statusCode, 400);
    assert.equal(different.code, 'ErrorDuplicateTransactionId');
    const change = await graphError(client.api(`${base}/events/${first.id}`).patch({ transactionId: 'crm-tx-2' }));
    assert.equal(change.statusCode, 400);
  });

  test('Prefer outlook.timezone converts across daylight-saving changes in Europe/Berlin and America/New_York', async () => {
    const cal = await client.api(`${base}/calendars`).post({ name: 'Zones' });
    // 09:00 Berlin every Monday from 24 March 2025: Europe springs forward on 30 March (the US already did on 9 March).
    const series = await client.api(`${base}/calendars/${cal.id}/events`).post({
      subject: 'Berlin standup',
      start: berlin('2025-03-24T09:00:00'),
      end: berlin('2025-03-24T09:15:00'),
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: '2025-03-24', numberOfOccurrences: 2 } },
    });
    assert.equal(series.type, 'seriesMaster');
    // 09:00 New York on 31 October and 3 November 2025: the US falls back on 2 November (Europe already did on 26 October).
    const ny = { timeZone: 'Eastern Standard Time' };
    const nySeries = await client.api(`${base}/calendars/${cal.id}/events`).post({
      subject: 'NY sync',
      start: { dateTime: '2025-10-31T09:00:00', ...ny },
      end: { dateTime: '2025-10-31T10:00:00', ...ny },
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday', 'friday'] }, range: { type: 'endDate', startDate: '2025-10-31', endDate: '2025-11-03' } },
    });

    const view = async (zone: string | undefined, id: string, s: string, e: string) => {
      let req = client.api(`${base}/events/${id}/instances`).query({ startDateTime: s, endDateTime: e });
      if (zone) req = req.header('Prefer', `outlook.timezone="${zone}"`);
      const res = await req.get();
      return res.value.map((i: Item) => `${i.start.dateTime.slice(0, 16)} ${i.start.timeZone}`);
    };
    const march = ['2025-03-20T00:00:00Z', '2025-04-05T00:00:00Z'] as const;
    assert.deepEqual(await view(undefined, series.id, ...march), ['2025-03-24T08:00 UTC', '2025-03-31T07:00 UTC']);
    assert.deepEqual(await view('Europe/Berlin', series.id, ...march), ['2025-03-24T09:00 Europe/Berlin', '2025-03-31T09:00 Europe/Berlin']);
    assert.deepEqual(await view('W. Europe Standard Time', series.id, ...march), ['2025-03-24T09:00 W. Europe Standard Time', '2025-03-31T09:00 W. Europe Standard Time']);
    assert.deepEqual(await view('America/New_York', series.id, ...march), ['2025-03-24T04:00 America/New_York', '2025-03-31T03:00 America/New_York']);

    const nov = ['2025-10-25T00:00:00Z', '2025-11-10T00:00:00Z'] as const;
    assert.deepEqual(await view(undefined, nySeries.id, ...nov), ['2025-10-31T13:00 UTC', '2025-11-03T14:00 UTC']);
    assert.deepEqual(await view('America/New_York', nySeries.id, ...nov), ['2025-10-31T09:00 America/New_York', '2025-11-03T09:00 America/New_York']);
    assert.deepEqual(await view('Europe/Berlin', nySeries.id, ...nov), ['2025-10-31T14:00 Europe/Berlin', '2025-11-03T15:00 Europe/Berlin']);

    // The same through calendarView/delta, which is what the sync reads.
    const round = await deltaRound(client, `${base}/calendars/${cal.id}/calendarView/delta?startDateTime=2025-03-01T00:00:00Z&endDateTime=2025-12-01T00:00:00Z`, 'outlook.timezone="Europe/Berlin"');
    const starts = live(round).map((i) => `${i.subject} ${i.start.dateTime.slice(0, 16)} ${i.start.timeZone}`).sort();
    assert.deepEqual(starts, [
      'Berlin standup 2025-03-24T09:00 Europe/Berlin',
      'Berlin standup 2025-03-31T09:00 Europe/Berlin',
      'NY sync 2025-10-31T14:00 Europe/Berlin',
      'NY sync 2025-11-03T15:00 Europe/Berlin',
    ]);
    const applied = await raw(emu, conn, `${base}/events/${series.id}`, { headers: { Prefer: 'outlook.timezone="America/New_York"' } });
    assert.equal(applied.headers.get('preference-applied'), 'outlook.timezone="America/New_York"');
    assert.deepEqual((applied.body as Item).start, { dateTime: '2025-03-24T04:00:00.0000000', timeZone: 'America/New_York' });
  });

  test('calendarView/delta: a weekly series with one moved and one cancelled occurrence, paged', async () => {
    const cal = await client.api(`${base}/calendars`).post({ name: 'Series' });
    const evBase = `${base}/calendars/${cal.id}/events`;
    const master = await client.api(evBase).post({
      subject: 'Weekly review',
      start: berlin('2025-09-01T10:00:00'),
      end: berlin('2025-09-01T11:00:00'),
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'], firstDayOfWeek: 'monday' }, range: { type: 'numbered', startDate: '2025-09-01', numberOfOccurrences: 8 } },
    });
    const single = await client.api(evBase).post({ subject: 'One-off', start: berlin('2025-09-10T15:00:00'), end: berlin('2025-09-10T16:00:00') });
    const got = await client.api(`${base}/events/${master.id}`).get();
    assert.equal(got.type, 'seriesMaster');
    assert.deepEqual(got.recurrence.pattern, { type: 'weekly', interval: 1, month: 0, dayOfMonth: 0, daysOfWeek: ['monday'], firstDayOfWeek: 'monday', index: 'first' });
    assert.deepEqual(got.recurrence.range, { type: 'numbered', startDate: '2025-09-01', endDate: '0001-01-01', recurrenceTimeZone: 'Europe/Berlin', numberOfOccurrences: 8 });

    const instances = (await client.api(`${base}/events/${master.id}/instances`).query({ startDateTime: '2025-09-01T00:00:00Z', endDateTime: '2025-11-01T00:00:00Z' }).get()).value as Item[];
    assert.equal(instances.length, 8);
    assert.ok(instances.every((i) => i.type === 'occurrence' && i.seriesMasterId === master.id));
    // Daylight saving ends on 26 October: the last occurrence is still at 10:00 Berlin, one hour later in UTC.
    assert.deepEqual([instances[0].start.dateTime, instances[7].start.dateTime], ['2025-09-01T08:00:00.0000000', '2025-10-20T08:00:00.0000000']);

    // The user moves the second occurrence to Tuesday afternoon and cancels the fourth.
    const moved = await client.api(`${base}/events/${instances[1].id}`).patch({ start: berlin('2025-09-09T14:00:00'), end: berlin('2025-09-09T15:00:00'), subject: 'Weekly review (moved)' });
    assert.equal(moved.type, 'exception');
    assert.equal(moved.id, instances[1].id);
    assert.equal(moved.originalStart, '2025-09-08T08:00:00Z');
    await client.api(`${base}/events/${instances[3].id}`).delete();
    assert.equal((await graphError(client.api(`${base}/events/${instances[3].id}`).get())).statusCode, 404);

    const window = 'startDateTime=2025-08-25T00:00:00Z&endDateTime=2025-10-31T00:00:00Z';
    const first = await raw(emu, conn, `${base}/calendars/${cal.id}/calendarView/delta?${window}`, { headers: { Prefer: 'odata.maxpagesize=3' } });
    assert.equal(first.headers.get('preference-applied'), 'odata.maxpagesize=3');
    const round1 = await deltaRound(client, `${base}/calendars/${cal.id}/calendarView/delta?${window}`, 'odata.maxpagesize=3');
    assert.deepEqual(round1.map((p) => p.value.length), [3, 3, 2]);
    for (const p of round1.slice(0, -1)) assert.ok(p['@odata.nextLink']?.startsWith(`${emu.graphBaseUrl}${base}/calendars/${cal.id}/calendarView/delta?$skiptoken=`));
    assert.ok(lastLink(round1).startsWith(`${emu.graphBaseUrl}${base}/calendars/${cal.id}/calendarView/delta?$deltatoken=`));
    const seen = items(round1);
    assert.equal(removed(round1).length, 0);
    assert.ok(!seen.some((i) => i.type === 'seriesMaster'), 'calendarView returns instances, never the master');
    assert.equal(seen.filter((i) => i.type === 'occurrence').length, 6);
    assert.equal(seen.filter((i) => i.type === 'singleInstance').map((i) => i.id).join(), single.id);
    const exception = seen.find((i) => i.type === 'exception')!;
    assert.equal(exception.subject, 'Weekly review (moved)');
    assert.equal(exception.start.dateTime, '2025-09-09T12:00:00.0000000');
    assert.ok(!seen.some((i) => i.id === instances[3].id), 'the cancelled occurrence is gone');
    assert.ok(seen.every((i) => i['@odata.type'] === '#microsoft.graph.event'));

    // Nothing changed: an empty round.
    const idle = await deltaRound(client, lastLink(round1));
    assert.deepEqual(items(idle), []);

    // Next round: another occurrence is cancelled, the moved one moves again, the series' subject changes.
    await client.api(`${base}/events/${instances[5].id}`).delete();
    emu.admin.updateEvent(UPN, instances[1].id, { start: berlin('2025-09-09T16:00:00'), end: berlin('2025-09-09T17:00:00') });
    const round2 = await deltaRound(client, lastLink(idle), 'odata.maxpagesize=4');
    assert.ok(removed(round2).includes(instances[5].id));
    assert.ok(!removed(round2).includes(instances[1].id));
    assert.equal(live(round2).find((i) => i.id === instances[1].id)?.start.dateTime, '2025-09-09T14:00:00.0000000');

    emu.admin.updateEvent(UPN, master.id, { subject: 'Weekly review v2' });
    const round3 = items(await deltaRound(client, lastLink(round2)));
    const live3 = round3.filter((i) => !i['@removed']);
    assert.equal(live3.length, 6, 'every remaining instance changed with its master');
    assert.equal(live3.find((i) => i.id === instances[1].id)?.subject, 'Weekly review (moved)', 'an exception keeps its own subject');
    assert.ok(live3.filter((i) => i.id !== instances[1].id).every((i) => i.subject === 'Weekly review v2'));
  });

  test('calendarView/delta: @removed for events deleted or moved out of the window; the series pattern change removes stale occurrences', async () => {
    const cal = await client.api(`${base}/calendars`).post({ name: 'Window' });
    const evBase = `${base}/calendars/${cal.id}/events`;
    const stay = await client.api(evBase).post({ subject: 'Stays', start: berlin('2025-07-01T09:00:00'), end: berlin('2025-07-01T10:00:00') });
    const leaves = await client.api(evBase).post({ subject: 'Leaves', start: berlin('2025-07-02T09:00:00'), end: berlin('2025-07-02T10:00:00') });
    const deleted = await client.api(evBase).post({ subject: 'Deleted', start: berlin('2025-07-03T09:00:00'), end: berlin('2025-07-03T10:00:00') });
    const outside = await client.api(evBase).post({ subject: 'Outside', start: berlin('2025-12-01T09:00:00'), end: berlin('2025-12-01T10:00:00') });
    const daily = await client.api(evBase).post({
      subject: 'Daily',
      start: berlin('2025-07-07T08:00:00'),
      end: berlin('2025-07-07T08:15:00'),
      recurrence: { pattern: { type: 'daily', interval: 1 }, range: { type: 'endDate', startDate: '2025-07-07', endDate: '2025-07-11' } },
    });
    const url = `${base}/calendars/${cal.id}/calendarView/delta?startDateTime=2025-06-30T00:00:00Z&endDateTime=2025-08-01T00:00:00Z`;
    const round1 = await deltaRound(client, url);
    assert.deepEqual(
      items(round1).map((i) => i.subject).sort(),
      ['Daily', 'Daily', 'Daily', 'Daily', 'Daily', 'Deleted', 'Leaves', 'Stays'],
      'events outside the window are not part of the view',
    );
    const dailyIds = items(round1).filter((i) => i.subject === 'Daily').map((i) => i.id as string);

    await client.api(`${base}/events/${leaves.id}`).patch({ start: berlin('2025-09-02T09:00:00'), end: berlin('2025-09-02T10:00:00') });
    await client.api(`${base}/events/${deleted.id}`).delete();
    const added = await client.api(evBase).post({ subject: 'Added', start: berlin('2025-07-04T09:00:00'), end: berlin('2025-07-04T10:00:00') });
    // Weekdays become Monday/Wednesday only: Tue, Thu and Fri occurrences disappear.
    await client.api(`${base}/events/${daily.id}`).patch({
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday', 'wednesday'] }, range: { type: 'endDate', startDate: '2025-07-07', endDate: '2025-07-11' } },
    });
    const round2 = await deltaRound(client, lastLink(round1), 'odata.maxpagesize=2');
    const gone = removed(round2);
    assert.ok(gone.includes(leaves.id), 'moved out of the window → @removed');
    assert.ok(gone.includes(deleted.id), 'deleted → @removed');
    assert.ok(!gone.includes(stay.id) && !live(round2).some((i) => i.id === stay.id), 'unchanged events are not repeated');
    assert.ok(live(round2).some((i) => i.id === added.id));
    const dailyNow = live(round2).filter((i) => i.seriesMasterId === daily.id).map((i) => i.id as string);
    assert.equal(dailyNow.length, 2);
    for (const id of dailyIds.filter((id) => !dailyNow.includes(id))) assert.ok(gone.includes(id), `stale occurrence ${id} reported removed`);
    assert.ok(!gone.includes(outside.id));
    assert.deepEqual(items(round2).find((i) => i.id === deleted.id), { '@odata.type': '#microsoft.graph.event', id: deleted.id, '@removed': { reason: 'deleted' } });

    // Moving back into the window brings it back; deleting the whole series removes its occurrences.
    await client.api(`${base}/events/${leaves.id}`).patch({ start: berlin('2025-07-02T11:00:00'), end: berlin('2025-07-02T12:00:00') });
    await client.api(`${base}/events/${daily.id}`).delete();
    const round3 = await deltaRound(client, lastLink(round2));
    assert.ok(live(round3).some((i) => i.id === leaves.id));
    assert.deepEqual(removed(round3).sort(), [...dailyNow].sort());
  });

  test('calendarView lists instances in the window; the default calendar paths work', async () => {
    const a = await client.api(`${base}/events`).post({ subject: 'Default A', start: berlin('2026-01-05T09:00:00'), end: berlin('2026-01-05T10:00:00') });
    const b = await client.api(`${base}/calendar/events`).post({ subject: 'Default B', start: berlin('2026-01-06T09:00:00'), end: berlin('2026-01-06T10:00:00') });
    const viewRes = await client.api(`${base}/calendarView`).query({ startDateTime: '2026-01-05T00:00:00Z', endDateTime: '2026-01-07T00:00:00Z' }).get();
    assert.deepEqual(viewRes.value.map((i: Item) => i.id), [a.id, b.id]);
    const all = items(await deltaRound(client, `${base}/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-02-01T00:00:00Z`));
    assert.deepEqual(all.map((i) => i.id).sort(), [a.id, b.id].sort());
    const allDay = await client.api(`${base}/events`).post({ subject: 'Holiday', isAllDay: true, start: { dateTime: '2026-01-08T00:00:00', timeZone: 'Europe/Berlin' }, end: { dateTime: '2026-01-09T00:00:00', timeZone: 'Europe/Berlin' } });
    const inNy = await client.api(`${base}/events/${allDay.id}`).header('Prefer', 'outlook.timezone="America/New_York"').get();
    assert.deepEqual(inNy.start, { dateTime: '2026-01-08T00:00:00.0000000', timeZone: 'America/New_York' }, 'all-day events keep their dates in every zone');
    const notMidnight = await graphError(client.api(`${base}/events`).post({ isAllDay: true, start: berlin('2026-01-08T10:00:00'), end: berlin('2026-01-09T00:00:00') }));
    assert.equal(notMidnight.statusCode, 400);
  });

  test('calendarView/delta tokens expire into 410 SyncStateNotFound; $batch reaches events', async () => {
    const url = `${base}/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2026-02-01T00:00:00Z`;
    const link = lastLink(await deltaRound(client, url));
    emu.admin.expireDeltaTokens(UPN);
    const expired = await graphError(client.api(link).get());
    assert.equal(expired.statusCode, 410);
    assert.equal(expired.code, 'SyncStateNotFound');

    const out = await client.api('/$batch').post({
      requests: [
        { id: '1', method: 'POST', url: `/users/${UPN}/events`, headers: { 'Content-Type': 'application/json' }, body: { subject: 'B1', transactionId: 'batch-1', start: berlin('2026-01-20T09:00:00'), end: berlin('2026-01-20T10:00:00') } },
        { id: '2', method: 'POST', url: `/users/${UPN}/events`, headers: { 'Content-Type': 'application/json' }, body: { subject: 'B1', transactionId: 'batch-1', start: berlin('2026-01-20T09:00:00'), end: berlin('2026-01-20T10:00:00') } },
        { id: '3', method: 'GET', url: `/users/${UPN}/events/nope` },
      ],
    });
    assert.deepEqual(out.responses.map((r: Item) => r.status), [201, 201, 404]);
    assert.equal(out.responses[0].body.id, out.responses[1].body.id);
  });
});

describe('Graph emulator: calendar persistence', () => {
  test('calendars, series with exceptions and calendarView deltaLinks survive a restart', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-emu-cal-'));
    try {
      let emu = await startGraphEmulator({ port: 0, dataDir });
      const port = Number(new URL(emu.origin).port);
      emu.admin.ensureMailbox(UPN);
      const series = emu.admin.createEvent(UPN, 'VEvents', {
        subject: 'Persisted',
        start: berlin('2025-02-03T09:00:00'),
        end: berlin('2025-02-03T10:00:00'),
        recurrence: { pattern: { type: 'weekly', daysOfWeek: ['monday'] }, range: { type: 'noEnd', startDate: '2025-02-03' } },
      });
      const window = emu.admin.calendarView(UPN, 'VEvents', '2025-02-01T00:00:00Z', '2025-03-01T00:00:00Z');
      assert.equal(window.length, 4);
      emu.admin.deleteEvent(UPN, window[2].id);
      const conn = connect(emu);
      const calId = window[0].calendarId;
      const link = lastLink(await deltaRound(conn.client, `/users/${UPN}/calendars/${calId}/calendarView/delta?startDateTime=2025-02-01T00:00:00Z&endDateTime=2025-03-01T00:00:00Z`));
      await emu.close();

      emu = await startGraphEmulator({ port, dataDir });
      try {
        assert.deepEqual(emu.admin.listEvents(UPN, 'VEvents').map((e) => e.id), [series.id]);
        assert.equal(emu.admin.calendarView(UPN, 'VEvents', '2025-02-01T00:00:00Z', '2025-03-01T00:00:00Z').length, 3);
        emu.admin.updateEvent(UPN, window[1].id, { subject: 'Exception after restart' });
        const round = items(await deltaRound(connect(emu).client, link));
        assert.deepEqual(round.map((i) => [i.id, i.subject, i.type]), [[window[1].id, 'Exception after restart', 'exception']]);
      } finally {
        await emu.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
