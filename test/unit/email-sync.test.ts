/** The pure rules of email sync (src/domain/email-sync.ts): the message an activity becomes, the participants looked up, the sync id. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emailSyncId, messageFromActivity, participantsOf } from '../../src/domain/email-sync';
import { exclusionsOf } from '../../src/domain/email-filing';

const base = {
  subject: 'Hello',
  bodyText: 'plain',
  bodyHtml: null,
  from: null,
  to: [{ address: 'kim@fabrikam.example', name: 'Kim' }],
  cc: [],
  bcc: [],
  sentAt: null,
  receivedAt: null,
  direction: 'outgoing' as const,
  internetMessageId: null,
  inReplyTo: null,
  updatedAt: '2025-03-01T10:00:00.000Z',
};

describe('email sync: the message of an activity', () => {
  it('without dates is dated by its last change; without a sender shows the mailbox; text body when there is no HTML; read', () => {
    const m = messageFromActivity(base, 'anna@contoso.com');
    assert.equal(m.receivedDateTime, base.updatedAt);
    assert.equal(m.sentDateTime, base.updatedAt);
    assert.deepEqual(m.from, { address: 'anna@contoso.com', name: null });
    assert.deepEqual(m.body, { contentType: 'text', content: 'plain' });
    assert.equal(m.isRead, true);
    assert.equal('internetMessageId' in m, false);
  });

  it('keeps HTML, sender, dates and the Internet message id when the activity has them', () => {
    const m = messageFromActivity(
      { ...base, bodyHtml: '<p>x</p>', from: { address: 'kim@fabrikam.example', name: 'Kim' }, sentAt: '2025-02-01T09:00:00.000Z', receivedAt: '2025-02-01T09:01:00.000Z', internetMessageId: '<a@b>', inReplyTo: '<z@b>' },
      'anna@contoso.com',
    );
    assert.deepEqual(m.body, { contentType: 'html', content: '<p>x</p>' });
    assert.equal(m.from.address, 'kim@fabrikam.example');
    assert.deepEqual([m.sentDateTime, m.receivedDateTime, m.internetMessageId, m.inReplyTo], ['2025-02-01T09:00:00.000Z', '2025-02-01T09:01:00.000Z', '<a@b>', '<z@b>']);
  });

  it('the sync id is derived from mailbox and activity: the same twice, different for another mailbox', () => {
    assert.equal(emailSyncId('anna@contoso.com', 'a1'), emailSyncId('anna@contoso.com', 'a1'));
    assert.notEqual(emailSyncId('anna@contoso.com', 'a1'), emailSyncId('ben@contoso.com', 'a1'));
    assert.match(emailSyncId('anna@contoso.com', 'a1'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('email sync: participants of a placed message', () => {
  const ex = exclusionsOf({ mailboxAddress: 'anna@contoso.com', ownDomain: true, addresses: ['noreply@fabrikam.example'], domains: [] });
  it('sender and every recipient once, without the mailbox itself; excluded ones apart with the reason', () => {
    const r = participantsOf(
      {
        from: { address: 'Kim@Fabrikam.example', name: 'Kim' },
        to: [{ address: 'anna@contoso.com', name: 'Anna' }, { address: 'kim@fabrikam.example', name: null }],
        cc: [{ address: 'boss@contoso.com', name: 'Boss' }, { address: 'noreply@fabrikam.example', name: null }],
        bcc: [{ address: 'lee@northwind.example', name: 'Lee' }],
      },
      'anna@contoso.com',
      ex,
    );
    assert.deepEqual(r.parties, [{ address: 'kim@fabrikam.example', name: 'Kim' }, { address: 'lee@northwind.example', name: 'Lee' }]);
    assert.deepEqual(r.excluded.map((e) => e.address), ['boss@contoso.com', 'noreply@fabrikam.example']);
    assert.match(r.excluded[0].reason, /own domain/);
  });
});
