/**
 * The worker's Prometheus endpoints on the real stack (Temporal dev server, PostgreSQL, HTTPS emulator, real Graph
 * client): a sync with injected throttling is scraped over HTTP, and the counters must have moved — cycles, items
 * written, conflicts, skipped items, Graph requests and $batch operations by status (429 included), throttle
 * pauses — as must the fleet gauges (sync lag while a write cannot go through, needs-attention). The Temporal SDK's
 * own endpoint is scraped too: every SDK metric the shipped dashboard and alerts use must really be exported.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Stack } from '../helpers/stack';
import { freePort } from '../helpers/ports';
import { createMailboxActivities } from '../../src/activities/mailbox-activities';
import { DEFAULT_ACTIVITY_SETTINGS } from '../../src/worker/worker';
import { startMetricsServer, TEMPORAL_SDK_METRICS, temporalMetricsExporter, type MetricsServer } from '../../src/worker/metrics';

const ANNA = 'anna@contoso.com';
const BROKEN = 'broken@contoso.com';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Samples of a text exposition (only what these assertions need: no escapes inside label values). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  const text = await res.text();
  return { text, samples: parseExposition(text), contentType: res.headers.get('content-type') ?? '' };
}

/** Sum of the samples of one name whose labels include `match`. */
function total(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

describe('Prometheus metrics of a worker', () => {
  let s: Stack;
  let server: MetricsServer;
  let sdkUrl: string;
  let anna: string;

  before(async () => {
    // The SDK's exporter lives in the runtime, which must exist before any connection: installed here first, and the
    // stack helper (which installs a plain runtime when it loads, unless one exists) is loaded only after it.
    const sdkPort = await freePort();
    Runtime.install({ logger: new DefaultLogger('WARN'), telemetryOptions: { metrics: temporalMetricsExporter(`127.0.0.1:${sdkPort}`) } });
    sdkUrl = `http://127.0.0.1:${sdkPort}/metrics`;
    const { startStack } = require('../helpers/stack') as typeof import('../helpers/stack');
    s = await startStack();
    server = await startMetricsServer({ host: '127.0.0.1', port: 0 });
    anna = await s.addUser(ANNA, 'Anna Schmidt');
  });
  after(async () => {
    await server?.close();
    await s?.teardown();
  });

  it('serves the Prometheus text format at /metrics and nothing elsewhere', async () => {
    const { contentType, text } = await scrape(server.url);
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(text, /^# TYPE cxsync_cycles_total counter$/m);
    assert.match(text, /^# TYPE process_cpu_user_seconds_total counter$/m, 'Node.js process metrics are included');
    const other = await fetch(server.url.replace('/metrics', '/'));
    assert.equal(other.status, 404);
  });

  /**
   * Cycles until `done` holds. The CRM feed reports a change once every older transaction on the PostgreSQL cluster
   * has ended, and test files running beside this one share the cluster: a change may come a cycle late.
   */
  async function syncUntil(done: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 10; i++) {
      await s.operator.syncNow(ANNA, { wait: true });
      if (await done()) return;
    }
    throw new Error(`not after 10 cycles: ${what}`);
  }
  const inOutlook = (surname: string) => s.emulator.admin.listContacts(ANNA, 'VContacts').some((c) => c.surname === surname);

  it('counts cycles, items written, conflicts, skipped items, and Graph requests and $batch operations by status, 429 included', async () => {
    const before = (await scrape(server.url)).samples;
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values
      (${anna}, 'Lukas', 'Weber', 'lukas@fabrikam.de'),
      (${anna}, 'Sofia', 'Rossi', 'sofia@adventure-works.it'),
      (${anna}, 'Bad', 'Email', 'not-an-email')`.execute(s.db);
    s.emulator.admin.ensureMailbox(ANNA);
    await s.operator.enroll(ANNA);
    await syncUntil(async () => inOutlook('Weber') && inOutlook('Rossi'), 'the CRM contacts in Outlook');
    s.emulator.admin.createContact(ANNA, 'VContacts', { givenName: 'Chloé', surname: 'Martin', emailAddresses: [{ address: 'chloe@contoso.fr' }] });
    // Throttling twice: a plain request (the delta read) answered 429, and one create inside a 200 $batch.
    s.emulator.admin.injectFault(ANNA, { status: 429, count: 1, method: 'GET', pathPattern: 'delta', retryAfterSeconds: 1 });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Noah', 'Keller', 'noah@x.org')`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 429, count: 1, method: 'POST', pathPattern: '/contacts$', retryAfterSeconds: 1 });
    const inCrm = async (last: string) => (await sql`select 1 from crm.contacts where last_name = ${last}`.execute(s.db)).rows.length > 0;
    await syncUntil(async () => inOutlook('Keller') && (await inCrm('Martin')), 'Keller in Outlook and Martin in the CRM');
    assert.ok(s.emulator.throttledCount(ANNA) >= 2, 'both 429s were answered');
    // The same field edited on both sides: a conflict under the default rule (at once, or after the CRM write's
    // version check gave the Outlook edit back when the CRM edit was read a cycle late).
    const weber = s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Weber')!;
    s.emulator.admin.updateContact(ANNA, weber.id, { jobTitle: 'Buyer' });
    await sql`update crm.contacts set job_title = 'Head of Purchasing' where last_name = 'Weber'`.execute(s.db);
    await syncUntil(async () => total((await scrape(server.url)).samples, 'cxsync_conflicts_total') > total(before, 'cxsync_conflicts_total'), 'the conflict');

    const after = (await scrape(server.url)).samples;
    const moved = (name: string, match: Record<string, string> = {}) => total(after, name, match) - total(before, name, match);
    const cycles = moved('cxsync_cycles_total', { outcome: 'completed' });
    assert.ok(cycles >= 3, `${cycles} completed cycles`);
    assert.equal(moved('cxsync_cycles_total'), cycles, 'none interrupted or failed');
    assert.equal(moved('cxsync_cycle_duration_seconds_count', { outcome: 'completed' }), cycles);
    assert.ok(moved('cxsync_cycle_duration_seconds_sum', { outcome: 'completed' }) > 0);
    assert.equal(moved('cxsync_items_written_total', { record_type: 'contact', side: 'exchange', operation: 'create' }), 3, 'Weber, Rossi, Keller');
    assert.equal(moved('cxsync_items_written_total', { record_type: 'contact', side: 'crm', operation: 'create' }), 1, 'Martin');
    assert.equal(moved('cxsync_items_written_total', { record_type: 'contact', operation: 'update' }), 1, 'the conflict winner written to the other side');
    assert.equal(moved('cxsync_conflicts_total', { record_type: 'contact', kind: 'edit' }), 1);
    assert.equal(moved('cxsync_items_skipped_total', { record_type: 'contact', side: 'crm' }), 1, 'the invalid email');
    assert.equal(moved('cxsync_items_failed_total'), 0);
    assert.ok(moved('cxsync_graph_requests_total', { status: '429' }) >= 1, 'the throttled delta read');
    assert.ok(moved('cxsync_graph_requests_total', { status: '200' }) > 0);
    assert.ok(moved('cxsync_graph_batch_operations_total', { status: '429' }) >= 1, 'the throttled create inside its batch');
    assert.ok(moved('cxsync_graph_batch_operations_total', { status: '201' }) >= 3);
    assert.ok(moved('cxsync_graph_throttle_pause_seconds_total') >= 1, "the Retry-After closed the mailbox's gate");
    assert.ok(moved('cxsync_graph_gate_wait_seconds_count') > 0);
    assert.ok(moved('cxsync_graph_request_duration_seconds_count') > 0);
    assert.equal(total(after, 'cxsync_mailboxes', { state: 'idle' }), 1);
    for (const side of ['exchange', 'crm']) assert.equal(total(after, 'cxsync_sync_lag_seconds', { record_type: 'contact', side }), 0, 'nothing left unapplied');
  });

  it('sync lag grows while a change cannot be written, and falls back to 0 once it is', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Late', 'Arrival', 'late@x.org')`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 503, count: 1000, method: 'POST', pathPattern: '/contacts$', retryAfterSeconds: 1 });
    // A cycle that ended before the change could be read is followed by another.
    const cycling = async () => {
      if ((await s.operator.status(ANNA)).state === 'idle') await s.operator.syncNow(ANNA);
    };
    const stuck = await eventually(
      async () => {
        await cycling();
        return (await scrape(server.url)).samples;
      },
      (x) => total(x, 'cxsync_sync_lag_seconds', { record_type: 'contact', side: 'crm' }) >= 2,
      'the CRM change to wait in staging for 2 s',
    );
    assert.equal(total(stuck, 'cxsync_mailboxes', { state: 'syncing' }), 1, 'the mailbox has an open cycle');
    assert.ok(!inOutlook('Arrival'));
    s.emulator.admin.clearFaults(ANNA);
    await eventually(() => s.operator.status(ANNA), (x) => x.state === 'idle' && inOutlook('Arrival'), 'the cycle to write it and finish');
    const done = (await scrape(server.url)).samples;
    assert.equal(total(done, 'cxsync_sync_lag_seconds', { record_type: 'contact', side: 'crm' }), 0);
    assert.ok(total(done, 'cxsync_graph_batch_operations_total', { status: '503' }) >= 1);
  });

  it('a mailbox in needs-attention is counted as such, and a failed cycle by its outcome, until it is resumed', async () => {
    await s.addUser(BROKEN);
    await s.operator.createPolicy('fragile', {});
    await s.operator.enroll(BROKEN, { policy: 'fragile' });
    await s.operator.syncNow(BROKEN, { wait: true });
    const before = (await scrape(server.url)).samples;
    await sql`update sync.policy set settings = '{"contact":{"direction":"sideways"}}'::jsonb where name = 'fragile'`.execute(s.db);
    await assert.rejects(s.operator.syncNow(BROKEN, { wait: true }), /needs attention/);
    // The status says needs-attention as soon as the workflow decides it; the cycle is counted when its closing
    // activity has run, a moment later.
    const failedCycles = (x: typeof before) => total(x, 'cxsync_cycles_total', { outcome: 'failed' }) - total(before, 'cxsync_cycles_total', { outcome: 'failed' });
    const failing = await eventually(async () => (await scrape(server.url)).samples, (x) => failedCycles(x) >= 1, 'the failed cycle to be closed');
    assert.equal(total(failing, 'cxsync_mailboxes', { state: 'needs-attention' }), 1);
    assert.equal(total(failing, 'cxsync_mailboxes'), 2, 'every enrolled mailbox in exactly one state');
    assert.equal(failedCycles(failing), 1);

    await s.operator.updatePolicy('fragile', { contact: { direction: 'both' } });
    await s.operator.resume(BROKEN);
    const resumed = (await scrape(server.url)).samples;
    assert.equal(total(resumed, 'cxsync_mailboxes', { state: 'needs-attention' }), 1, 'as documented: until its next cycle starts');
    // The next cycle's first step (called here as the workflow calls it) reopens the failed cycle: syncing again.
    const activities = createMailboxActivities({ db: s.db, adapters: {} as never, settings: DEFAULT_ACTIVITY_SETTINGS });
    assert.equal((await activities.startCycle(BROKEN)).resumed, true);
    const reopened = (await scrape(server.url)).samples;
    assert.equal(total(reopened, 'cxsync_mailboxes', { state: 'needs-attention' }), 0);
    assert.equal(total(reopened, 'cxsync_mailboxes', { state: 'syncing' }), 1);
    await s.operator.syncNow(BROKEN, { wait: true });
    const healed = (await scrape(server.url)).samples;
    assert.equal(total(healed, 'cxsync_mailboxes', { state: 'needs-attention' }), 0);
    assert.equal(total(healed, 'cxsync_mailboxes', { state: 'idle' }), 2);
  });

  it("the Temporal SDK's endpoint exports every SDK metric the dashboard and alerts use", async () => {
    const { samples } = await scrape(sdkUrl);
    const names = new Set(samples.map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
    for (const n of TEMPORAL_SDK_METRICS) assert.ok(names.has(n), `${n} is exported by the SDK (it exports: ${[...names].sort().join(', ')})`);
  });
});

async function eventually<T>(fn: () => Promise<T>, check: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
