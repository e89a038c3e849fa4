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

async function main(): Promise<void> {
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
