/**
 * Whether cxsync writes a meeting's attendees to Outlook (src/domain/invitations.ts, policy event.invitations):
 * every branch of the decision, its stickiness, the edges at equal instants, and the attendee block in the
 * body — rendered, recognised, stripped, idempotent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTENDEE_BLOCK_LABEL,
  decideInvitations,
  handlingShownBy,
  hasAttendeeBlock,
  renderAttendeeLine,
  splitAttendeeBlock,
  withAttendeeBlock,
  type InvitationFacts,
} from '../../src/domain/invitations';
import { BUILTIN_POLICY, parsePolicy } from '../../src/domain/policy';

const ENROLLED = '2025-03-10T12:00:00Z';
const NOW = '2025-03-20T09:00:00Z';
/** A meeting created after enrolment that starts tomorrow: the one case "new-future" invites. */
const fresh: InvitationFacts = { policy: 'new-future', crmCreatedAt: '2025-03-15T08:00:00Z', start: '2025-03-21T09:00:00Z', enrolledAt: ENROLLED, now: NOW };
const handling = (f: Partial<InvitationFacts>) => decideInvitations({ ...fresh, ...f }).handling;

describe('invitations: the decision', () => {
  it('new-future: created after enrolment and starting in the future invites', () => {
    assert.deepEqual(decideInvitations(fresh), { handling: 'invite', reason: 'event.invitations "new-future": created after enrolment, starts in the future' });
  });

  it('new-future: created before enrolment lists the attendees in the body, even when it starts in the future', () => {
    const d = decideInvitations({ ...fresh, crmCreatedAt: '2025-01-02T10:00:00Z' });
    assert.equal(d.handling, 'list-in-body');
    assert.match(d.reason, /created before the mailbox was enrolled/);
  });

  it('new-future: created exactly at enrolment counts as before it', () => {
    assert.equal(handling({ crmCreatedAt: ENROLLED }), 'list-in-body');
    assert.equal(handling({ crmCreatedAt: '2025-03-10T12:00:00.001Z' }), 'invite');
  });

  it('new-future: a meeting in the past, or starting exactly now, lists the attendees', () => {
    const past = decideInvitations({ ...fresh, start: '2025-03-19T09:00:00Z' });
    assert.equal(past.handling, 'list-in-body');
    assert.match(past.reason, /already started/);
    assert.equal(handling({ start: NOW }), 'list-in-body');
    assert.equal(handling({ start: '2025-03-20T09:00:00.001Z' }), 'invite');
  });

  it('new-future: instants are compared as instants, whatever offset or type they come in', () => {
    // 10:00+01:00 is 09:00Z: exactly now.
    assert.equal(handling({ start: '2025-03-20T10:00:00+01:00' }), 'list-in-body');
    assert.equal(handling({ start: '2025-03-20T10:00:01+01:00' }), 'invite');
    assert.equal(handling({ crmCreatedAt: new Date(ENROLLED), start: new Date('2025-03-21T09:00:00Z'), enrolledAt: new Date(ENROLLED), now: new Date(NOW) }), 'list-in-body');
    assert.equal(handling({ crmCreatedAt: new Date('2025-03-11T00:00:00Z'), enrolledAt: new Date(ENROLLED), now: new Date(NOW) }), 'invite');
  });

  it('new-future: a time that names no instant (no offset, unparsable, invalid Date) mails nobody', () => {
    for (const bad of ['2025-03-21T09:00:00', 'tomorrow', '', new Date(Number.NaN)]) {
      for (const key of ['crmCreatedAt', 'start', 'enrolledAt', 'now'] as const) {
        const d = decideInvitations({ ...fresh, [key]: bad });
        assert.equal(d.handling, 'list-in-body', `${key} = ${String(bad)}`);
        assert.match(d.reason, /unknown/);
      }
    }
  });

  it('"never" lists the attendees of every meeting, "always" invites for every meeting, past or pre-enrolment alike', () => {
    const old = { crmCreatedAt: '2024-01-01T00:00:00Z', start: '2024-02-01T00:00:00Z' };
    assert.equal(handling({ policy: 'never' }), 'list-in-body');
    assert.equal(handling({ policy: 'never', ...old }), 'list-in-body');
    assert.equal(handling({ policy: 'always' }), 'invite');
    assert.equal(handling({ policy: 'always', ...old }), 'invite');
    assert.match(decideInvitations({ ...fresh, policy: 'always' }).reason, /"always"/);
    assert.match(decideInvitations({ ...fresh, policy: 'never' }).reason, /"never"/);
  });

  it('a previous decision sticks, whatever the policy and the times say now', () => {
    for (const policy of ['new-future', 'never', 'always'] as const) {
      const inv = decideInvitations({ ...fresh, policy, previous: 'invite', start: '2020-01-01T00:00:00Z' });
      assert.deepEqual(inv, { handling: 'invite', reason: 'kept: cxsync wrote this meeting with its attendees before' }, policy);
      const listed = decideInvitations({ ...fresh, policy, previous: 'list-in-body' });
      assert.equal(listed.handling, 'list-in-body', policy);
      assert.match(listed.reason, /^kept: /);
    }
  });

  it('no previous decision (null or absent) decides from the policy', () => {
    assert.equal(handling({ previous: null }), 'invite');
    assert.equal(handling({ previous: undefined, policy: 'never' }), 'list-in-body');
  });

  it('the handling an Outlook copy shows: the block → list-in-body (even with attendees the user added), attendees → invite, neither → undecided', () => {
    assert.equal(handlingShownBy({ attendeeCount: 2, body: 'x' }), 'invite');
    assert.equal(handlingShownBy({ attendeeCount: 0, body: `Agenda\n\n${ATTENDEE_BLOCK_LABEL} a@x.com` }), 'list-in-body');
    assert.equal(handlingShownBy({ attendeeCount: 1, body: `${ATTENDEE_BLOCK_LABEL} a@x.com` }), 'list-in-body');
    assert.equal(handlingShownBy({ attendeeCount: 0, body: 'Agenda' }), undefined);
    assert.equal(handlingShownBy({ attendeeCount: 0, body: null }), undefined);
  });
});

describe('invitations: the attendee block in the body', () => {
  const ann = { email: 'ann@example.com', name: 'Ann Lee' };
  const bob = { email: 'bob@example.org' };

  it('renders one line: address alone without a name, "Name <address>" with one', () => {
    assert.equal(renderAttendeeLine([ann, bob]), 'Attendees (not invited by cxsync): Ann Lee <ann@example.com>, bob@example.org');
    assert.equal(renderAttendeeLine([{ email: 'c@x.com', name: 'C@X.com' }]), 'Attendees (not invited by cxsync): c@x.com');
    assert.equal(renderAttendeeLine([]), undefined);
    assert.equal(renderAttendeeLine([{ email: '  ' }]), undefined);
  });

  it('quotes names a reader would split, and collapses line breaks inside names', () => {
    const odd = [{ email: 'd@x.com', name: 'Doe, Jane' }, { email: 'e@x.com', name: 'E "Ed" <boss>' }, { email: 'f@x.com', name: 'F\nG' }];
    const line = renderAttendeeLine(odd)!;
    assert.equal(line, 'Attendees (not invited by cxsync): "Doe, Jane" <d@x.com>, "E \\"Ed\\" <boss>" <e@x.com>, F G <f@x.com>');
    assert.deepEqual(splitAttendeeBlock(line).attendees, [odd[0], odd[1], { email: 'f@x.com', name: 'F G' }]);
  });

  it('is appended after a blank line; an empty body is just the block', () => {
    assert.equal(withAttendeeBlock('Agenda:\n1. intro', [ann]), 'Agenda:\n1. intro\n\nAttendees (not invited by cxsync): Ann Lee <ann@example.com>');
    assert.equal(withAttendeeBlock(undefined, [bob]), 'Attendees (not invited by cxsync): bob@example.org');
    assert.equal(withAttendeeBlock('', [bob]), 'Attendees (not invited by cxsync): bob@example.org');
    assert.equal(withAttendeeBlock('Agenda', []), 'Agenda');
    assert.equal(withAttendeeBlock(null, []), undefined);
  });

  it('round trip: the block is stripped on the way back, the user text and the attendees come back as written', () => {
    const body = 'Agenda:\n1. intro\n\n2. budget';
    const written = withAttendeeBlock(body, [ann, bob])!;
    assert.deepEqual(splitAttendeeBlock(written), { body, attendees: [ann, bob] });
    assert.deepEqual(splitAttendeeBlock(withAttendeeBlock(undefined, [bob])), { body: undefined, attendees: [bob] });
  });

  it('survives what Outlook does to a text body: CRLF line breaks, trailing blanks, extra blank lines', () => {
    const written = withAttendeeBlock('Agenda', [ann])!;
    const back = `${written.replace(/\n/g, '\r\n')}  \r\n\r\n\r\n`.replace('Agenda', 'Agenda \u00a0');
    assert.deepEqual(splitAttendeeBlock(back), { body: 'Agenda', attendees: [ann] });
    assert.equal(withAttendeeBlock(back, [ann]), written);
  });

  it('is idempotent: writing a body read back from Outlook again changes nothing; a new list replaces the old one', () => {
    const once = withAttendeeBlock('Notes', [ann])!;
    assert.equal(withAttendeeBlock(once, [ann]), once);
    assert.equal(withAttendeeBlock(withAttendeeBlock(once, [ann]), [ann]), once);
    assert.equal(withAttendeeBlock(once, [bob]), 'Notes\n\nAttendees (not invited by cxsync): bob@example.org');
    assert.equal(withAttendeeBlock(once, []), 'Notes');
  });

  it('a block the user moved into the middle in Outlook is still recognised and removed, every copy of it', () => {
    const edited = `Intro\n\n${ATTENDEE_BLOCK_LABEL} old@x.com\n\nAdded below by the user\n  ${ATTENDEE_BLOCK_LABEL} ${ann.name} <${ann.email}>`;
    assert.ok(hasAttendeeBlock(edited));
    assert.deepEqual(splitAttendeeBlock(edited), { body: 'Intro\n\nAdded below by the user', attendees: [ann] });
  });

  it('a body without the block is only normalised; the label inside a line is not a block', () => {
    assert.deepEqual(splitAttendeeBlock('Hello\r\n\r\n\r\nWorld  '), { body: 'Hello\n\nWorld', attendees: undefined });
    assert.equal(hasAttendeeBlock(`See "${ATTENDEE_BLOCK_LABEL}" below`), false);
    assert.equal(hasAttendeeBlock(undefined), false);
    assert.deepEqual(splitAttendeeBlock(null), { body: undefined, attendees: undefined });
    assert.deepEqual(splitAttendeeBlock('   '), { body: undefined, attendees: undefined });
  });

  it('entries that are not addresses are dropped when read back', () => {
    assert.deepEqual(splitAttendeeBlock(`${ATTENDEE_BLOCK_LABEL} a@x.com, not an address, B <b@y.com>,`).attendees, [{ email: 'a@x.com' }, { email: 'b@y.com', name: 'B' }]);
    assert.deepEqual(splitAttendeeBlock(ATTENDEE_BLOCK_LABEL).attendees, []);
  });
});

describe('invitations: the policy setting', () => {
  it('event.invitations defaults to "new-future" and accepts never and always', () => {
    assert.equal(BUILTIN_POLICY.event.invitations, 'new-future');
    for (const v of ['new-future', 'never', 'always'] as const) {
      const r = parsePolicy({ event: { invitations: v } });
      assert.ok(r.ok && r.value.event.invitations === v, v);
    }
  });

  it('any other value is refused, naming the field and the values', () => {
    const r = parsePolicy({ event: { invitations: 'sometimes' } });
    assert.equal(r.ok, false);
    assert.equal((r as { error: string }).error, 'event.invitations must be one of new-future, never, always (got "sometimes")');
    assert.equal(parsePolicy({ contact: { invitations: 'never' } }).ok, false, 'an event setting only');
  });
});
