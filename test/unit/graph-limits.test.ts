/**
 * What docs/ARCHITECTURE.md ("Microsoft Graph") promises of the gate and of JSON batches
 * (src/activities/exchange/gate.ts, batch.ts): Outlook's limits as the defaults, a long wait not spent inside
 * an activity, batches of at most 20 without dependsOn, and a batch failing as a whole standing for a failure
 * of each operation. The Graph client is a stub: only the request cxsync builds and the answers it reads matter.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@microsoft/microsoft-graph-client';
import { BudgetExhausted, MAX_IN_ACTIVITY_WAIT_MS, gated, runBatched, sendBatch, type GraphSubRequest } from '../../src/activities/exchange/batch';
import { ApplicationFailure } from '@temporalio/common';
import { classifyGraphError, classifySubResponse, toActivityFailure } from '../../src/activities/exchange/errors';
import { OUTLOOK_LIMITS, configureMailboxLimits, mailboxLimits } from '../../src/activities/exchange/gate';

/** A Graph client whose $batch answers with `answer` (or throws it) and keeps what was posted. */
function stubClient(answer: (payload: { requests: Array<Record<string, unknown>> }) => unknown) {
  const posted: Array<{ requests: Array<Record<string, unknown>> }> = [];
  const client = {
    api: (path: string) => {
      assert.equal(path, '/$batch');
      return {
        post: async (payload: { requests: Array<Record<string, unknown>> }) => {
          posted.push(payload);
          return answer(payload);
        },
      };
    },
  } as unknown as Client;
  return { client, posted };
}
const okAll = (p: { requests: Array<Record<string, unknown>> }) => ({ responses: p.requests.map((r) => ({ id: r.id, status: 200, body: {} })) });
const patch = (i: number): GraphSubRequest => ({ method: 'PATCH', url: `/users/u/contacts/c${i}`, headers: { 'If-Match': `W/"k${i}"` }, body: { jobTitle: `t${i}` } });

describe('Graph limits and batches', () => {
  afterEach(() => configureMailboxLimits(OUTLOOK_LIMITS));

  it("the gate's defaults are Outlook's limits: 4 in flight, 10,000 requests in any 10 minutes", () => {
    assert.deepEqual(OUTLOOK_LIMITS, { concurrency: 4, requestsPerWindow: 10_000, windowMs: 600_000 });
    assert.deepEqual(mailboxLimits(), OUTLOOK_LIMITS);
  });

  it('a wait longer than 30 s is not spent in the activity: the call fails at once as a throttle with that wait as Retry-After', async () => {
    configureMailboxLimits({ requestsPerWindow: 2, windowMs: 120_000 });
    await gated('long-wait@x', async () => undefined);
    await gated('long-wait@x', async () => undefined);
    let called = false;
    const t = Date.now();
    const err = await gated('long-wait@x', async () => { called = true; }).then(() => undefined, (e: unknown) => e);
    assert.ok(Date.now() - t < 1_000, 'no wait inside the activity');
    assert.equal(called, false);
    assert.ok(err instanceof BudgetExhausted && err.waitMs > MAX_IN_ACTIVITY_WAIT_MS, String(err));
    const g = classifyGraphError(err);
    assert.equal(g.kind, 'throttled');
    assert.ok((g.retryAfterMs ?? 0) >= 110_000, `Retry-After carries the wait: ${g.retryAfterMs}`);
    // The same for batches: what would wait too long is left unsent, with the wait.
    const { client, posted } = stubClient(okAll);
    const run = await runBatched(client, 'long-wait@x', [patch(1)].map((request, i) => ({ key: i, request })), async () => undefined);
    assert.equal(posted.length, 0);
    assert.equal(run.unsent.length, 1);
    assert.ok((run.waitMs ?? 0) > MAX_IN_ACTIVITY_WAIT_MS);
  });

  it('JSON batches hold at most 20 operations and carry no dependsOn (a failed one does not fail the others with 424)', async () => {
    const { client, posted } = stubClient((p) => ({
      responses: p.requests.map((r, i) => ({ id: r.id, status: i === 0 ? 412 : 200, body: i === 0 ? { error: { code: 'ErrorIrresolvableConflict', message: '' } } : {} })),
    }));
    await assert.rejects(() => sendBatch(client, 'batch@x', Array.from({ length: 21 }, (_, i) => patch(i))), /at most 20/);
    const outcomes: number[] = [];
    await runBatched(client, 'batch@x', Array.from({ length: 45 }, (_, i) => ({ key: i, request: patch(i) })), async (o) => {
      outcomes.push(...o.map((x) => x.response.status));
    });
    assert.deepEqual(posted.map((p) => p.requests.length), [20, 20, 5]);
    for (const p of posted) for (const r of p.requests) assert.equal('dependsOn' in r, false);
    assert.equal(outcomes.filter((s) => s === 412).length, 3, 'one refusal per batch');
    assert.equal(outcomes.filter((s) => s === 200).length, 42, 'the others succeed');
  });

  it('a batch request that fails as a whole stands for a failure of each operation, Retry-After included', async () => {
    const { client } = stubClient(() => {
      throw Object.assign(new Error('busy'), { statusCode: 503, code: 'ServiceUnavailable', headers: { 'Retry-After': '3' } });
    });
    const answers = await sendBatch(client, 'whole@x', [patch(1), patch(2), patch(3)]);
    assert.equal(answers.length, 3);
    for (const a of answers) {
      const g = classifySubResponse(a);
      assert.equal(a.status, 503);
      assert.equal(g.kind, 'transient');
      assert.equal(g.retryAfterMs, 3_000);
    }
  });

  it("a Graph Retry-After becomes the activity's retry delay (nextRetryDelay), for a 429 and for a 503", () => {
    for (const statusCode of [429, 503]) {
      const f = toActivityFailure(Object.assign(new Error('x'), { statusCode, code: statusCode === 429 ? 'ApplicationThrottled' : 'ServiceUnavailable', headers: { 'Retry-After': '7' } }), 'pulling contacts');
      assert.ok(f instanceof ApplicationFailure, String(f));
      assert.equal(f.nonRetryable, false);
      assert.equal(f.nextRetryDelay, 7_000, `status ${statusCode}`);
    }
  });
});
