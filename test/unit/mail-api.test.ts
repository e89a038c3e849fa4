/**
 * The pure helpers of the Graph mail client (src/activities/exchange/mail-api.ts): reading a message for filing,
 * the create body of a received message, collapsing a delta round, what a removal's confirmation means, how an
 * attachment is sent (or why not) and the byte ranges of an upload session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SYNC_ID_PROPERTY } from '../../src/activities/exchange/contacts-api';
import {
  MiB,
  PR_CLIENT_SUBMIT_TIME,
  PR_INTERNET_REFERENCES,
  PR_IN_REPLY_TO_ID,
  PR_MESSAGE_DELIVERY_TIME,
  PR_MESSAGE_FLAGS,
  attachmentKind,
  attachmentRoute,
  collapseDelta,
  messageIds,
  newMessageBody,
  removalState,
  toMailMessage,
  uploadRanges,
} from '../../src/activities/exchange/mail-api';

describe('mail client helpers', () => {
  it('toMailMessage: headers win over cxsync\'s MAPI properties; empty addresses dropped; sync id read', () => {
    const m = toMailMessage({
      id: 'm1',
      parentFolderId: 'f1',
      subject: null,
      body: { contentType: 'HTML', content: '<b>x</b>' },
      from: { emailAddress: { address: 'a@x.test', name: '' } },
      toRecipients: [{ emailAddress: { address: 'b@x.test', name: 'B' } }, { emailAddress: { address: null } }],
      internetMessageHeaders: [{ name: 'in-reply-to', value: ' <p@x.test>' }],
      singleValueExtendedProperties: [
        { id: PR_IN_REPLY_TO_ID.toLowerCase(), value: '<other@x.test>' },
        { id: PR_INTERNET_REFERENCES, value: '<r1@x.test> <r2@x.test>' },
        { id: SYNC_ID_PROPERTY, value: 's-1' },
      ],
    });
    assert.deepEqual(
      [m.subject, m.body, m.from, m.to, m.inReplyTo, m.references, m.syncId, m.sender, m.hasAttachments],
      ['', { contentType: 'html', content: '<b>x</b>' }, { address: 'a@x.test', name: null }, [{ address: 'b@x.test', name: 'B' }], '<p@x.test>', ['<r1@x.test>', '<r2@x.test>'], 's-1', null, false],
    );
    // Without headers (a message cxsync created), the MAPI property gives In-Reply-To.
    assert.equal(toMailMessage({ id: 'm2', singleValueExtendedProperties: [{ id: PR_IN_REPLY_TO_ID, value: '<q@x.test>' }] }).inReplyTo, '<q@x.test>');
    assert.equal(toMailMessage({ id: 'm3' }).inReplyTo, null);
  });

  it('messageIds: bracketed ids, else whitespace-separated tokens', () => {
    assert.deepEqual(messageIds('<a@b>\r\n <c@d>'), ['<a@b>', '<c@d>']);
    assert.deepEqual(messageIds('a@b c@d'), ['a@b', 'c@d']);
    assert.deepEqual(messageIds(null), []);
  });

  it('newMessageBody: PR_MESSAGE_FLAGS never has MSGFLAG_UNSENT; dates, sync id and threading as MAPI properties', () => {
    const base = { subject: 's', body: { contentType: 'text' as const, content: 'b' }, from: { address: 'a@x.test', name: 'A' }, to: [{ address: 'b@x.test', name: null }], receivedDateTime: '2024-03-01T09:30:00+01:00' };
    const body = newMessageBody({ ...base, inReplyTo: '<p@x.test>', references: ['<o@x.test>', '<p@x.test>'] }, 'sync-1');
    const ext = new Map((body.singleValueExtendedProperties as Array<{ id: string; value: string }>).map((p) => [p.id, p.value]));
    assert.equal(Number(ext.get(PR_MESSAGE_FLAGS)) & 0x8, 0, 'not unsent: not a draft');
    assert.equal(ext.get(PR_MESSAGE_FLAGS), '1', 'read by default');
    assert.equal(ext.get(PR_MESSAGE_DELIVERY_TIME), '2024-03-01T08:30:00.000Z');
    assert.equal(ext.get(PR_CLIENT_SUBMIT_TIME), '2024-03-01T08:30:00.000Z', 'sent defaults to received');
    assert.equal(ext.get(SYNC_ID_PROPERTY), 'sync-1');
    assert.equal(ext.get(PR_IN_REPLY_TO_ID), '<p@x.test>');
    assert.equal(ext.get(PR_INTERNET_REFERENCES), '<o@x.test> <p@x.test>');
    assert.deepEqual(body.from, { emailAddress: { address: 'a@x.test', name: 'A' } });
    assert.deepEqual(body.sender, body.from);
    assert.deepEqual(body.toRecipients, [{ emailAddress: { address: 'b@x.test' } }]);
    assert.ok(!('receivedDateTime' in body) && !('isDraft' in body), 'Graph ignores these at create: not sent');
    const unread = newMessageBody({ ...base, isRead: false }, 'sync-2');
    assert.equal((unread.singleValueExtendedProperties as Array<{ id: string; value: string }>).find((p) => p.id === PR_MESSAGE_FLAGS)?.value, '0');
    assert.ok(!(unread.singleValueExtendedProperties as Array<{ id: string }>).some((p) => p.id === PR_IN_REPLY_TO_ID));
  });

  it('collapseDelta: the last report of a message counts, in first-seen order', () => {
    const c = collapseDelta([
      { id: 'a' },
      { id: 'b' },
      { id: 'a', '@removed': { reason: 'deleted' } },
      { id: 'c', '@removed': { reason: 'deleted' } },
      { id: 'c', changeKey: 'k' },
    ]);
    assert.deepEqual(c.order, ['a', 'b', 'c']);
    assert.deepEqual(c.removed, ['a']);
    assert.deepEqual([...c.present.keys()], ['b', 'c']);
  });

  it('removalState: 404 gone, 200 elsewhere moved, 200 in the same folder present, anything else undecided', () => {
    assert.deepEqual(removalState('A', 'm', { status: 404, notFound: true }), { id: 'm', state: 'gone' });
    assert.deepEqual(removalState('A', 'm', { status: 200, notFound: false, parentFolderId: 'B' }), { id: 'm', state: 'moved', parentFolderId: 'B' });
    assert.deepEqual(removalState('A', 'm', { status: 200, notFound: false, parentFolderId: 'A' }), { id: 'm', state: 'present' });
    // A 404 that is not the item's (the mailbox's) or a 5xx is never read as a delete.
    assert.equal(removalState('A', 'm', { status: 404, notFound: false }), undefined);
    assert.equal(removalState('A', 'm', { status: 503, notFound: false }), undefined);
  });

  it('attachmentRoute: POST under 3 MB, session from 3 MB to 150 MB, skipped over the policy or Graph', () => {
    assert.deepEqual(attachmentRoute(3 * MiB - 1, null), { via: 'post' });
    assert.deepEqual(attachmentRoute(3 * MiB, null), { via: 'upload-session' });
    assert.deepEqual(attachmentRoute(150 * MiB, null), { via: 'upload-session' });
    assert.match((attachmentRoute(150 * MiB + 1, null) as { skipped: string }).skipped, /Graph's attachment limit/);
    assert.match((attachmentRoute(5 * MiB, 4 * MiB) as { skipped: string }).skipped, /policy's attachment size limit/);
    assert.deepEqual(attachmentRoute(4 * MiB, 4 * MiB), { via: 'upload-session' }, 'the limit itself is allowed');
  });

  it('uploadRanges: inclusive ranges of at most a chunk, from a resume offset', () => {
    assert.deepEqual(uploadRanges(10, 0, 4), [{ start: 0, end: 3 }, { start: 4, end: 7 }, { start: 8, end: 9 }]);
    assert.deepEqual(uploadRanges(10, 4, 4), [{ start: 4, end: 7 }, { start: 8, end: 9 }]);
    assert.deepEqual(uploadRanges(8, 0, 4), [{ start: 0, end: 3 }, { start: 4, end: 7 }]);
    assert.deepEqual(uploadRanges(8, 8, 4), []);
    assert.ok(uploadRanges(150 * MiB).every((r) => r.end - r.start + 1 < 4_000_000), 'each PUT under 4 MB');
  });

  it('attachmentKind from @odata.type', () => {
    assert.equal(attachmentKind('#microsoft.graph.fileAttachment'), 'file');
    assert.equal(attachmentKind('#microsoft.graph.itemAttachment'), 'item');
    assert.equal(attachmentKind('#microsoft.graph.referenceAttachment'), 'reference');
  });
});
