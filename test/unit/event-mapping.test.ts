/**
 * Event field mapping (src/domain/event.ts): Graph event ↔ EventRecord ↔ CRM event row. Fingerprints are taken
 * on the record, so a record written to either side must read back identical — including its time zone, which
 * Exchange reports under its Windows name, and times Graph answers in UTC.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  exceptionsFromInstances,
  fromCrmEvent,
  fromGraphEvent,
  graphZoneName,
  htmlToText,
  planInstanceWrites,
  syncWindow,
  toCrmEvent,
  toGraphEvent,
  validateEvent,
  type EventRecord,
  type GraphEvent,
  type GraphInstance,
} from '../../src/domain/event';
import { textToHtml } from '../../src/domain/body';
import { fingerprint } from '../../src/domain/fingerprint';
import type { Result } from '../../src/domain/result';
import { convertWallTime, wallToInstant } from '../../src/domain/timezone';

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.value;
}

/** What Graph answers for an event cxsync wrote, read back with `Prefer: outlook.timezone="UTC"`. */
function graphEcho(written: GraphEvent, extra: Partial<GraphEvent> = {}): GraphEvent {
  const zone = written.start!.timeZone!;
  const utc = (dt: { dateTime?: string | null }) =>
    written.isAllDay ? `${dt.dateTime}.0000000` : `${convertWallTime(dt.dateTime!, zone, 'UTC')}.0000000`;
  return {
    ...written,
    id: 'AAMkAD1',
    changeKey: 'ck1',
    type: written.recurrence ? 'seriesMaster' : 'singleInstance',
    start: { dateTime: utc(written.start!), timeZone: 'UTC' },
    end: { dateTime: utc(written.end!), timeZone: 'UTC' },
    originalStartTimeZone: zone,
    originalEndTimeZone: zone,
    isOrganizer: true,
    organizer: { emailAddress: { address: 'anna@contoso.com', name: 'Anna Schmidt' } },
    attendees: (written.attendees ?? []).map((a) => ({ ...a, status: { response: 'none', time: '0001-01-01T00:00:00Z' } })),
    // Exchange keeps event bodies as HTML and returns the HTML it was given.
    body: { contentType: 'html', content: written.body?.content ?? '' },
    lastModifiedDateTime: '2025-03-01T10:00:00Z',
    ...extra,
  };
}

const MEETING: EventRecord = value(
  validateEvent({
    subject: 'Quarterly review',
    body: 'Agenda:\n1. Numbers\n2. Plans',
    location: 'Room 4.12',
    start: '2025-03-31T09:00:00',
    end: '2025-03-31T10:30:00',
    timeZone: 'Europe/Berlin',
    sensitivity: 'normal',
    attendees: [
      { email: 'Lukas.Weber@fabrikam.de', name: 'Lukas Weber', type: 'required', response: 'none' },
      { email: 'ben@contoso.com', name: 'Ben Carter', type: 'optional', response: 'none' },
    ],
  }),
);

describe('validateEvent', () => {
  it('normalises: zone canonical, attendees lower-cased and sorted, wall times in full', () => {
    assert.equal(MEETING.timeZone, 'Europe/Berlin');
    assert.deepEqual(MEETING.attendees.map((a) => a.email), ['ben@contoso.com', 'lukas.weber@fabrikam.de']);
    const r = value(validateEvent({ subject: ' x ', start: '2025-03-31T09:00', end: '2025-03-31 10:00', timeZone: 'W. Europe Standard Time' }));
    assert.deepEqual(r, { subject: 'x', allDay: false, start: '2025-03-31T09:00:00', end: '2025-03-31T10:00:00', timeZone: 'Europe/Berlin', sensitivity: 'normal', attendees: [] });
  });

  it('rejects with the field and the reason', () => {
    const bad = (d: Parameters<typeof validateEvent>[0]) => {
      const r = validateEvent({ subject: 's', start: '2025-01-01T09:00', end: '2025-01-01T10:00', timeZone: 'UTC', ...d });
      assert.equal(r.ok, false);
      return (r as { error: string }).error;
    };
    assert.match(bad({ subject: 'x'.repeat(256) }), /field subject is 256 characters long; the limit is 255/);
    assert.match(bad({ timeZone: 'Mars/Base' }), /time zone "Mars\/Base" is not a known/);
    assert.match(bad({ start: 'soon' }), /start "soon" is not a date and time/);
    assert.match(bad({ end: '2025-01-01T08:00' }), /ends .* before it starts/);
    assert.match(bad({ attendees: [{ email: 'nope' }] }), /attendee "nope" is not a valid email address/);
    assert.match(bad({ recurrence: { pattern: { type: 'weekly', interval: 1 }, range: { type: 'noEnd', startDate: '2025-01-01' } } }), /needs at least one day of the week/);
  });

  it('truncates a long body instead of skipping the event', () => {
    const r = value(validateEvent({ subject: 's', body: 'y'.repeat(40_000), start: '2025-01-01T09:00', end: '2025-01-01T10:00', timeZone: 'UTC' }));
    assert.equal(r.body!.length, 32_000);
  });

  it('all-day events run midnight to midnight, end exclusive', () => {
    const r = value(validateEvent({ subject: 'Trade fair', allDay: true, start: '2025-06-02T00:00', end: '2025-06-02T00:00', timeZone: 'Europe/Berlin' }));
    assert.equal(r.start, '2025-06-02T00:00:00');
    assert.equal(r.end, '2025-06-03T00:00:00');
  });
});

describe('Graph events', () => {
  it('writes the zone under its Windows name and the wall time unchanged', () => {
    const g = toGraphEvent(MEETING);
    assert.deepEqual(g.start, { dateTime: '2025-03-31T09:00:00', timeZone: 'W. Europe Standard Time' });
    assert.deepEqual(g.end, { dateTime: '2025-03-31T10:30:00', timeZone: 'W. Europe Standard Time' });
    assert.deepEqual(g.body, { contentType: 'html', content: textToHtml(MEETING.body) });
    assert.equal(g.recurrence, null);
    assert.deepEqual(g.attendees![1], { emailAddress: { address: 'lukas.weber@fabrikam.de', name: 'Lukas Weber' }, type: 'required' });
  });

  it('reads its own write back as the same record (same fingerprint), though Graph answered in UTC', () => {
    const back = value(fromGraphEvent(graphEcho(toGraphEvent(MEETING))));
    assert.deepEqual(back, MEETING);
    assert.equal(fingerprint(back), fingerprint(MEETING));
  });

  it('keeps 09:00 Berlin at 09:00 Berlin on both sides of the DST change, whatever zone Graph answers in', () => {
    for (const day of ['2025-03-28', '2025-03-31', '2025-10-24', '2025-10-27']) {
      const rec = value(validateEvent({ subject: 'Stand-up', start: `${day}T09:00`, end: `${day}T09:15`, timeZone: 'Europe/Berlin' }));
      const written = toGraphEvent(rec);
      for (const answerZone of ['UTC', 'America/New_York', 'Asia/Tokyo']) {
        const inZone = (w: string) => convertWallTime(w, 'Europe/Berlin', answerZone);
        const echo = graphEcho(written, {
          start: { dateTime: inZone(rec.start), timeZone: answerZone },
          end: { dateTime: inZone(rec.end), timeZone: answerZone },
        });
        const back = value(fromGraphEvent(echo));
        assert.equal(back.start, `${day}T09:00:00`, `${day} answered in ${answerZone}`);
        assert.equal(back.timeZone, 'Europe/Berlin');
      }
    }
  });

  it('an Outlook event in New York keeps its own zone even for a user in Berlin', () => {
    const g: GraphEvent = {
      subject: 'Call with NY office',
      start: { dateTime: '2025-03-10T13:00:00.0000000', timeZone: 'UTC' },
      end: { dateTime: '2025-03-10T13:30:00.0000000', timeZone: 'UTC' },
      originalStartTimeZone: 'Eastern Standard Time',
      isOrganizer: true,
    };
    const r = value(fromGraphEvent(g, { fallbackZone: 'Europe/Berlin' }));
    assert.equal(r.start, '2025-03-10T09:00:00');
    assert.equal(r.timeZone, 'America/New_York');
  });

  it('falls back to the user zone when Graph says nothing about the event zone', () => {
    const g: GraphEvent = { subject: 'x', start: { dateTime: '2025-07-01T07:00:00', timeZone: 'UTC' }, end: { dateTime: '2025-07-01T08:00:00', timeZone: 'UTC' } };
    assert.equal(value(fromGraphEvent(g, { fallbackZone: 'Europe/Berlin' })).start, '2025-07-01T09:00:00');
    assert.equal(value(fromGraphEvent(g)).start, '2025-07-01T07:00:00');
  });

  it('reads HTML bodies as text, attendees with their response, organizer only when someone else organises', () => {
    const g: GraphEvent = {
      subject: 'Invite',
      body: { contentType: 'html', content: '<html><body><p>Hello&nbsp;<b>team</b></p><p>Line&amp;two<br>three</p></body></html>' },
      start: { dateTime: '2025-05-05T08:00:00', timeZone: 'UTC' },
      end: { dateTime: '2025-05-05T09:00:00', timeZone: 'UTC' },
      originalStartTimeZone: 'UTC',
      isOrganizer: false,
      organizer: { emailAddress: { address: 'Boss@Fabrikam.de', name: 'The Boss' } },
      attendees: [{ emailAddress: { address: 'anna@contoso.com', name: 'Anna' }, type: 'required', status: { response: 'accepted' } }],
    };
    const r = value(fromGraphEvent(g));
    assert.equal(r.body, 'Hello team\nLine&two\nthree');
    assert.deepEqual(r.organizer, { email: 'boss@fabrikam.de', name: 'The Boss' });
    assert.deepEqual(r.attendees, [{ email: 'anna@contoso.com', name: 'Anna', type: 'required', response: 'accepted' }]);
    assert.equal(htmlToText('a &lt;b&gt; &#233; &#x41;'), 'a <b> é A');
  });

  it('all-day events are floating dates, not converted', () => {
    const g: GraphEvent = {
      subject: 'Holiday',
      isAllDay: true,
      start: { dateTime: '2025-10-03T00:00:00.0000000', timeZone: 'UTC' },
      end: { dateTime: '2025-10-04T00:00:00.0000000', timeZone: 'UTC' },
      originalStartTimeZone: 'W. Europe Standard Time',
    };
    const r = value(fromGraphEvent(g));
    assert.equal(r.start, '2025-10-03T00:00:00');
    assert.equal(r.end, '2025-10-04T00:00:00');
    // Graph moved it off midnight (converted from Berlin to UTC): brought back to the date in the event zone.
    const moved = value(fromGraphEvent({ ...g, start: { dateTime: '2025-10-02T22:00:00', timeZone: 'UTC' }, end: { dateTime: '2025-10-03T22:00:00', timeZone: 'UTC' } }));
    assert.equal(moved.start, '2025-10-03T00:00:00');
  });

  it('graphZoneName prefers the Windows name', () => {
    assert.equal(graphZoneName('America/New_York'), 'Eastern Standard Time');
    assert.equal(graphZoneName('Antarctica/Troll'), 'Antarctica/Troll');
  });
});

describe('CRM event rows', () => {
  it('round-trips a record through CRM columns', () => {
    const w = toCrmEvent(MEETING);
    assert.equal(w.fields.start_local, '2025-03-31T09:00:00');
    assert.equal(w.fields.time_zone, 'Europe/Berlin');
    const back = value(fromCrmEvent({ ...w.fields, attendees: w.attendees, exceptions: w.exceptions }));
    assert.deepEqual(back, MEETING);
  });

  it('a CRM zone that is an alias of the canonical one is the same record', () => {
    const w = toCrmEvent(MEETING);
    const amsterdam = value(fromCrmEvent({ ...w.fields, time_zone: 'Europe/Amsterdam', attendees: w.attendees }));
    assert.equal(fingerprint(amsterdam), fingerprint(MEETING));
  });
});

// ---- series ---------------------------------------------------------------------------------------------

const WEEKLY: EventRecord = value(
  validateEvent({
    subject: 'Team sync',
    location: 'Room 1',
    start: '2025-03-03T09:00:00',
    end: '2025-03-03T09:30:00',
    timeZone: 'Europe/Berlin',
    recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: '2025-03-03', numberOfOccurrences: 10 } },
    exceptions: [
      { originalStart: '2025-03-17T09:00:00', start: '2025-03-18T14:00:00', end: '2025-03-18T14:30:00' },
      { originalStart: '2025-03-31T09:00:00', cancelled: true },
    ],
  }),
);
const WINDOW = { start: '2025-02-24', end: '2025-06-02' };

/** Instances as Graph lists them for a series with the given exceptions (UTC answers). */
function instancesOf(rec: EventRecord, opts: { drop?: string[]; move?: Record<string, [string, string]>; rename?: Record<string, string> } = {}): GraphInstance[] {
  const out: GraphInstance[] = [];
  const day = 7 * 86_400_000;
  for (let i = 0; i < 10; i++) {
    const date = new Date(Date.parse('2025-03-03T00:00:00Z') + i * day).toISOString().slice(0, 10);
    if (opts.drop?.includes(date)) continue;
    const original = `${date}T09:00:00`;
    const [s, e] = opts.move?.[date] ?? [original, `${date}T09:30:00`];
    const utc = (w: string) => new Date(wallToInstant(w, 'Europe/Berlin')).toISOString().slice(0, 19);
    out.push({
      id: `occ-${date}`,
      type: opts.move?.[date] || opts.rename?.[date] ? 'exception' : 'occurrence',
      originalStart: new Date(wallToInstant(original, 'Europe/Berlin')).toISOString(),
      start: { dateTime: utc(s), timeZone: 'UTC' },
      end: { dateTime: utc(e), timeZone: 'UTC' },
      subject: opts.rename?.[date] ?? rec.subject,
      location: { displayName: rec.location },
    });
  }
  return out;
}

describe('recurring series', () => {
  it('keeps the pattern canonical and the range starting on the first occurrence', () => {
    assert.deepEqual(WEEKLY.recurrence, {
      pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] },
      range: { type: 'numbered', startDate: '2025-03-03', numberOfOccurrences: 10 },
    });
    assert.deepEqual(WEEKLY.exceptions, [
      { originalStart: '2025-03-17T09:00:00', start: '2025-03-18T14:00:00', end: '2025-03-18T14:30:00' },
      { originalStart: '2025-03-31T09:00:00', cancelled: true },
    ]);
  });

  it('writes the recurrence with the zone Graph understands', () => {
    const g = toGraphEvent(WEEKLY);
    assert.deepEqual(g.recurrence, {
      pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'], firstDayOfWeek: 'sunday' },
      range: { type: 'numbered', startDate: '2025-03-03', numberOfOccurrences: 10, recurrenceTimeZone: 'W. Europe Standard Time' },
    });
  });

  it('derives moved and cancelled occurrences from the instances Exchange lists — across the DST change', () => {
    const inst = instancesOf(WEEKLY, { drop: ['2025-03-31'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] } });
    assert.deepEqual(exceptionsFromInstances(WEEKLY, inst, WINDOW), WEEKLY.exceptions);
    // Occurrences after 30 March are at 07:00 UTC, before at 08:00 UTC: both are "09:00 Berlin", not moved.
    assert.equal(exceptionsFromInstances(WEEKLY, instancesOf(WEEKLY), WINDOW).length, 0);
  });

  it('a series read from Graph with its exceptions is the record the CRM has', () => {
    const master = graphEcho(toGraphEvent(WEEKLY), { cxsyncExceptions: exceptionsFromInstances(WEEKLY, instancesOf(WEEKLY, { drop: ['2025-03-31'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] } }), WINDOW) });
    const fromGraph = value(fromGraphEvent(master));
    const w = toCrmEvent(WEEKLY);
    const fromCrm = value(fromCrmEvent({ ...w.fields, attendees: w.attendees, exceptions: w.exceptions }));
    assert.deepEqual(fromGraph, WEEKLY);
    assert.deepEqual(fromCrm, WEEKLY);
    assert.equal(fingerprint(fromGraph), fingerprint(fromCrm));
  });

  it('CRM exception rows: a cancelled occurrence is a Canceled row, a moved one carries its times; both inherit subject and location', () => {
    const w = toCrmEvent(WEEKLY);
    assert.deepEqual(w.exceptions, [
      { original_start: '2025-03-17T09:00:00', start_local: '2025-03-18T14:00:00', end_local: '2025-03-18T14:30:00', subject: null, location: null, status: 'Open' },
      { original_start: '2025-03-31T09:00:00', start_local: '2025-03-31T09:00:00', end_local: '2025-03-31T09:30:00', subject: null, location: null, status: 'Canceled' },
    ]);
  });

  it('an exception row identical to the pattern is no exception', () => {
    const w = toCrmEvent(WEEKLY);
    const rows = [...w.exceptions, { original_start: '2025-04-07T09:00:00', start_local: '2025-04-07T09:00:00', end_local: '2025-04-07T09:30:00', subject: 'Team sync', location: 'Room 1', status: 'Open' }];
    assert.deepEqual(value(fromCrmEvent({ ...w.fields, exceptions: rows })).exceptions, WEEKLY.exceptions);
  });

  it('a series renamed in the CRM renames its moved occurrences; an occurrence with its own subject keeps it', () => {
    // Imported from Outlook: week 3 moved (the series' subject and room), week 7 with its own subject and room.
    const inst = instancesOf(WEEKLY, {
      drop: ['2025-03-31'],
      move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] },
      rename: { '2025-04-14': 'Team sync (with CEO)' },
    });
    const imported = value(fromGraphEvent(graphEcho(toGraphEvent(WEEKLY), { cxsyncExceptions: exceptionsFromInstances(WEEKLY, inst, WINDOW) })));
    const own = { originalStart: '2025-04-14T09:00:00', start: '2025-04-14T09:00:00', end: '2025-04-14T09:30:00', subject: 'Team sync (with CEO)', location: 'Board room' };
    const rows = toCrmEvent({ ...imported, exceptions: [...imported.exceptions!.filter((x) => x.originalStart !== own.originalStart), own] }).exceptions;
    assert.deepEqual(rows.map((r) => [r.original_start, r.subject, r.location]), [
      ['2025-03-17T09:00:00', null, null],
      ['2025-03-31T09:00:00', null, null],
      ['2025-04-14T09:00:00', 'Team sync (with CEO)', 'Board room'],
    ], 'only what differs from the series is stored');

    // The CRM renames the series and moves it to another room; the rows stay as they are. '' is how an inheriting
    // subject comes back from crm.events (not null), and must inherit just the same.
    const stored = rows.map((r) => ({ ...r, subject: r.subject ?? '' }));
    const renamed = toCrmEvent({ ...WEEKLY, subject: 'Team sync v2', location: 'Room 2' }).fields;
    const fromCrm = value(fromCrmEvent({ ...renamed, exceptions: stored }));
    assert.deepEqual(fromCrm.exceptions, [
      { originalStart: '2025-03-17T09:00:00', start: '2025-03-18T14:00:00', end: '2025-03-18T14:30:00' },
      { originalStart: '2025-03-31T09:00:00', cancelled: true },
      own,
    ]);

    // After the master's update, Exchange's plain occurrences follow it, but the moved one still shows the old
    // subject and room: it is patched to the new ones; the CEO week is left alone.
    const exchangeNow = instancesOf(fromCrm, {
      drop: ['2025-03-31'],
      move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] },
      rename: { '2025-04-14': 'Team sync (with CEO)' },
    }).map((i) =>
      i.id === 'occ-2025-03-17' ? { ...i, subject: 'Team sync', location: { displayName: 'Room 1' } } : i.id === 'occ-2025-04-14' ? { ...i, location: { displayName: 'Board room' } } : i,
    );
    const writes = planInstanceWrites(fromCrm, exchangeNow, WINDOW);
    assert.deepEqual(writes.map((w) => [w.kind, w.originalStart, (w as { body?: GraphEvent }).body?.subject, (w as { body?: GraphEvent }).body?.location?.displayName]), [
      ['patch', '2025-03-17T09:00:00', 'Team sync v2', 'Room 2'],
    ]);
  });

  it('a CRM exception row that copied the series subject (written before inheritance) is an own subject once the series is renamed', () => {
    // Why rows must not hold copies: the reader cannot tell a copy from an occurrence-specific subject.
    const w = toCrmEvent(WEEKLY);
    const copied = w.exceptions.map((r) => ({ ...r, subject: WEEKLY.subject, location: WEEKLY.location ?? null }));
    assert.deepEqual(value(fromCrmEvent({ ...w.fields, exceptions: copied })).exceptions, WEEKLY.exceptions, 'no difference while the names agree');
    const renamed = value(fromCrmEvent({ ...w.fields, subject: 'Team sync v2', exceptions: copied }));
    assert.equal(renamed.exceptions?.[0].subject, 'Team sync');
  });

  it('an occurrence with only its own subject is an exception', () => {
    const inst = instancesOf(WEEKLY, { rename: { '2025-04-14': 'Team sync (with CEO)' }, drop: ['2025-03-31'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] } });
    const ex = exceptionsFromInstances(WEEKLY, inst, WINDOW);
    assert.deepEqual(ex[2], { originalStart: '2025-04-14T09:00:00', start: '2025-04-14T09:00:00', end: '2025-04-14T09:30:00', subject: 'Team sync (with CEO)' });
  });

  it('plans the instance writes that make Exchange match the record, and nothing when it already does', () => {
    const plain = instancesOf(WEEKLY);
    const writes = planInstanceWrites(WEEKLY, plain, WINDOW);
    assert.deepEqual(writes.map((w) => [w.kind, w.originalStart]), [['patch', '2025-03-17T09:00:00'], ['delete', '2025-03-31T09:00:00']]);
    const patch = writes[0] as { body: GraphEvent };
    assert.deepEqual(patch.body.start, { dateTime: '2025-03-18T14:00:00', timeZone: 'W. Europe Standard Time' });
    const done = instancesOf(WEEKLY, { drop: ['2025-03-31'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] } });
    assert.deepEqual(planInstanceWrites(WEEKLY, done, WINDOW), []);
  });

  it('moves an occurrence without sending its subject or location when they already are the ones it should have (location details kept)', () => {
    const plain = instancesOf(WEEKLY);
    const patch = planInstanceWrites(WEEKLY, plain, WINDOW)[0] as { body: GraphEvent };
    assert.deepEqual(Object.keys(patch.body).sort(), ['end', 'start'], 'a location sent is replaced whole (address, coordinates, link)');
    const elsewhere = plain.map((i) => (i.id === 'occ-2025-03-17' ? { ...i, location: { displayName: 'Room 9' } } : i));
    const back = planInstanceWrites(WEEKLY, elsewhere, WINDOW)[0] as { body: GraphEvent };
    assert.deepEqual(back.body.location, { displayName: 'Room 1' }, 'a different name is written');
    assert.equal(back.body.subject, undefined);
  });

  it('puts an occurrence Exchange moved back on its slot when the record says so; a cancelled one cannot come back', () => {
    const moved = instancesOf(WEEKLY, { drop: ['2025-03-31', '2025-04-21'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'], '2025-04-07': ['2025-04-07T11:00:00', '2025-04-07T11:30:00'] } });
    const writes = planInstanceWrites(WEEKLY, moved, WINDOW);
    assert.deepEqual(writes.map((w) => [w.kind, w.originalStart]), [['patch', '2025-04-07T09:00:00'], ['cannot-restore', '2025-04-21T09:00:00']]);
    assert.deepEqual((writes[0] as { body: GraphEvent }).body.start, { dateTime: '2025-04-07T09:00:00', timeZone: 'W. Europe Standard Time' });
  });

  it('only exceptions whose original date is in the window are considered', () => {
    const narrow = { start: '2025-03-24', end: '2025-04-07' };
    const inst = instancesOf(WEEKLY, { drop: ['2025-03-31'], move: { '2025-03-17': ['2025-03-18T14:00:00', '2025-03-18T14:30:00'] } });
    assert.deepEqual(exceptionsFromInstances(WEEKLY, inst, narrow), [{ originalStart: '2025-03-31T09:00:00', cancelled: true }]);
  });
});

describe('sync window', () => {
  it('covers the policy days, widened to whole weeks on a fixed grid (moves once a week)', () => {
    const w = syncWindow(Date.parse('2025-05-14T12:00:00Z'), 30, 365);
    assert.ok(w.start <= '2025-04-14' && w.end > '2026-05-14');
    assert.equal(new Date(`${w.start}T00:00:00Z`).getUTCDay(), 1, 'starts on a Monday');
    // Every day of the same grid week gives the same window.
    const days = ['2025-05-12', '2025-05-13', '2025-05-15', '2025-05-18'].map((d) => syncWindow(Date.parse(`${d}T08:00:00Z`), 30, 365));
    for (const d of days) assert.deepEqual(d, w);
    assert.notDeepEqual(syncWindow(Date.parse('2025-05-19T08:00:00Z'), 30, 365), w);
  });
});
