/**
 * Bodies and locations on the real stack (Temporal dev server, PostgreSQL, the HTTPS Graph emulator through the
 * real Graph client): an Outlook meeting with a Teams body and a located room, edited on both sides. What cxsync
 * does not sync (the HTML around the text, the URLs behind link text, the room's address, coordinates and link)
 * is never wiped by a CRM change of something else; a CRM change of the description writes HTML whose links are
 * still anchors; an Outlook edit of the body reaches the CRM with its link targets. The same for To Do tasks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { bodyText } from '../../src/domain/body';
import { type TypeSummary } from '../../src/domain/status';
import { addDays } from '../../src/domain/timezone';
import { JOIN, TEAMS_BODY, TEAMS_TEXT } from '../helpers/bodies';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);

const hrefs = (h: string) => [...h.matchAll(/<a\b[^>]*\bhref="([^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"'));
/** The anchor whose text is `text`, and its href. */
const anchorFor = (h: string, text: string) => [...h.matchAll(/<a\b[^>]*\bhref="([^"]*)"[^>]*>([^<]*)<\/a>/g)].find((m) => m[2] === text)?.[1].replace(/&amp;/g, '&');

const ROOM = {
  displayName: 'Conference Room Adams',
  locationType: 'conferenceRoom',
  locationUri: 'adams@contoso.com',
  locationEmailAddress: 'adams@contoso.com',
  address: { street: '1 Microsoft Way', city: 'Redmond', state: 'WA', countryOrRegion: 'United States', postalCode: '98052' },
  coordinates: { latitude: 47.6405, longitude: -122.1293 },
};

type Body = { contentType: string; content: string };
type Ev = Record<string, unknown> & { id: string; subject: string; body: Body; location: Record<string, unknown> };
type Task = Record<string, unknown> & { id: string; title: string; body: Body };

describe('bodies and locations on the real stack', () => {
  let s: Stack;
  let anna: string;
  const meeting = () => (s.emulator.admin.listEvents(ANNA, 'VEvents') as unknown as Ev[]).find((e) => e.subject.startsWith('Pricing review'))!;
  const task = () => (s.emulator.admin.listTasks(ANNA, 'VTasks') as unknown as Task[]).find((t) => t.title.startsWith('Prepare the offer'))!;
  const crmEvent = async () =>
    (await sql<{ id: string; subject: string; description: string | null; location: string | null }>`
      select id::text, subject, description, location from crm.events where subject like 'Pricing review%' and deleted_at is null`.execute(s.db)).rows;
  const crmTask = async () =>
    (await sql<{ id: string; subject: string; description: string | null }>`
      select id::text, subject, description from crm.tasks where subject like 'Prepare the offer%' and deleted_at is null`.execute(s.db)).rows;
  const sync = async () => {
    const st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    return st!.lastCycle!.types;
  };
  const counts = (t: TypeSummary) =>
    [t.exchange.created, t.exchange.updated, t.exchange.deleted, t.crm.created, t.crm.updated, t.crm.deleted];
  const quiet = async (why: string) => {
    const q = await sync();
    assert.deepEqual(counts(q.event!), [0, 0, 0, 0, 0, 0], `events, ${why}: ${JSON.stringify(q.event)}`);
    assert.deepEqual(counts(q.task!), [0, 0, 0, 0, 0, 0], `tasks, ${why}: ${JSON.stringify(q.task)}`);
  };

  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    await sql`update crm.users set time_zone = 'Europe/Berlin' where id = ${anna}::uuid`.execute(s.db);
    s.emulator.admin.ensureMailbox(ANNA);
    await s.operator.enroll(ANNA);
    await sync();
  });
  after(async () => s?.teardown());

  it('an Outlook meeting with a Teams body and a located room reaches the CRM as text with its link targets', async () => {
    s.emulator.admin.createEvent(ANNA, 'VEvents', {
      subject: 'Pricing review',
      start: { dateTime: `${day(4)}T09:00:00`, timeZone: 'W. Europe Standard Time' },
      end: { dateTime: `${day(4)}T10:00:00`, timeZone: 'W. Europe Standard Time' },
      location: ROOM,
      attendees: [{ emailAddress: { address: 'lukas@fabrikam.de', name: 'Lukas Weber' }, type: 'required' }],
      body: { contentType: 'html', content: TEAMS_BODY },
    });
    const t = await sync();
    assert.equal(t.event!.crm.created, 1, JSON.stringify(t.event));
    const [row] = await crmEvent();
    assert.equal(row.description, TEAMS_TEXT);
    assert.ok(row.description!.includes(`Join the meeting now <${JOIN}>`));
    assert.equal(row.location, 'Conference Room Adams');
    await quiet('after the import');
  });

  it('a CRM edit of the subject leaves the Outlook body byte-identical and the location whole', async () => {
    const before = meeting();
    assert.equal(before.body.content, TEAMS_BODY);
    const [row] = await crmEvent();
    await sql`update crm.events set subject = 'Pricing review (final)' where id = ${row.id}::uuid`.execute(s.db);
    const t = await sync();
    assert.equal(t.event!.exchange.updated, 1, JSON.stringify(t.event));
    const now = meeting();
    assert.equal(now.subject, 'Pricing review (final)');
    assert.deepEqual(now.body, before.body, 'not one byte of the body changed');
    assert.deepEqual(now.location, before.location, 'address, coordinates and link of the room kept');
    assert.equal(now.location.locationUri, ROOM.locationUri);
    await quiet('after a subject edit');
  });

  it('a CRM edit of the description writes HTML in which the Teams join link is still an anchor with the same href', async () => {
    const before = meeting();
    const [row] = await crmEvent();
    const edited = row.description!.replace('Agenda: pricing for 2025', 'Agenda: pricing for 2026\nBring the numbers');
    await sql`update crm.events set description = ${edited} where id = ${row.id}::uuid`.execute(s.db);
    const t = await sync();
    assert.equal(t.event!.exchange.updated, 1, JSON.stringify(t.event));
    const now = meeting();
    assert.equal(now.body.contentType, 'html');
    assert.equal(anchorFor(now.body.content, 'Join the meeting now'), JOIN);
    assert.ok(hrefs(now.body.content).includes('https://aka.ms/JoinTeamsMeeting'));
    assert.equal(bodyText(now.body), edited, 'the body reads back as the CRM text');
    assert.deepEqual(now.location, before.location, 'a body edit does not touch the location');
    await quiet('after writing the CRM description (no echo of the write)');
  });

  it('an Outlook edit of the body reaches the CRM as text with the link targets kept', async () => {
    const ev = meeting();
    const content = ev.body.content.replace('Bring the numbers', 'Bring the numbers: <a href="https://contoso.sharepoint.com/sites/sales/Q3.xlsx?web=1&amp;e=x1">Q3 sheet</a>');
    assert.notEqual(content, ev.body.content);
    s.emulator.admin.updateEvent(ANNA, ev.id, { body: { contentType: 'html', content } });
    const t = await sync();
    assert.equal(t.event!.crm.updated, 1, JSON.stringify(t.event));
    const [row] = await crmEvent();
    assert.ok(row.description!.includes('Bring the numbers: Q3 sheet <https://contoso.sharepoint.com/sites/sales/Q3.xlsx?web=1&e=x1>'), row.description!);
    assert.ok(row.description!.includes(`Join the meeting now <${JOIN}>`), row.description!);
    assert.equal(meeting().body.content, content, 'the Outlook edit is not written back over');
    await quiet('after an Outlook body edit');
  });

  it('a CRM change of the location name writes the new name; the old room\'s address, coordinates and link go with it', async () => {
    const before = meeting();
    const [row] = await crmEvent();
    await sql`update crm.events set location = 'Café Central' where id = ${row.id}::uuid`.execute(s.db);
    const t = await sync();
    assert.equal(t.event!.exchange.updated, 1, JSON.stringify(t.event));
    const now = meeting();
    assert.equal(now.location.displayName, 'Café Central');
    assert.deepEqual(now.location.address, {});
    assert.deepEqual(now.location.coordinates, {});
    assert.equal(now.location.locationUri, undefined);
    assert.equal(now.body.content, before.body.content, 'the body is left as it is');
    await quiet('after a location rename');
  });

  it('To Do: a task body with a link survives a CRM subject edit byte for byte; a CRM body edit keeps the anchor', async () => {
    const html = '<html><body><div>Use the <a href="https://contoso.example/price-list?v=2&amp;lang=de">price list</a> from May.</div><div><br></div><div>Call Lukas first.</div></body></html>';
    s.emulator.admin.createTask(ANNA, 'VTasks', { title: 'Prepare the offer', status: 'notStarted', body: { contentType: 'html', content: html } });
    let t = await sync();
    assert.equal(t.task!.crm.created, 1, JSON.stringify(t.task));
    let [row] = await crmTask();
    assert.equal(row.description, 'Use the price list <https://contoso.example/price-list?v=2&lang=de> from May.\n\nCall Lukas first.');
    await quiet('after the task import');

    await sql`update crm.tasks set subject = 'Prepare the offer (v2)' where id = ${row.id}::uuid`.execute(s.db);
    t = await sync();
    assert.equal(t.task!.exchange.updated, 1, JSON.stringify(t.task));
    assert.equal(task().title, 'Prepare the offer (v2)');
    assert.deepEqual(task().body, { contentType: 'html', content: html }, 'not one byte of the body changed');

    [row] = await crmTask();
    const edited = row.description!.replace('Call Lukas first.', 'Call Lukas first, then https://contoso.example/crm.');
    await sql`update crm.tasks set description = ${edited} where id = ${row.id}::uuid`.execute(s.db);
    t = await sync();
    assert.equal(t.task!.exchange.updated, 1, JSON.stringify(t.task));
    const body = task().body;
    assert.equal(body.contentType, 'html');
    // Text cannot say where a link's text began: written back, it runs from the line's start or last separator.
    assert.equal(anchorFor(body.content, 'Use the price list'), 'https://contoso.example/price-list?v=2&lang=de');
    assert.equal(anchorFor(body.content, 'https://contoso.example/crm'), 'https://contoso.example/crm');
    assert.equal(bodyText(body), edited);
    await quiet('after writing the CRM task description');
  });
});
