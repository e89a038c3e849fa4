/** The per-mailbox gate that keeps cxsync inside Outlook's limits (4 in flight, N requests per window). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MailboxGate } from '../../src/activities/exchange/gate';
import { classifySubResponse } from '../../src/activities/exchange/errors';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MailboxGate', () => {
  test('never more than the concurrency limit in flight; a batch takes up to 4 slots', async () => {
    const gate = new MailboxGate({ concurrency: 4, requestsPerWindow: 1000, windowMs: 60_000 });
    let inFlight = 0;
    let peak = 0;
    // A batch of n operations occupies min(n, 4) of the server's slots.
    const call = (ops: number) =>
      gate.run({ permits: ops, requests: ops }, async () => {
        const slots = Math.min(ops, 4);
        inFlight += slots;
        peak = Math.max(peak, inFlight);
        await sleep(20);
        inFlight -= slots;
      });
    await Promise.all([call(1), call(1), call(20), call(1), call(3), call(1), call(1)]);
    assert.equal(peak, 4);
  });

  test('at most N requests in any window, counted until one window after each answer', async () => {
    const gate = new MailboxGate({ concurrency: 4, requestsPerWindow: 10, windowMs: 300 });
    const starts: number[] = [];
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 25 }, () => gate.run({ permits: 1, requests: 1 }, async () => {
      starts.push(Date.now() - t0);
      await sleep(5);
    })));
    starts.sort((a, b) => a - b);
    // No window of 300 ms holds more than 10 starts.
    for (let i = 10; i < starts.length; i++) assert.ok(starts[i] - starts[i - 10] >= 300, `window breached at ${i}: ${starts.join(',')}`);
    assert.ok(starts[24] >= 600, 'three windows for 25 requests');
  });

  test('a batch costs one request per operation', async () => {
    const gate = new MailboxGate({ concurrency: 4, requestsPerWindow: 20, windowMs: 200 });
    await gate.run({ permits: 4, requests: 20 }, async () => undefined);
    assert.equal(gate.used(), 20);
    assert.ok(gate.estimateWait(1) > 150, 'the window is full');
    const t = Date.now();
    await gate.run({ permits: 1, requests: 1 }, async () => undefined);
    assert.ok(Date.now() - t >= 180);
  });

  test('a Retry-After pauses the mailbox', async () => {
    const gate = new MailboxGate({ concurrency: 4, requestsPerWindow: 100, windowMs: 1000 });
    gate.pauseFor(150);
    assert.ok(gate.estimateWait(1) > 100);
    const t = Date.now();
    await gate.run({ permits: 1, requests: 1 }, async () => undefined);
    assert.ok(Date.now() - t >= 140);
  });
});

describe('errors inside a $batch', () => {
  test('are classified like top-level ones, Retry-After included', () => {
    const throttled = classifySubResponse({ status: 429, headers: { 'Retry-After': '7' }, body: { error: { code: 'ApplicationThrottled', message: 'over' } } });
    assert.equal(throttled.kind, 'throttled');
    assert.equal(throttled.retryAfterMs, 7000);
    assert.equal(classifySubResponse({ status: 412, body: { error: { code: 'ErrorIrresolvableConflict', message: '' } } }).kind, 'precondition-failed');
    assert.equal(classifySubResponse({ status: 404, body: { error: { code: 'ErrorItemNotFound', message: '' } } }).kind, 'not-found');
    assert.equal(classifySubResponse({ status: 0 }).kind, 'transient');
    assert.equal(classifySubResponse({ status: 504 }).kind, 'transient');
    // A refused permission stops its record type; a mailbox that does not exist or is not enabled stops the mailbox.
    assert.equal(classifySubResponse({ status: 403, body: { error: { code: 'ErrorAccessDenied', message: '' } } }).kind, 'forbidden');
    assert.equal(classifySubResponse({ status: 404, body: { error: { code: 'MailboxNotEnabledForRESTAPI', message: '' } } }).kind, 'mailbox');
    assert.equal(classifySubResponse({ status: 404, body: { error: { code: 'ErrorInvalidUser', message: '' } } }).kind, 'mailbox');
    assert.equal(classifySubResponse({ status: 401, body: { error: { code: 'InvalidAuthenticationToken', message: '' } } }).kind, 'credentials');
  });
});
