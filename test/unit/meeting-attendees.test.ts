/**
 * A meeting's attendee handling in the records both sides compare (src/domain/meeting-attendees.ts): the record
 * read back from an Outlook copy written with its attendees in the body equals the CRM's record — attendance,
 * responses and awkward names included — so the three-way merge sees no change; what is sent to Graph.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bodyText, fromCrmEvent, type CrmEventPayload, type EventRecord, type GraphEvent } from '../../src/domain/event';
import { ATTENDEE_BLOCK_LABEL } from '../../src/domain/invitations';
import {
  LISTED_ATTENDEES_KEY,
  fromGraphMeeting,
  handlingOf,
  liftAttendeeBlock,
  listedInBody,
  listedOf,
  toGraphMeeting,
  withHandling,
  type MeetingRecord,
} from '../../src/domain/meeting-attendees';
import { changedProperties } from '../../src/domain/patch';

const crmPayload: CrmEventPayload = {
  subject: 'Quarterly review',
  description: 'Agenda:\n1. numbers\n2. plans',
  start_local: '2030-05-06T09:00:00',
  end_local: '2030-05-06T10:00:00',
  time_zone: 'Europe/Berlin',
  attendees: [
    { email: 'ann@example.com', name: 'Ann Lee', attendance: 'required', response: 'none' },
    { email: 'ben@example.org', name: 'Carter, Ben', attendance: 'optional', response: 'accepted' },
    { email: 'room1@example.com', name: null, attendance: 'resource', response: 'none' },
    { email: 'dora@example.net', name: 'Dora (optional)', attendance: 'required', response: 'none' },
    { email: 'eve@example.net', name: 'Eve (Sales)', attendance: 'required', response: 'tentativelyAccepted' },
  ],
};

function crmRecord(p: CrmEventPayload = crmPayload): EventRecord {
  const r = fromCrmEvent(p);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

/** What Graph gives back for an event created from `body`. */
function asRead(body: GraphEvent): Record<string, unknown> {
  return { ...body, attendees: body.attendees ?? [], originalStartTimeZone: 'W. Europe Standard Time', type: 'singleInstance' };
}
/** The body's text, as cxsync reads it. */
const text = (g: GraphEvent) => bodyText(g.body) ?? '';

function read(payload: Record<string, unknown>): MeetingRecord {
  const r = fromGraphMeeting(payload);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

describe('meeting attendees listed in the body', () => {
  it('a list-in-body meeting is written without attendees, its list the last line of the body, and read back equal to the CRM record', () => {
    const rec = withHandling(crmRecord(), 'list-in-body');
    assert.equal(listedInBody(rec), true);
    const g = toGraphMeeting(rec, true);
    assert.equal('attendees' in g, false, 'no attendees property at all');
    const lines = text(g).split('\n');
    assert.ok(lines[lines.length - 1].startsWith(ATTENDEE_BLOCK_LABEL), String(g.body?.content));
    assert.equal(lines[lines.length - 2], '', 'after a blank line');
    assert.ok(lines[lines.length - 1].includes('"Carter, Ben (optional; accepted)" <ben@example.org>'), lines[lines.length - 1]);
    assert.ok(lines[lines.length - 1].includes('(resource) <room1@example.com>'));
    // Read back with the block still in the body, and with it lifted out as the events adapter stages it.
    assert.deepEqual(read(asRead(g)), rec);
    const staged = liftAttendeeBlock({ ...asRead(g), bodyText: text(g) });
    assert.equal(staged.bodyText, 'Agenda:\n1. numbers\n2. plans');
    assert.ok(Array.isArray(staged[LISTED_ATTENDEES_KEY]));
    assert.deepEqual(read(staged), rec);
  });

  it('names that end like the attendance note are read back whole', () => {
    const rec = withHandling(crmRecord(), 'list-in-body');
    const listed = listedOf(rec.attendees);
    assert.deepEqual(listed.find((l) => l.email === 'dora@example.net'), { email: 'dora@example.net', name: 'Dora (optional) (required)' });
    assert.deepEqual(listed.find((l) => l.email === 'eve@example.net'), { email: 'eve@example.net', name: 'Eve (Sales) (tentative)' });
    const back = read(asRead(toGraphMeeting(rec, true)));
    assert.deepEqual(back.attendees.find((a) => a.email === 'dora@example.net'), { email: 'dora@example.net', name: 'Dora (optional)', type: 'required', response: 'none' });
  });

  it('an invited meeting is written with its attendees and no line; read back unmarked', () => {
    const rec = withHandling(crmRecord(), 'invite');
    assert.equal(listedInBody(rec), false);
    const g = toGraphMeeting(rec, false);
    assert.equal(g.attendees?.length, 5);
    assert.equal(text(g).includes(ATTENDEE_BLOCK_LABEL), false);
    assert.equal(handlingOf(read(asRead(g))), 'invite');
  });

  it('a meeting without attendees carries no mark and no line, whatever its handling', () => {
    const rec = withHandling(crmRecord({ ...crmPayload, attendees: [] }), 'list-in-body');
    assert.equal(listedInBody(rec), false);
    assert.equal(text(toGraphMeeting(rec, true)), 'Agenda:\n1. numbers\n2. plans');
    assert.equal(handlingOf(rec), undefined);
  });

  it('an attendee change of a list-in-body meeting changes the body only', () => {
    const before = withHandling(crmRecord(), 'list-in-body');
    const after = withHandling(crmRecord({ ...crmPayload, attendees: [...crmPayload.attendees!, { email: 'fred@example.com', name: 'Fred', attendance: 'required', response: 'none' }] }), 'list-in-body');
    const patch = changedProperties(toGraphMeeting(after, true), toGraphMeeting(before, true));
    assert.deepEqual(Object.keys(patch), ['body']);
    assert.ok(text(patch as GraphEvent).includes(', Fred <fred@example.com>, '), text(patch as GraphEvent));
  });

  it('people the user invited by hand in Outlook join the listed ones; the copy still shows the list', () => {
    const rec = withHandling(crmRecord(), 'list-in-body');
    const g = asRead(toGraphMeeting(rec, true));
    const back = read({ ...g, attendees: [{ emailAddress: { address: 'ann@example.com', name: 'Ann Lee' }, type: 'required', status: { response: 'accepted' } }, { emailAddress: { address: 'gus@example.com' }, type: 'optional', status: { response: 'none' } }] });
    assert.equal(listedInBody(back), true);
    assert.equal(handlingOf(back), 'list-in-body');
    assert.deepEqual(back.attendees.map((a) => [a.email, a.type, a.response]), [
      ['ann@example.com', 'required', 'accepted'],
      ['ben@example.org', 'optional', 'accepted'],
      ['dora@example.net', 'required', 'none'],
      ['eve@example.net', 'required', 'tentativelyAccepted'],
      ['gus@example.com', 'optional', 'none'],
      ['room1@example.com', 'resource', 'none'],
    ]);
  });

  it('an entry the user mistyped in the line is left out instead of making the meeting unreadable', () => {
    const back = read({ subject: 'x', start: { dateTime: '2030-05-06T07:00:00', timeZone: 'UTC' }, end: { dateTime: '2030-05-06T08:00:00', timeZone: 'UTC' }, bodyText: `Notes\n\n${ATTENDEE_BLOCK_LABEL} ann@example.com, bob@localhost` });
    assert.deepEqual(back.attendees.map((a) => a.email), ['ann@example.com']);
    assert.equal(back.body, 'Notes');
  });

  it('a body over the limit cannot cut the list off: the staged text holds the user text only', () => {
    const long = 'x'.repeat(40_000);
    const staged = liftAttendeeBlock({ bodyText: `${long}\n\n${ATTENDEE_BLOCK_LABEL} ann@example.com` });
    assert.equal(staged.bodyText, long);
    assert.deepEqual(staged[LISTED_ATTENDEES_KEY], [{ email: 'ann@example.com' }]);
  });
});
