/**
 * The activity error scrubber (src/activities/scrub.ts): what of an error may become a Temporal failure. PostgreSQL
 * errors are built with pg's own DatabaseError class, as the driver raises them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure, ApplicationFailureCategory, CancelledFailure } from '@temporalio/common';
import { DatabaseError } from 'pg';
import { scrubActivityError, scrubbingInterceptor, scrubForeignText } from '../../src/activities/scrub';

function pgError(fields: Partial<DatabaseError> & { message: string }): DatabaseError {
  const e = new DatabaseError(fields.message, 0, 'error');
  Object.assign(e, { severity: 'ERROR', ...fields });
  return e;
}

const scrubbed = (err: unknown, allow: string[] = []) => scrubActivityError(err, { allow }) as ApplicationFailure;

describe('scrubActivityError: PostgreSQL', () => {
  it('keeps SQLSTATE and the constraint, drops the detail with the duplicate value', () => {
    const f = scrubbed(pgError({
      message: 'duplicate key value violates unique constraint "contacts_email_key"', code: '23505', constraint: 'contacts_email_key',
      schema: 'crm', table: 'contacts', detail: 'Key (email)=(lukas@fabrikam.de) already exists.',
    }));
    assert.ok(f instanceof ApplicationFailure);
    assert.equal(f.type, 'DatabaseError');
    assert.equal(f.nonRetryable, false);
    assert.equal(f.message, 'PostgreSQL 23505 (constraint contacts_email_key, table crm.contacts): duplicate key value violates unique constraint "contacts_email_key"');
    assert.ok(!f.stack?.includes('lukas'));
  });

  it('drops quoted values from the message and everything a trigger raised', () => {
    assert.equal(scrubbed(pgError({ message: 'invalid input syntax for type uuid: "Lukas Weber"', code: '22P02' })).message, 'PostgreSQL 22P02: invalid input syntax for type uuid: "…"');
    const raised = scrubbed(pgError({ message: 'task Call Lukas back refused', code: 'P0001', routine: 'exec_stmt_raise', where: 'PL/pgSQL function crm.check() line 3 at RAISE', hint: 'subject Call Lukas back' }));
    assert.equal(raised.message, 'PostgreSQL P0001: raised by a trigger or function (message withheld: it may carry record values)');
    assert.ok(!raised.stack?.includes('Lukas'), raised.stack);
  });
});

describe('scrubActivityError: Graph and other errors', () => {
  it('keeps a Graph error\'s status and code, not its message', () => {
    // As @microsoft/microsoft-graph-client raises it: a GraphError class with statusCode and code.
    class GraphError extends Error {}
    const err = Object.assign(new GraphError("Cannot convert the literal 'chloe@contoso.fr' to the expected type 'Edm.String'."), { statusCode: 400, code: 'RequestBodyRead' });
    const f = scrubbed(err);
    assert.equal(f.type, 'GraphError');
    assert.equal(f.message, 'Graph 400 RequestBodyRead (message withheld: it may echo record values)');
    assert.ok(!f.stack?.includes('chloe'));
  });

  it('removes quoted values and email addresses from any other error, keeping the mailbox', () => {
    const f = scrubbed(new SyntaxError('Unexpected token \'L\', "Lukas Weber <lukas@fabrikam.de>" is not valid JSON (anna@contoso.com)'), ['anna@contoso.com']);
    assert.equal(f.type, 'SyntaxError');
    assert.equal(f.message, 'Unexpected token \'…\', "…" is not valid JSON (anna@contoso.com)');
    assert.equal(scrubForeignText('for bob@example.org and ANNA@contoso.com', { allow: ['anna@contoso.com'] }), 'for <email> and ANNA@contoso.com');
  });

  it('keeps cxsync\'s own failures (type, flags, delay, category) with other people\'s addresses and known values removed', () => {
    const own = ApplicationFailure.create({
      message: 'resolving the contact container VContacts of anna@contoso.com: see bob@example.org', type: 'Graph503', nonRetryable: false,
      nextRetryDelay: 1500, category: ApplicationFailureCategory.BENIGN, details: [{ who: 'bob@example.org', n: 3 }],
    });
    const f = scrubbed(own, ['anna@contoso.com']);
    assert.equal(f.message, 'resolving the contact container VContacts of anna@contoso.com: see <email>');
    assert.equal(f.type, 'Graph503');
    assert.equal(f.nextRetryDelay, 1500);
    assert.equal(f.category, ApplicationFailureCategory.BENIGN);
    assert.deepEqual(f.details, [{ who: '<email>', n: 3 }]);
    assert.match(f.stack ?? '', /^ApplicationFailure: resolving the contact container VContacts of anna@contoso.com: see <email>\n\s+at /);
    assert.equal((scrubActivityError(ApplicationFailure.create({ message: 'task Call Lukas back failed' }), { values: ['Call Lukas back'] }) as Error).message, 'task <value> failed');
  });

  it('scrubs causes, and lets cancellation through untouched', () => {
    const inner = pgError({ message: 'value "Lukas" too long', code: '22001' });
    const outer = new Error('applying a batch', { cause: inner });
    const f = scrubbed(outer);
    assert.equal((f.cause as ApplicationFailure).message, 'PostgreSQL 22001: value "…" too long');
    const cancelled = new CancelledFailure('paused');
    assert.equal(scrubActivityError(cancelled), cancelled);
  });

  it('is what the worker\'s activity interceptor throws, with the activity\'s mailbox allowed', async () => {
    const { inbound } = scrubbingInterceptor();
    const run = (args: unknown[]) =>
      inbound!.execute!({ args, headers: {} }, async () => {
        throw new Error('refused "Lukas Weber" for anna@contoso.com and lukas@fabrikam.de');
      });
    await assert.rejects(run([{ mailboxId: 'anna@contoso.com', cycleId: '1', recordType: 'contact' }]), (err: Error) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.message, 'refused "…" for anna@contoso.com and <email>');
      return true;
    });
    await assert.rejects(run(['anna@contoso.com']), /for anna@contoso\.com and <email>/);
    assert.equal(await inbound!.execute!({ args: [], headers: {} }, async () => 42), 42);
  });
});
