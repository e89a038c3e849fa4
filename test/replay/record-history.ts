/**
 * Records a history of the mailbox workflow from a real run (real Temporal dev server, PostgreSQL, emulator,
 * worker) for the replay test. Run it after a deliberate, patched() change to the workflow and commit the result:
 *   DATABASE_URL=postgres://… TEMPORAL_CLI_PATH=… npx tsx test/replay/record-history.ts [name]
 * (writes test/replay/histories/<name>.json; default mailbox-first-cycle).
 * The history covers enrolment, one cycle that writes both ways, a pause, a resume and continue-as-new.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { mailboxWorkflowId } from '../../src/workflows/mailbox';
import { eventually, startStack } from '../helpers/stack';

/**
 * `mailbox-failure-handling`: a run through the paths behind the 'cxsync-no-silent-failure' and
 * 'cxsync-resume-syncs' patches: a To Do 403 that stops tasks alone, a pause that cancels the apply step of a
 * running cycle, a resume that starts a cycle at once, and continue-as-new.
 */
async function failureHandling(): Promise<void> {
  const s = await startStack();
  try {
    const upn = 'replay-failures@contoso.com';
    const owner = await s.addUser(upn, 'Replay Failures');
    const values = Array.from({ length: 30 }, (_, i) => sql`(${owner}::uuid, ${'Slow' + i}, 'Replay')`);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values ${sql.join(values)}`.execute(s.db);
    s.emulator.admin.injectFault(upn, { status: 403, count: 1_000_000, pathPattern: '/todo/' });
    s.emulator.admin.setLatency(upn, 1000);
    await s.operator.enroll(upn);
    const handle = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn));
    const firstRunId = (await handle.describe()).runId;
    await eventually(() => s.operator.status(upn), (st) => st.activity?.step === 'applyBatch', { what: 'the apply step', timeoutMs: 120_000 });
    await s.operator.pause(upn, 'recording');
    await eventually(() => s.operator.status(upn), (st) => st.state === 'paused' && !st.activity, { what: 'paused, nothing running' });
    s.emulator.admin.clearFaults(upn);
    s.emulator.admin.injectFault(upn, { status: 403, count: 1_000_000, pathPattern: '/todo/' });
    await s.operator.resume(upn);
    // Run 1: the cycle cancelled by the pause. Run 2: the resume, the cycle it starts, tasks stopped by the 403.
    const first = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn), firstRunId);
    await eventually(async () => (await first.describe()).status.name, (n) => n === 'CONTINUED_AS_NEW', { what: 'continue-as-new', timeoutMs: 120_000 });
    const secondRunId = (await handle.describe()).runId;
    await eventually(() => s.operator.status(upn), (st) => !!st.typesNeedingAttention?.task, { what: 'tasks stopped', timeoutMs: 180_000 });
    const second = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn), secondRunId);
    await eventually(async () => (await second.describe()).status.name, (n) => n === 'CONTINUED_AS_NEW', { what: 'second continue-as-new', timeoutMs: 120_000 });
    for (const [h, name] of [[first, 'mailbox-pause-cancels'], [second, 'mailbox-type-attention']] as const) {
      const history = await h.fetchHistory();
      const out = path.join(__dirname, 'histories', `${name}.json`);
      fs.writeFileSync(out, historyToJSON(history));
      console.log(`wrote ${out} (${history.events?.length} events)`);
    }
  } finally {
    await s.teardown();
  }
}

/**
 * `mailbox-email-filing`: a run through the path behind the 'cxsync-email-filing' patch: a policy with email
 * filing on, a message dropped into VLeads once the first cycle made the folders, the sync-now cycle that
 * files it, and continue-as-new (the second run is recorded).
 */
async function emailFiling(): Promise<void> {
  const s = await startStack();
  try {
    const upn = 'replay-mail@contoso.com';
    await s.addUser(upn, 'Replay Mail');
    await s.operator.createPolicy('replay-mail', { email: { enabled: true } });
    await s.operator.enroll(upn, { policy: 'replay-mail' });
    const handle = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn));
    const firstRunId = (await handle.describe()).runId;
    const first = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn), firstRunId);
    // Run 1 creates the drop folders; run 2 (recorded) files the message dropped into one.
    await eventually(async () => (await first.describe()).status.name, (n) => n === 'CONTINUED_AS_NEW', { what: 'continue-as-new' });
    const secondRunId = (await handle.describe()).runId;
    s.emulator.admin.dropMessage(upn, 'VLeads', {
      subject: 'Replay',
      body: { contentType: 'text', content: 'Filed while recording' },
      from: { emailAddress: { address: 'someone@fabrikam.example', name: 'Some One' } },
      toRecipients: [{ emailAddress: { address: upn, name: 'Replay Mail' } }],
      internetMessageId: '<replay@fabrikam.example>',
      receivedDateTime: '2026-11-01T09:00:00Z',
    });
    await s.operator.syncNow(upn, { wait: true });
    const second = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn), secondRunId);
    await eventually(async () => (await second.describe()).status.name, (n) => n === 'CONTINUED_AS_NEW', { what: 'second continue-as-new' });
    const filed = await sql<{ n: string }>`select count(*)::text as n from sync.mail_filed where mailbox_id = ${upn}`.execute(s.db);
    if (filed.rows[0].n !== '1') throw new Error(`expected the dropped message filed, found ${filed.rows[0].n}`);
    const history = await second.fetchHistory();
    const out = path.join(__dirname, 'histories', 'mailbox-email-filing.json');
    fs.writeFileSync(out, historyToJSON(history));
    console.log(`wrote ${out} (${history.events?.length} events)`);
  } finally {
    await s.teardown();
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'mailbox-failure-handling') return failureHandling();
  if (process.argv[2] === 'mailbox-email-filing') return emailFiling();
  const s = await startStack();
  try {
    const upn = 'replay@contoso.com';
    const owner = await s.addUser(upn, 'Replay User');
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Rita', 'Replay')`.execute(s.db);
    s.emulator.admin.createContact(upn, 'VContacts', { givenName: 'Emil', surname: 'Exchange' });
    await s.operator.enroll(upn);
    const handle = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn));
    const firstRunId = (await handle.describe()).runId;
    await s.operator.pause(upn, 'recording');
    await s.operator.resume(upn);
    await eventually(() => s.operator.status(upn), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    // The first run ends in continue-as-new once its cycle is done.
    const first = s.temporal.client.workflow.getHandle(mailboxWorkflowId(upn), firstRunId);
    await eventually(async () => (await first.describe()).status.name, (n) => n === 'CONTINUED_AS_NEW', { what: 'continue-as-new' });
    const history = await first.fetchHistory();
    const out = path.join(__dirname, 'histories', `${process.argv[2] ?? 'mailbox-first-cycle'}.json`);
    // The SDK's own JSON form (as the Temporal CLI and UI export it), which historyFromJSON reads back.
    fs.writeFileSync(out, historyToJSON(history));
    console.log(`wrote ${out} (${history.events?.length} events)`);
  } finally {
    await s.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
