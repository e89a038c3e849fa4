/**
 * Email sync with the CRM Email folder (issue 10, Acumatica; src/activities/email-sync.ts) on the real stack:
 * Temporal dev server, PostgreSQL, a worker, and the HTTPS Graph emulator through the production Graph client.
 * CRM email activities of the mailbox's user become received messages in 'CRM Email'; messages placed there
 * become CRM email activities linked to the matching records; deletes in the CRM move the message to Deleted
 * Items; moves in Outlook never delete CRM mail; nothing is created twice, retries and lost answers included.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { PostgresCrmEmail } from '../../src/activities/crm/postgres-crm-email';
import { MailApi, UPLOAD_CHUNK_BYTES } from '../../src/activities/exchange/mail-api';
import { syncEmailFolder, type EmailSyncContext } from '../../src/activities/email-sync';
import { EmailFilingStore } from '../../src/db/email-filing-store';
import { EmailSyncStore } from '../../src/db/email-sync-store';
import { parsePolicy } from '../../src/domain/policy';
import { emailSyncId, messageFromActivity } from '../../src/domain/email-sync';
import { SYNC_ID_PROPERTY } from '../../src/activities/exchange/contacts-api';
import { mailboxWorkflowId } from '../../src/workflows/mailbox';
import { connect } from '../helpers/emulator-client';
import { eventually, startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const FOLDER = 'CRM Email';
const KB = 1024;
const MiB = 1024 * 1024;
// Whole seconds: Graph gives message dates to the second.
const at = (minutesAgo: number) => new Date(Math.floor((Date.now() - minutesAgo * 60_000) / 1000) * 1000).toISOString();
const person = (address: string, name: string) => ({ emailAddress: { address, name } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const decoded = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};
/** Bytes that differ from one offset to the next, so a range sent twice or skipped shows in the content. */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) % 251;
  return b;
}

/** An upload session's PUT as the emulator's request log shows it (the pre-authenticated URL is not a /v1.0 request). */
interface UploadPut {
  messageId: string;
  session: string;
  status: number;
}

describe('email sync with the CRM Email folder', () => {
  let s: Stack;
  let anna: string;
  let ben: string;
  let crm: PostgresCrmEmail;
  let mail: MailApi;
  let n = 0;
  const uploadPuts: UploadPut[] = [];
  let onUploadPut: ((put: UploadPut) => void) | undefined;
  const requestLog = (line: string) => {
    const m = /^PUT \S*Messages\('([^']+)'\)\/AttachmentSessions\('([^']+)'\)\S* (\d{3}) \d+ms$/.exec(decoded(line));
    if (!m) return;
    const put = { messageId: m[1], session: m[2], status: Number(m[3]) };
    uploadPuts.push(put);
    onUploadPut?.(put);
  };

  const cycle = (mailbox: string) => s.operator.syncNow(mailbox, { wait: true, timeoutMs: 90_000 });
  const inFolder = (mailbox: string, folder = FOLDER) => s.emulator.admin.listMessages(mailbox, folder);
  const syncIdOf = (m: Record<string, unknown>) =>
    ((m.singleValueExtendedProperties as Array<{ id: string; value: string }> | undefined) ?? []).find((p) => p.id.toLowerCase() === SYNC_ID_PROPERTY.toLowerCase())?.value;
  const liveActivities = async (imid: string) =>
    (await sql<{ id: string; owner_id: string }>`select id::text, owner_id::text from crm.email_activities where internet_message_id = ${imid} and deleted_at is null`.execute(s.db)).rows;
  const linksOf = async (activityId: string) =>
    (await sql<{ record_type: string; record_id: string }>`select record_type, record_id::text from crm.email_links where email_activity_id = ${activityId}::uuid order by record_type, record_id`.execute(s.db)).rows;
  const logged = async (mailbox: string, pattern: string) =>
    (await sql<{ message: string; level: string }>`select message, level from sync.log where mailbox_id = ${mailbox} and message like ${pattern}`.execute(s.db)).rows;

  /** An email activity entered in the CRM (by a CRM user, not a mailbox) for `owner`. */
  async function crmActivity(owner: string, extra: Partial<{ subject: string; imid: string | null }> = {}) {
    n++;
    const imid = extra.imid === undefined ? `<crm${n}.${Date.now()}@contoso.com>` : extra.imid;
    const a = await crm.createEmailActivity({
      mailboxId: 'crm-ui',
      syncId: randomUUID(),
      fields: {
        ownerId: owner,
        subject: extra.subject ?? `Quote ${n}`,
        bodyText: null,
        bodyHtml: `<p>Quote body ${n}</p>`,
        from: { address: 'kim@fourthcoffee.example', name: 'Kim Coffee' },
        to: [{ address: ANNA, name: 'Anna' }],
        cc: [{ address: 'lee@fourthcoffee.example', name: null }],
        bcc: [],
        sentAt: at(60 * 24 * 3 + 5),
        receivedAt: at(60 * 24 * 3),
        direction: 'incoming',
        internetMessageId: imid,
        conversationId: null,
        inReplyTo: null,
      },
    });
    return { id: a.id, imid };
  }

  /** The Graph requests for a message's attachments cxsync sent (POST of a file, createUploadSession), from the emulator's count. */
  const attachmentRequests = (messageId: string) =>
    s.emulator.recentRequests().filter((r) => r.startsWith('POST ') && decoded(r).includes(`/messages/${messageId}/attachments`));
  const mapRow = async (activityId: string) =>
    (await sql<{ complete: boolean; upload: unknown; attachments_done: string[] }>`
      select complete, upload, attachments_done from sync.email_sync_map where mailbox_id = ${ANNA} and activity_id = ${activityId}::uuid and origin = 'crm'`.execute(s.db)).rows;

  /**
   * The fileMail attempts Temporal recorded in the mailbox's last runs (each cycle continues as new): for a retried
   * activity the started event is the attempt that finished, with the failure of the attempt before it.
   */
  async function fileMailAttempts(mailbox: string): Promise<Array<{ attempt: number; lastFailure: string | undefined }>> {
    const out: Array<{ attempt: number; lastFailure: string | undefined }> = [];
    let runId: string | undefined;
    for (let i = 0; i < 3; i++) {
      const history = await s.temporal.client.workflow.getHandle(mailboxWorkflowId(mailbox), runId).fetchHistory();
      const types = new Map<string, string>();
      for (const e of history.events ?? []) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '');
        const started = e.activityTaskStartedEventAttributes;
        if (started && types.get(String(started.scheduledEventId)) === 'fileMail') out.push({ attempt: started.attempt ?? 1, lastFailure: started.lastFailure?.message ?? undefined });
      }
      runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
      if (!runId) break;
    }
    return out;
  }

  /** A received message as it arrives from outside. */
  function message(from: { address: string; name: string }, extra: Record<string, unknown> = {}) {
    n++;
    return {
      subject: `Placed ${n}`,
      body: { contentType: 'html', content: `<p>Placed body ${n}</p>` },
      from: person(from.address, from.name),
      toRecipients: [person(ANNA, 'Anna')],
      internetMessageId: `<p${n}.${Date.now()}@example.net>`,
      receivedDateTime: at(60 * 24 * 10),
      ...extra,
    };
  }

  before(async () => {
    s = await startStack({ emulator: { log: requestLog }, worker: { intervalSeconds: 3600, mailRescanSeconds: 3600 } });
    crm = new PostgresCrmEmail(s.db);
    mail = new MailApi(connect(s.emulator).client);
    anna = await s.addUser(ANNA, 'Anna');
    ben = await s.addUser(BEN, 'Ben');
    await s.operator.createPolicy('sync', { email: { enabled: true, attachments: { maxBytes: 5 * MiB }, sync: { enabled: true } } });
    await s.operator.createPolicy('sync-contacts', { email: { enabled: true, sync: { enabled: true, contactsFromParticipants: true } } });
    await s.operator.enroll(ANNA, { policy: 'sync' });
    await s.operator.enroll(BEN, { policy: 'sync-contacts' });
    for (const m of [ANNA, BEN]) await eventually(() => s.operator.status(m), (st) => st.cyclesCompleted >= 1, { what: `first cycle of ${m}` });
  });
  after(async () => s?.teardown());

  it("creates the policy's folder on the first cycle and records the feed watermark with its origin", async () => {
    assert.equal(inFolder(ANNA).length, 0, 'CRM Email exists (listing a missing folder throws)');
    const row = (await sql<{ folder_name: string; crm_watermark: string | null; crm_watermark_origin: string | null }>`
      select folder_name, crm_watermark, crm_watermark_origin from sync.email_sync_folder where mailbox_id = ${ANNA}`.execute(s.db)).rows[0];
    assert.equal(row.folder_name, FOLDER);
    assert.match(row.crm_watermark ?? '', /^\d+$/);
    assert.match(row.crm_watermark_origin ?? '', /crm\.email_activities=\d+/, 'the origin names the email activity table (0015)');
  });

  it('a CRM activity becomes a received message (not a draft) with its dates, Internet message id and attachments; one over the limit is skipped and logged, the message still created', async () => {
    const a = await crmActivity(anna);
    const small = Buffer.alloc(2 * KB, 1);
    const large = Buffer.alloc(4 * MiB, 2); // over 3 MB: an upload session
    const over = Buffer.alloc(6 * MiB, 3); // over the policy's 5 MB
    for (const [name, content] of [['small.bin', small], ['large.bin', large], ['over.bin', over]] as const) {
      await crm.addEmailAttachment({ mailboxId: 'crm-ui', activityId: a.id, attachment: { key: name, name, contentType: 'application/octet-stream', content } });
    }
    const act = (await crm.getEmailActivity(a.id))!;
    const st = await cycle(ANNA);
    assert.equal(st?.lastCycle?.outcome, 'completed');

    const msgs = inFolder(ANNA).filter((m) => m.internetMessageId === a.imid);
    assert.equal(msgs.length, 1);
    const m = msgs[0];
    assert.equal(m.isDraft, false, 'received mail, not a draft');
    assert.equal(m.subject, act.subject);
    assert.equal(new Date(m.receivedDateTime).toISOString(), new Date(act.receivedAt!).toISOString());
    assert.equal(new Date(m.sentDateTime as string).toISOString(), new Date(act.sentAt!).toISOString());
    assert.equal((m.from as { emailAddress: { address: string } }).emailAddress.address, 'kim@fourthcoffee.example');
    assert.equal(syncIdOf(m), emailSyncId(ANNA, a.id));

    const atts = await mail.listAttachments(ANNA, m.id);
    assert.deepEqual(atts.map((x) => [x.name, x.size]).sort(), [['large.bin', 4 * MiB], ['small.bin', 2 * KB]]);
    const warn = await logged(ANNA, 'attachment "over.bin"%');
    assert.equal(warn.length, 1);
    assert.equal(warn[0].level, 'warn');
    assert.match(warn[0].message, /over the policy's attachment size limit of 5242880 bytes/);
    const summary = (await sql<{ summary: Record<string, number> }>`select summary from sync.cycle where id = ${st!.lastCycle!.cycleId}`.execute(s.db)).rows[0].summary;
    assert.equal(summary['email-sync:to-exchange'], 1);
    assert.equal(summary['email-sync:attachments-skipped'], 1);
    assert.deepEqual(st?.lastCycle?.emailSync, { toExchange: 1, toCrm: 0, deletedInExchange: 0, contactsCreated: 0, attachmentsSkipped: 1 }, 'what status shows');

    // The next cycle creates nothing again, and imports nothing of what cxsync wrote.
    await cycle(ANNA);
    assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === a.imid).length, 1);
    assert.equal((await liveActivities(a.imid!)).length, 1);
  });

  it("an upload session cut short in one attempt (the upload budget's 429) is resumed by the next attempt from the byte where it stopped: one session, each byte taken once", async () => {
    const a = await crmActivity(anna);
    const file = pattern(4.5 * MiB + 321, 7); // two ranges of 3.5 MB at most; under the policy's 5 MB
    await crm.addEmailAttachment({ mailboxId: 'crm-ui', activityId: a.id, attachment: { key: 'resume.bin', name: 'resume.bin', contentType: 'application/octet-stream', content: file } });
    // A budget of 4 MB: the first range (3.5 MB) is taken, the second refused with 429 and Retry-After, which ends
    // the attempt (UploadInterrupted; the map row records where the session stopped) and Temporal retries it.
    const whole = { uploadBudgetBytes: 150 * MiB, uploadWindowMs: 5 * 60_000 };
    s.emulator.admin.setMailSettings(ANNA, { uploadBudgetBytes: 4 * MiB, uploadWindowMs: 2000 });
    // Once refused, the budget is whole again: an attempt that started over from byte 0 would then complete as
    // well (not meet the same 429 for ever), so only the sessions and bytes counted below tell the two apart.
    onUploadPut = (put) => {
      if (put.status === 429) s.emulator.admin.setMailSettings(ANNA, whole);
    };
    let st;
    try {
      await sleep(2100); // earlier uploads leave the window
      st = await cycle(ANNA);
    } finally {
      onUploadPut = undefined;
      s.emulator.admin.setMailSettings(ANNA, whole);
    }
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));

    const msgs = inFolder(ANNA).filter((m) => m.internetMessageId === a.imid);
    assert.equal(msgs.length, 1, 'one message');
    const m = msgs[0];
    const puts = uploadPuts.filter((p) => p.messageId === m.id);
    assert.deepEqual(puts.map((p) => p.status), [200, 429, 201], 'the second range refused, then sent again and taken');
    // The emulator takes a range of a session only from the session's next expected byte: the PUT after the 429
    // went to the recorded session, from the recorded offset (3.5 MB). Starting over would open a second session.
    assert.equal(new Set(puts.map((p) => p.session)).size, 1, `one upload session: ${JSON.stringify(puts)}`);
    assert.equal(attachmentRequests(m.id).filter((r) => r.includes('/createUploadSession')).length, 1, 'createUploadSession once');
    // Bytes taken per session: its accepted ranges, in order from byte 0.
    const taken = [...new Set(puts.map((p) => p.session))]
      .map((id) => Math.min(file.length, puts.filter((p) => p.session === id && p.status < 300).length * UPLOAD_CHUNK_BYTES))
      .reduce((x, y) => x + y, 0);
    assert.equal(taken, file.length, 'each byte taken once');
    assert.ok(taken < 2 * file.length);

    const atts = await mail.listAttachments(ANNA, m.id);
    assert.deepEqual(atts.map((x) => [x.name, x.size]), [['resume.bin', file.length]], 'the attachment exactly once');
    const back = await mail.downloadAttachment(ANNA, m.id, atts[0], null);
    assert.ok(back.state === 'downloaded' && back.content.equals(file), 'byte-identical');
    const [row] = await mapRow(a.id);
    assert.deepEqual([row.complete, row.upload, row.attachments_done.length], [true, null, 1], 'done, the pending upload cleared');

    // The next attempt of the same activity did it: Temporal's record of the cycle's fileMail.
    const attempts = await fileMailAttempts(ANNA);
    const retried = attempts.find((x) => x.attempt >= 2 && /attachment/.test(x.lastFailure ?? ''));
    assert.ok(retried, `fileMail retried after the 429: ${JSON.stringify(attempts)}`);
    assert.match(retried.lastFailure!, /429/);
  });

  it("attachments over the mailbox's message size limit (ErrorMessageSizeExceeded, on a POST and on an upload session) or otherwise refused (413) are skipped and logged; the message is created with the others, the cycle completes, nothing is tried again", async () => {
    const a = await crmActivity(anna);
    const fits = pattern(4 * KB, 8);
    const files = [
      ['refused-413.bin', pattern(8 * KB, 11)], // first, so the fault below meets its POST
      ['fits.bin', fits],
      ['post-refused.bin', pattern(2.5 * MiB, 9)], // one POST (under 3 MB)
      ['upload-refused.bin', pattern(4 * MiB, 10)], // an upload session, its first range refused
    ] as const;
    for (const [name, content] of files) {
      await crm.addEmailAttachment({ mailboxId: 'crm-ui', activityId: a.id, attachment: { key: name, name, contentType: 'application/octet-stream', content } });
    }
    // Under the policy's 5 MB, over the mailbox's 2 MB (an administrator's setting; Exchange Online's default is 35 MB).
    s.emulator.admin.setMailSettings(ANNA, { maxMessageSizeBytes: 2 * MiB });
    // Refused for another reason than the size limit: MailApi throws, and the sync skips it as a refused item.
    s.emulator.admin.injectFault(ANNA, { status: 413, count: 1, method: 'POST', pathPattern: '/attachments$', message: 'The request entity is too large.' });
    try {
      const st = await cycle(ANNA);
      assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
      const msgs = inFolder(ANNA).filter((m) => m.internetMessageId === a.imid);
      assert.equal(msgs.length, 1, 'the message is created');
      const m = msgs[0];
      const atts = await mail.listAttachments(ANNA, m.id);
      assert.deepEqual(atts.map((x) => [x.name, x.size]), [['fits.bin', fits.length]], 'only the one that fits');
      const back = await mail.downloadAttachment(ANNA, m.id, atts[0], null);
      assert.ok(back.state === 'downloaded' && back.content.equals(fits));
      assert.deepEqual(uploadPuts.filter((p) => p.messageId === m.id).map((p) => p.status), [400], 'the upload stopped at its first range');

      const reasons: Record<string, RegExp> = {
        'refused-413.bin': /not added to its message \(placeholder\): Exchange refused it \(413 BadRequest\)/,
        'post-refused.bin': new RegExp(`not added to its message \\(placeholder\\): ${2.5 * MiB} bytes is over the mailbox's message size limit \\(ErrorMessageSizeExceeded\\)`),
        'upload-refused.bin': new RegExp(`not added to its message \\(placeholder\\): ${4 * MiB} bytes is over the mailbox's message size limit \\(ErrorMessageSizeExceeded\\)`),
      };
      for (const [name, reason] of Object.entries(reasons)) {
        const warn = await logged(ANNA, `attachment "${name}" of CRM email activity ${a.id}%`);
        assert.equal(warn.length, 1, `${name} logged`);
        assert.equal(warn[0].level, 'warn');
        assert.match(warn[0].message, reason);
      }
      const summary = (await sql<{ summary: Record<string, number> }>`select summary from sync.cycle where id = ${st!.lastCycle!.cycleId}`.execute(s.db)).rows[0].summary;
      assert.equal(summary['email-sync:to-exchange'], 1);
      assert.equal(summary['email-sync:attachments-skipped'], 3);
      const [row] = await mapRow(a.id);
      assert.deepEqual([row.complete, row.upload, row.attachments_done.length], [true, null, files.length], 'every attachment settled, the row complete');

      // Not retried: the next cycle sends nothing for this message's attachments and logs nothing again.
      const sent = attachmentRequests(m.id).length;
      assert.equal(sent, 4, 'three POSTs and one createUploadSession');
      const next = await cycle(ANNA);
      assert.equal(next?.lastCycle?.outcome, 'completed');
      assert.equal(attachmentRequests(m.id).length, sent);
      assert.equal((await logged(ANNA, `attachment "%" of CRM email activity ${a.id} not added%`)).length, 3, 'each logged once');
      assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === a.imid).length, 1);
    } finally {
      s.emulator.admin.clearFaults(ANNA);
      s.emulator.admin.setMailSettings(ANNA, { maxMessageSizeBytes: 35 * MiB });
    }
  });

  it('the step run twice (an activity attempt retried) creates one message', async () => {
    const a = await crmActivity(anna, { imid: null });
    const policy = parsePolicy({ email: { enabled: true, sync: { enabled: true } } });
    assert.ok(policy.ok);
    const ctx: EmailSyncContext = {
      db: s.db, mail, crm, store: new EmailSyncStore(s.db), filing: new EmailFilingStore(s.db), mailboxId: ANNA, upn: ANNA, ownerId: anna,
      policy: policy.value.email, limit: 100, rescanSeconds: 3600, log: async () => undefined, beat: () => undefined,
    };
    const first = await syncEmailFolder(ctx);
    const second = await syncEmailFolder(ctx);
    assert.equal(first.toExchange, 1);
    assert.equal(second.toExchange, 0);
    assert.equal(second.toCrm, 0, 'its own message is not imported back');
    assert.equal(inFolder(ANNA).filter((m) => syncIdOf(m) === emailSyncId(ANNA, a.id)).length, 1);
  });

  it('a crash between the Graph create and the map row: the next attempt finds the message by its sync id instead of creating it again', async () => {
    const a = await crmActivity(anna);
    const store = new EmailSyncStore(s.db);
    const folder = (await store.folder(ANNA))!;
    // What the dead attempt did: the row planned, the message created, its id never recorded.
    const { row } = await store.planCrmCreate(ANNA, a.id, emailSyncId(ANNA, a.id));
    const act = (await crm.getEmailActivity(a.id))!;
    await mail.createMessage(ANNA, folder.folderId, messageFromActivity(act, ANNA), row.syncId!);
    await cycle(ANNA);
    const copies = inFolder(ANNA).filter((m) => m.internetMessageId === a.imid);
    assert.equal(copies.length, 1, 'one message');
    const mapped = (await store.byActivity(ANNA, [a.id])).get(a.id)!;
    assert.deepEqual(mapped.map((r) => [r.messageId, r.complete]), [[copies[0].id, true]]);
    assert.equal((await liveActivities(a.imid!)).length, 1, 'not imported back as a second activity');
  });

  it('the map lost (restored database, mailbox enrolled again): a full read finds every message by its sync id, nothing is duplicated', async () => {
    const before = inFolder(ANNA).length;
    const activities = (await sql<{ n: string }>`select count(*)::text as n from crm.email_activities`.execute(s.db)).rows[0].n;
    await sql`delete from sync.email_sync_map where mailbox_id = ${ANNA}`.execute(s.db);
    await sql`update sync.email_sync_folder set crm_watermark = null, crm_watermark_origin = null, delta_link = null, rescanned_at = null where mailbox_id = ${ANNA}`.execute(s.db);
    await cycle(ANNA);
    assert.equal(inFolder(ANNA).length, before);
    assert.equal((await sql<{ n: string }>`select count(*)::text as n from crm.email_activities`.execute(s.db)).rows[0].n, activities);
  });

  it('a message placed in the folder becomes a CRM activity linked to the matching contact; an unknown participant becomes no contact without the setting', async () => {
    const carla = (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Carla', 'Known', 'carla@fabrikam.example') returning id::text`.execute(s.db)).rows[0].id;
    const m = message({ address: 'carla@fabrikam.example', name: 'Carla Known' }, { ccRecipients: [person('nobody.yet@northwind.example', 'Nobody Yet'), person('colleague@contoso.com', 'Col League')] });
    s.emulator.admin.dropMessage(ANNA, FOLDER, m);
    const st = await cycle(ANNA);
    const [act] = await liveActivities(m.internetMessageId);
    assert.ok(act, 'one CRM activity');
    assert.equal(act.owner_id, anna);
    assert.deepEqual(await linksOf(act.id), [{ record_type: 'contact', record_id: carla }]);
    assert.equal((await sql`select 1 from crm.contacts where email in ('nobody.yet@northwind.example', 'colleague@contoso.com')`.execute(s.db)).rows.length, 0, 'no contact made');
    const summary = (await sql<{ summary: Record<string, number> }>`select summary from sync.cycle where id = ${st!.lastCycle!.cycleId}`.execute(s.db)).rows[0].summary;
    assert.equal(summary['email-sync:to-crm'], 1);
    assert.equal(st?.lastCycle?.emailSync?.toCrm, 1, 'what status shows');
    // Its creation by the mailbox is not echoed back as a second message.
    await cycle(ANNA);
    assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === m.internetMessageId).length, 1);
  });

  it("a placed message's attachments go to the CRM with their size, one over the limit as a logged placeholder; a draft placed there is not mail", async () => {
    const small = Buffer.alloc(3 * KB, 4);
    const over = Buffer.alloc(2 * MiB, 5);
    await s.operator.updatePolicy('sync', { email: { enabled: true, attachments: { maxBytes: MiB }, sync: { enabled: true } } });
    try {
      const m = message({ address: 'gil@proseware.example', name: 'Gil Prose' }, {
        attachments: [
          { '@odata.type': '#microsoft.graph.fileAttachment', name: 'small.bin', contentType: 'application/octet-stream', contentBytes: small.toString('base64') },
          { '@odata.type': '#microsoft.graph.fileAttachment', name: 'over.bin', contentType: 'application/octet-stream', contentBytes: over.toString('base64') },
        ],
      });
      s.emulator.admin.dropMessage(ANNA, FOLDER, m);
      const folderId = (await sql<{ folder_id: string }>`select folder_id from sync.email_sync_folder where mailbox_id = ${ANNA}`.execute(s.db)).rows[0].folder_id;
      // A draft the user saved into the folder (created through Graph without PR_MESSAGE_FLAGS: a draft).
      const draft = await connect(s.emulator).client.api(`/users/${ANNA}/mailFolders/${folderId}/messages`).post({ subject: 'Unsent', body: { contentType: 'text', content: 'not sent' }, toRecipients: [person('gil@proseware.example', 'Gil')] });
      assert.equal(draft.isDraft, true);
      await cycle(ANNA);
      const [act] = await liveActivities(m.internetMessageId);
      const atts = (await sql<{ name: string; size_bytes: string; content: Buffer | null; skipped_reason: string | null }>`
        select name, size_bytes::text, content, skipped_reason from crm.email_attachments where email_activity_id = ${act.id}::uuid order by name`.execute(s.db)).rows;
      assert.deepEqual(atts.map((a) => [a.name, a.size_bytes, a.content?.length ?? null]), [['over.bin', String(2 * MiB), null], ['small.bin', String(3 * KB), 3 * KB]]);
      assert.match(atts[0].skipped_reason!, /over the policy's attachment size limit of 1048576 bytes/);
      assert.ok(atts[1].content!.equals(small));
      const warned = await logged(ANNA, 'attachment 2 of the message kept as a placeholder: % over the policy%');
      assert.equal(warned.length, 1, 'logged');
      assert.equal(warned[0].level, 'warn');
      assert.equal((await sql`select 1 from crm.email_activities where subject = 'Unsent'`.execute(s.db)).rows.length, 0, 'no activity for a draft');
    } finally {
      await s.operator.updatePolicy('sync', { email: { enabled: true, attachments: { maxBytes: 5 * MiB }, sync: { enabled: true } } });
    }
  });

  it('with contactsFromParticipants, participants not in the CRM become contacts (never the own domain); an ambiguous one is not linked, and logged', async () => {
    for (const last of ['One', 'Two']) {
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Shared', ${last}, 'desk@litware.example')`.execute(s.db);
    }
    const m = message({ address: 'dora.new@tailspin.example', name: 'Dora New' }, {
      toRecipients: [person(BEN, 'Ben')],
      ccRecipients: [person('desk@litware.example', 'Desk'), person('boss@contoso.com', 'Boss')],
    });
    s.emulator.admin.dropMessage(BEN, FOLDER, m);
    await cycle(BEN);
    const [act] = await liveActivities(m.internetMessageId);
    const dora = (await sql<{ id: string; first_name: string; last_name: string; owner_id: string }>`select id::text, first_name, last_name, owner_id::text from crm.contacts where email = 'dora.new@tailspin.example'`.execute(s.db)).rows;
    assert.equal(dora.length, 1);
    assert.deepEqual([dora[0].first_name, dora[0].last_name, dora[0].owner_id], ['Dora', 'New', ben]);
    assert.deepEqual(await linksOf(act.id), [{ record_type: 'contact', record_id: dora[0].id }], 'only Dora: the shared address is ambiguous');
    assert.equal((await sql`select 1 from crm.contacts where email = 'boss@contoso.com'`.execute(s.db)).rows.length, 0, 'never a contact of the own domain');
    const warn = await logged(BEN, 'desk@litware.example not linked: 2 contacts%');
    assert.equal(warn.length, 1);
  });

  it('a CRM delete moves the message to Deleted Items (not a hard delete)', async () => {
    const a = await crmActivity(anna);
    await cycle(ANNA);
    const [m] = inFolder(ANNA).filter((x) => x.internetMessageId === a.imid);
    assert.ok(m);
    await sql`update crm.email_activities set deleted_at = now() where id = ${a.id}::uuid`.execute(s.db);
    await cycle(ANNA);
    assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === a.imid).length, 0);
    const trash = inFolder(ANNA, 'deleteditems').filter((x) => x.internetMessageId === a.imid);
    assert.deepEqual(trash.map((x) => x.id), [m.id], 'the same message, in Deleted Items');
    // Later cycles neither bring it back nor touch it again.
    await cycle(ANNA);
    assert.equal(inFolder(ANNA, 'deleteditems').filter((x) => x.internetMessageId === a.imid).length, 1);
    assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === a.imid).length, 0);
  });

  it("an activity given to another user stays in the first mailbox's folder (logged, not deleted) and reaches the new owner's", async () => {
    const a = await crmActivity(anna);
    await cycle(ANNA);
    const [m] = inFolder(ANNA).filter((x) => x.internetMessageId === a.imid);
    assert.ok(m);
    await sql`update crm.email_activities set owner_id = ${ben}::uuid where id = ${a.id}::uuid`.execute(s.db);
    await cycle(ANNA);
    await cycle(BEN);
    assert.deepEqual(inFolder(ANNA).filter((x) => x.internetMessageId === a.imid).map((x) => x.id), [m.id], 'left where it was');
    assert.equal(inFolder(ANNA, 'deleteditems').filter((x) => x.internetMessageId === a.imid).length, 0, 'not deleted');
    assert.equal((await logged(ANNA, `CRM email activity ${a.id} now belongs to another user%`)).length, 1);
    assert.equal(inFolder(BEN).filter((x) => x.internetMessageId === a.imid).length, 1, "in Ben's folder now");
    assert.equal((await liveActivities(a.imid!)).length, 1, 'still one activity');
  });

  it('an edit in the CRM does not recreate the message', async () => {
    const a = await crmActivity(anna);
    await cycle(ANNA);
    const [m] = inFolder(ANNA).filter((x) => x.internetMessageId === a.imid);
    await sql`update crm.email_activities set subject = 'Edited in the CRM' where id = ${a.id}::uuid`.execute(s.db);
    await cycle(ANNA);
    const after = inFolder(ANNA).filter((x) => x.internetMessageId === a.imid);
    assert.deepEqual(after.map((x) => [x.id, x.subject]), [[m.id, m.subject]]);
  });

  it('moving a message out of the folder (or deleting it in Outlook) never deletes its CRM activity', async () => {
    const placed = message({ address: 'eve@proseware.example', name: 'Eve Prose' });
    const dropped = s.emulator.admin.dropMessage(ANNA, FOLDER, placed);
    const fromCrm = await crmActivity(anna);
    await cycle(ANNA);
    const [act] = await liveActivities(placed.internetMessageId);
    assert.ok(act);
    const [copy] = inFolder(ANNA).filter((x) => x.internetMessageId === fromCrm.imid);
    s.emulator.admin.moveMessage(ANNA, dropped.id, 'inbox');
    s.emulator.admin.moveMessage(ANNA, copy.id, 'deleteditems');
    await cycle(ANNA);
    assert.equal((await liveActivities(placed.internetMessageId)).length, 1, 'the placed message keeps its activity');
    assert.equal((await liveActivities(fromCrm.imid!)).length, 1, 'the CRM activity stays');
    const states = (await sql<{ message_id: string; state: string }>`select message_id, state from sync.email_sync_map where mailbox_id = ${ANNA} and message_id in (${dropped.id}, ${copy.id})`.execute(s.db)).rows;
    assert.deepEqual(states.map((r) => r.state).sort(), ['left-folder', 'left-folder']);
    assert.ok((await logged(ANNA, `message moved out of ${FOLDER}: its CRM email activity % stays`)).length >= 2, 'logged');
  });

  it('the same message filed from a drop folder and placed in the sync folder is one activity', async () => {
    const m = message({ address: 'finn@wingtip.example', name: 'Finn Wing' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    s.emulator.admin.dropMessage(ANNA, FOLDER, m);
    await cycle(ANNA);
    const acts = await liveActivities(m.internetMessageId);
    assert.equal(acts.length, 1, 'one activity');
    const mapped = (await sql<{ activity_id: string }>`select activity_id::text from sync.email_sync_map where mailbox_id = ${ANNA} and activity_id = ${acts[0].id}::uuid`.execute(s.db)).rows;
    assert.equal(mapped.length, 1, 'the sync folder message maps to it');
    const filed = (await sql<{ activity_id: string }>`select activity_id::text from sync.mail_filed where mailbox_id = ${ANNA} and activity_id = ${acts[0].id}::uuid`.execute(s.db)).rows;
    assert.equal(filed.length, 1, 'and the drop folder filed it');
    // Not copied into the folder a second time from the CRM side.
    await cycle(ANNA);
    assert.equal(inFolder(ANNA).filter((x) => x.internetMessageId === m.internetMessageId).length, 1);
  });
});
