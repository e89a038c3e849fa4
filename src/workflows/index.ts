/** The workflow bundle's entry point: everything the worker registers. */
export { mailboxWorkflow } from './mailbox';
export { retentionWorkflow } from './retention';
