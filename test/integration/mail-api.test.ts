/**
 * cxsync's Graph mail client (src/activities/exchange/mail-api.ts) against the emulator through the production
 * client stack (@microsoft/microsoft-graph-client, @azure/msal-node, HTTPS, JSON batches): the policy's folders
 * (created once, a name collision looked up again), per-folder delta rounds with removals confirmed by id (moved,
 * gone, back in the folder: the A→B→A quirk), immutable ids on next and delta links, the id-only re-scan, messages
 * read for filing, received messages created with a sync id and found by it on a retry, and attachments (POST,
 * upload session, size limits as skipped, the upload budget's 429 classified by errors.ts and resumed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@microsoft/microsoft-graph-client';
import { ApplicationFailure } from '@temporalio/common';
import { sendBatch } from '../../src/activities/exchange/batch';
import { classifyGraphError, toActivityFailure } from '../../src/activities/exchange/errors';
import { MailApi, MiB, UploadInterrupted, type MessageState } from '../../src/activities/exchange/mail-api';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect } from '../helpers/emulator-client';

const UPN = 'mila@contoso.test';
const IMMUTABLE = { Prefer: 'IdType="ImmutableId"' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) % 251;
  return b;
}

describe('Graph mail client against the emulator', () => {
  let emu: GraphEmulator;
  let client: Client;
  let api: MailApi;
  const base = `/users/${UPN}`;
  let folders: Map<string, string>;

  before(async () => {
    emu = await startGraphEmulator({ port: 0 });
    emu.admin.ensureMailbox(UPN, 'Mila');
    client = connect(emu).client;
    api = new MailApi(client, 2, undefined, 2); // pages of 2: every round and re-scan crosses page boundaries
  });
  after(() => emu.close());

  test('ensureMailFolders: created under msgfolderroot once, found again by name, a collision looked up again', async () => {
    const names = ['VAccounts', 'VContacts', 'VLeads', 'CRM Email'];
    folders = await api.ensureMailFolders(UPN, names);
    const root = (await client.api(`${base}/mailFolders/msgfolderroot`).get()).id;
    for (const n of names) {
      const f = await client.api(`${base}/mailFolders/${folders.get(n)}`).get();
      assert.deepEqual([f.displayName, f.parentFolderId], [n, root], n);
    }
    // Again, with other casing: the same folders, none added.
    const again = await api.ensureMailFolders(UPN, ['vaccounts', 'VContacts', 'VLEADS', 'CRM Email']);
    assert.deepEqual([...again.values()], names.map((n) => folders.get(n)));
    const all = (await client.api(`${base}/mailFolders`).query({ includeHiddenFolders: 'true' }).top(100).get()).value as Array<{ displayName: string }>;
    for (const n of names) assert.equal(all.filter((f) => f.displayName.toLowerCase() === n.toLowerCase()).length, 1, n);

    // A hidden folder holds the name but is not listed: the create meets ErrorFolderExists and the lookup again finds it.
    const hidden = await client.api(`${base}/mailFolders`).post({ displayName: 'VHidden', isHidden: true });
    assert.deepEqual([...(await api.ensureMailFolders(UPN, ['VHidden'])).values()], [hidden.id]);

    // Two workers racing for the same folder end with one folder and the same id.
    const [a, b] = await Promise.all([new MailApi(client).ensureMailFolders(UPN, ['VRace']), new MailApi(client).ensureMailFolders(UPN, ['VRace'])]);
    assert.equal(a.get('VRace'), b.get('VRace'));
    const races = (await client.api(`${base}/mailFolders`).query({ includeHiddenFolders: 'true' }).top(100).get()).value as Array<{ displayName: string }>;
    assert.equal(races.filter((f) => f.displayName === 'VRace').length, 1);

    // Under another parent (an email-sync folder under the Inbox).
    const inbox = await client.api(`${base}/mailFolders/inbox`).get();
    const sync = await api.ensureMailFolders(UPN, ['CRM Email'], 'inbox');
    assert.notEqual(sync.get('CRM Email'), folders.get('CRM Email'));
    assert.equal((await client.api(`${base}/mailFolders/${sync.get('CRM Email')}`).get()).parentFolderId, inbox.id);
  });

  test('delta rounds: removals confirmed by id (moved, gone, back in the folder), immutable ids on every link, re-scan', async () => {
    const leads = folders.get('VLeads')!;
    const accounts = folders.get('VAccounts')!;
    const drop = (subject: string) => emu.admin.dropMessage(UPN, leads, { subject, from: { emailAddress: { address: `${subject}@example.test` } } });
    const [m1, m2, m3, m4, m5] = ['one', 'two', 'three', 'four', 'five'].map(drop);

    const r1 = await api.deltaRound(UPN, leads);
    assert.equal(r1.pages, 3, 'five messages in pages of two');
    assert.deepEqual(new Set(r1.changes.map((c) => `${c.id} ${c.state}`)), new Set([m1, m2, m3, m4, m5].map((m) => `${m.id} present`)));

    const inbox = await api.wellKnownFolderId(UPN, 'inbox');
    const deleted = await api.wellKnownFolderId(UPN, 'deleteditems');
    const moved = emu.admin.moveMessage(UPN, m1.id, inbox); // the user files it back to the Inbox
    assert.notEqual(moved.restId, m1.restId, 'its default id changed: only the immutable id is the same message');
    await client.api(`${base}/messages/${m2.id}`).delete(); // hard-deleted
    emu.admin.moveMessage(UPN, m3.id, 'deleteditems'); // soft-deleted
    emu.admin.moveMessage(UPN, m4.id, accounts); // A→B→A between two rounds
    emu.admin.moveMessage(UPN, m4.id, leads);
    const m6 = drop('six');

    const r2 = await api.deltaRound(UPN, leads, r1.deltaLink);
    const byId = new Map(r2.changes.map((c) => [c.id, c]));
    assert.deepEqual(byId.get(m1.id), { id: m1.id, state: 'moved', parentFolderId: inbox } satisfies MessageState);
    assert.deepEqual(byId.get(m2.id), { id: m2.id, state: 'gone' });
    assert.deepEqual(byId.get(m3.id), { id: m3.id, state: 'moved', parentFolderId: deleted });
    // Graph reports the boomerang as removed; the confirmation finds it back in the folder.
    assert.equal(byId.get(m4.id)?.state, 'present');
    assert.equal(byId.get(m6.id)?.state, 'present');
    assert.equal(byId.get(m5.id), undefined, 'unchanged: not reported');
    assert.equal(r2.changes.length, 5);
    assert.ok(r2.pages >= 3, 'the incremental round crossed pages too');
    // Every id is the immutable one, the one the admin API knows (m2 aside, deleted since), on first pages, next
    // links and the delta link alike; without the header the moved ones would carry their new default ids.
    const immutableIds = new Set(emu.admin.listMessages(UPN).map((m) => m.id));
    for (const c of [...r1.changes, ...r2.changes].filter((c) => c.id !== m2.id)) assert.ok(immutableIds.has(c.id), `${c.id} is an immutable id`);

    // The A→B→A message is never reported again (the quirk); the id-only re-scan lists it.
    emu.admin.moveMessage(UPN, m5.id, accounts);
    emu.admin.moveMessage(UPN, m5.id, leads);
    const r3 = await api.deltaRound(UPN, leads, r2.deltaLink);
    assert.deepEqual(r3.changes, [{ id: m5.id, state: 'present' }], 'reported removed, found present by id');
    const r4 = await api.deltaRound(UPN, leads, r3.deltaLink);
    assert.deepEqual(r4.changes, []);
    assert.deepEqual(new Set(await api.folderMessageIds(UPN, leads)), new Set([m4.id, m5.id, m6.id]));
    assert.deepEqual(await api.folderMessageIds(UPN, accounts), []);

    // A missing mailbox is not "every message gone": the confirmation throws, classified as the mailbox's problem.
    await assert.rejects(api.confirmRemovals('nobody@contoso.test', leads, [m4.id]), (err) => classifyGraphError(err).kind === 'mailbox');
  });

  test('getMessages: what filing needs, In-Reply-To from the headers, undefined for a gone message', async () => {
    const dropped = emu.admin.dropMessage(UPN, folders.get('VContacts')!, {
      subject: 'Quote for Q3',
      receivedDateTime: '2019-06-01T08:00:00Z',
      from: { emailAddress: { address: 'Anna@Example.test', name: 'Anna Berg' } },
      toRecipients: [{ emailAddress: { address: UPN, name: 'Mila' } }],
      ccRecipients: [{ emailAddress: { address: 'bo@example.test' } }],
      body: { contentType: 'html', content: '<p>Hello</p>' },
      internetMessageId: '<quote-2@example.test>',
      internetMessageHeaders: [
        { name: 'In-Reply-To', value: '<quote-1@example.test>' },
        { name: 'References', value: '<quote-0@example.test> <quote-1@example.test>' },
      ],
      attachments: [{ '@odata.type': '#microsoft.graph.fileAttachment', name: 'q.pdf', contentBytes: Buffer.from('pdf').toString('base64') }],
    });
    const gone = emu.admin.dropMessage(UPN, folders.get('VContacts')!, { subject: 'bye' });
    await client.api(`${base}/messages/${gone.id}`).delete();
    const got = await api.getMessages(UPN, [dropped.id, gone.id]);
    const m = got.get(dropped.id)!;
    assert.equal(got.get(gone.id), undefined);
    assert.ok(got.has(gone.id));
    assert.deepEqual(
      { ...m, changeKey: undefined, conversationId: undefined, sentDateTime: undefined },
      {
        id: dropped.id,
        parentFolderId: folders.get('VContacts'),
        changeKey: undefined,
        subject: 'Quote for Q3',
        body: { contentType: 'html', content: '<p>Hello</p>' },
        from: { address: 'Anna@Example.test', name: 'Anna Berg' },
        sender: null,
        replyTo: [],
        to: [{ address: UPN, name: 'Mila' }],
        cc: [{ address: 'bo@example.test', name: null }],
        bcc: [],
        receivedDateTime: '2019-06-01T08:00:00Z',
        sentDateTime: undefined,
        internetMessageId: '<quote-2@example.test>',
        conversationId: undefined,
        inReplyTo: '<quote-1@example.test>',
        references: ['<quote-0@example.test>', '<quote-1@example.test>'],
        hasAttachments: true,
        isDraft: false,
        isRead: false,
        syncId: null,
      },
    );
    assert.ok(m.conversationId && m.changeKey);
  });

  test('createMessage: a received (non-draft) message with its dates and sync id; a retry finds it instead of creating again', async () => {
    const folder = folders.get('CRM Email')!;
    const message = {
      subject: 'Re: Quote for Q3',
      body: { contentType: 'text' as const, content: 'Agreed.' },
      from: { address: 'anna@example.test', name: 'Anna Berg' },
      to: [{ address: UPN, name: null }],
      cc: [{ address: 'bo@example.test', name: 'Bo' }],
      receivedDateTime: '2021-02-03T04:05:06Z',
      sentDateTime: '2021-02-03T04:05:00Z',
      inReplyTo: '<quote-2@example.test>',
      references: ['<quote-1@example.test>', '<quote-2@example.test>'],
    };
    const first = await api.createMessage(UPN, folder, message, 'sync-001');
    assert.equal(first.created, true);
    const m = (await api.getMessage(UPN, first.id))!;
    assert.deepEqual(
      [m.isDraft, m.isRead, m.receivedDateTime, m.sentDateTime, m.syncId, m.parentFolderId, m.inReplyTo, m.references],
      [false, true, '2021-02-03T04:05:06Z', '2021-02-03T04:05:00Z', 'sync-001', folder, '<quote-2@example.test>', ['<quote-1@example.test>', '<quote-2@example.test>']],
    );
    assert.deepEqual([m.from, m.cc], [{ address: 'anna@example.test', name: 'Anna Berg' }, [{ address: 'bo@example.test', name: 'Bo' }]]);
    assert.ok(emu.admin.listMessages(UPN).some((x) => x.id === first.id), 'created under its immutable id');

    // The answer was lost; the retry looks the sync id up first — in the whole mailbox, as the user may have moved it.
    emu.admin.moveMessage(UPN, first.id, 'inbox');
    const retried = await api.createMessage(UPN, folder, message, 'sync-001', { retry: true });
    assert.deepEqual(retried, { id: first.id, created: false });
    assert.deepEqual(await api.folderMessageIds(UPN, folder), []);
    assert.equal(await api.findBySyncId(UPN, 'sync-404'), undefined);
    // A retry that finds nothing creates; the same request goes in a JSON batch too.
    assert.equal((await api.createMessage(UPN, folder, { ...message, isRead: false }, 'sync-002', { retry: true })).created, true);
    const [batched] = await sendBatch(client, UPN, [api.createRequest(UPN, folder, message, 'sync-003')]);
    assert.equal(batched.status, 201);
    const [found] = await sendBatch(client, UPN, [api.findBySyncIdRequest(UPN, 'sync-003')]);
    assert.deepEqual(((found.body as { value: Array<{ id: string }> }).value).map((x) => x.id), [(batched.body as { id: string }).id]);
    const unread = (await api.getMessage(UPN, (await api.findBySyncId(UPN, 'sync-002'))!))!;
    assert.deepEqual([unread.isDraft, unread.isRead], [false, false]);
  });

  test('attachments: POST under 3 MB, upload session above, metadata list, download, limits as skipped', async () => {
    const folder = folders.get('CRM Email')!;
    const { id } = await api.createMessage(UPN, folder, { subject: 'Files', body: { contentType: 'text', content: '' }, from: { address: 'a@example.test', name: null }, to: [], receivedDateTime: '2022-01-01T00:00:00Z' }, 'sync-att');
    const small = pattern(2 * MiB, 1);
    const large = pattern(5 * MiB + 321, 2); // two PUTs of 3.5 MB at most
    const a1 = await api.addAttachment(UPN, id, { name: 'small.bin', contentType: 'application/octet-stream', content: small }, null);
    assert.equal(a1.state === 'added' && a1.via, 'post');
    const a2 = await api.addAttachment(UPN, id, { name: 'large.pdf', contentType: 'application/pdf', content: large }, null);
    assert.equal(a2.state === 'added' && a2.via, 'upload-session');
    assert.ok(a2.state === 'added' && a2.id, 'the attachment id from the Location header');
    // Over the policy's limit: skipped with the reason, nothing sent.
    const a3 = await api.addAttachment(UPN, id, { name: 'too-big.bin', content: pattern(4 * MiB, 3) }, 3 * MiB);
    assert.deepEqual(a3, { state: 'skipped', reason: `${4 * MiB} bytes is over the policy's attachment size limit of ${3 * MiB} bytes` });

    const list = await api.listAttachments(UPN, id);
    assert.deepEqual(
      list.map((a) => [a.name, a.size, a.contentType, a.isInline, a.kind]),
      [
        ['small.bin', small.length, 'application/octet-stream', false, 'file'],
        ['large.pdf', large.length, 'application/pdf', false, 'file'],
      ],
    );
    assert.equal(list[1].id, a2.state === 'added' ? a2.id : '');
    assert.ok(list.every((a) => !('contentBytes' in a)));
    const d1 = await api.downloadAttachment(UPN, id, list[0], null);
    assert.ok(d1.state === 'downloaded' && d1.content.equals(small));
    const d2 = await api.downloadAttachment(UPN, id, list[1], 10 * MiB);
    assert.ok(d2.state === 'downloaded' && d2.content.equals(large), 'the uploaded bytes come back whole');
    const d3 = await api.downloadAttachment(UPN, id, list[1], MiB);
    assert.equal(d3.state, 'skipped');
    assert.match(d3.state === 'skipped' ? d3.reason : '', /over the policy's attachment size limit/);
    assert.equal((await api.getMessage(UPN, id))!.hasAttachments, true);

    // The mailbox's message size limit refuses part-way through a session: skipped, the message keeps its attachments.
    emu.admin.setMailSettings(UPN, { maxMessageSizeBytes: 10 * MiB });
    try {
      const a4 = await api.addAttachment(UPN, id, { name: 'over-mailbox.bin', content: pattern(4 * MiB, 4) }, null);
      assert.deepEqual(a4, { state: 'skipped', reason: `${4 * MiB} bytes is over the mailbox's message size limit (ErrorMessageSizeExceeded)` });
      assert.equal((await api.listAttachments(UPN, id)).length, 2);
    } finally {
      emu.admin.setMailSettings(UPN, { maxMessageSizeBytes: 35 * MiB });
    }
  });

  test("the upload budget: the 429 is errors.ts's throttling with Retry-After; the upload resumes where it stopped", async () => {
    const folder = folders.get('CRM Email')!;
    const { id } = await api.createMessage(UPN, folder, { subject: 'Budget', body: { contentType: 'text', content: '' }, from: { address: 'a@example.test', name: null }, to: [], receivedDateTime: '2022-01-01T00:00:00Z' }, 'sync-budget');
    emu.admin.setMailSettings(UPN, { uploadBudgetBytes: 6 * MiB, uploadWindowMs: 1500 });
    try {
      await sleep(1600); // earlier uploads leave the window
      const file = pattern(8 * MiB, 5);
      let err: unknown;
      try {
        await api.addAttachment(UPN, id, { name: 'eight.bin', content: file }, null);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof UploadInterrupted, String(err));
      const g = classifyGraphError(err);
      assert.equal(g.kind, 'throttled');
      assert.ok((g.retryAfterMs ?? 0) >= 1000, 'Retry-After carried');
      const failure = toActivityFailure(err, 'add attachment');
      assert.ok(failure instanceof ApplicationFailure && (failure.nextRetryDelay as number) >= 1000, 'Temporal retries after Retry-After');
      assert.deepEqual([err.progress.nextOffset, err.progress.size], [3.5 * MiB, file.length], 'the first range was taken');
      await sleep(g.retryAfterMs!);
      const done = await api.addAttachment(UPN, id, { name: 'eight.bin', content: file }, null, { resume: err.progress });
      assert.equal(done.state, 'added');
      const [att] = await api.listAttachments(UPN, id);
      const back = await api.downloadAttachment(UPN, id, att, null);
      assert.ok(back.state === 'downloaded' && back.content.equals(file), 'resumed, not sent twice: the bytes are whole');
    } finally {
      emu.admin.setMailSettings(UPN, { uploadBudgetBytes: 150 * MiB, uploadWindowMs: 5 * 60 * 1000 });
    }
  });
});
