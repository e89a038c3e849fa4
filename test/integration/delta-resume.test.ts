/** A multi-page delta round that fails halfway resumes from its saved page when Temporal retries the activity. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startStack, type Stack } from '../helpers/stack';

const UPN = 'dana@contoso.com';

describe('delta round interrupted by a failure', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ pageSize: 3 });
    await s.addUser(UPN, 'Dana Lee');
  });
  after(async () => s?.teardown());

  it('resumes from the saved nextLink instead of starting the round again', async () => {
    for (let i = 0; i < 10; i++) s.emulator.admin.createContact(UPN, 'VContacts', { givenName: `P${i}`, surname: 'Paged' });
    // Page 1 (the initial delta URL) succeeds; the next page fails twice with 503, then the retry goes on.
    s.emulator.admin.injectFault(UPN, { status: 503, count: 2, method: 'GET', pathPattern: 'delta\\?.*skiptoken', retryAfterSeconds: 1 });
    await s.operator.enroll(UPN);
    const st = await s.operator.syncNow(UPN, { wait: true, timeoutMs: 60_000 });
    assert.equal(st?.lastCycle?.outcome, 'completed');
    assert.equal(st?.lastCycle?.types.contact?.crm.created, 10);

    const deltaCalls = s.emulator.recentRequests().filter((r) => r.startsWith('GET') && /\/contacts\/delta/.test(r));
    const initial = deltaCalls.filter((r) => /\/contacts\/delta$/.test(r));
    assert.equal(initial.length, 1, `the round started once: ${JSON.stringify(deltaCalls)}`);
    // 4 pages of 3 + the two failed attempts at page 2.
    assert.equal(deltaCalls.length, 4 + 2);
    const crm = await sql<{ n: string }>`select count(*)::text as n from crm.contacts where last_name = 'Paged'`.execute(s.db);
    assert.equal(Number(crm.rows[0].n), 10);
    const cursor = await sql<{ delta_link: string | null; next_link: string | null; pending_delta_link: string | null }>`select delta_link, next_link, pending_delta_link from sync.cursor`.execute(s.db);
    assert.match(cursor.rows[0].delta_link ?? '', /^https:\/\/localhost:\d+\/v1\.0\/.*deltatoken=/);
    assert.equal(cursor.rows[0].next_link, null);
    assert.equal(cursor.rows[0].pending_delta_link, null, 'the deltaLink became current only after the round was applied');
  });
});
