/**
 * A deliberately non-deterministic change to the mailbox workflow: it starts a timer before doing what the
 * recorded history says it did. Replaying the committed history against it must fail; this proves the
 * replay test can catch an unpatched change.
 */
import { sleep } from '@temporalio/workflow';
import { mailboxWorkflow as current, type MailboxWorkflowInput } from '../../src/workflows/mailbox';

export async function mailboxWorkflow(input: MailboxWorkflowInput): Promise<void> {
  await sleep('1 second');
  return current(input);
}
