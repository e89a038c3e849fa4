/**
 * cxsync's own Prometheus metrics (prom-client), recorded by the activities and read by the worker's metrics
 * endpoint (src/worker/metrics.ts). Names follow Prometheus conventions: `cxsync_` prefix, `_total` counters,
 * durations in `_seconds`. Labels stay bounded (record type, side, operation, outcome, HTTP status, state): never
 * a mailbox, an item or anything a record holds, so the endpoint carries no personal data and no cardinality
 * that grows with the fleet. docs/OPERATIONS.md ("Metrics") explains each one.
 *
 * Recording never fails an activity: a metric is an observation, the sync goes on without it.
 */
import { performance } from 'node:perf_hooks';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/connection';
import { MetricsStore, type FinishedOperations } from '../db/metrics-store';
import type { CycleOutcome } from '../domain/status';

export const registry = new Registry();

const cycles = new Counter({
  name: 'cxsync_cycles_total',
  help: 'Sync cycles finished, by outcome: completed, interrupted (paused mid-cycle), failed (the mailbox went to needs-attention).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

const cycleDuration = new Histogram({
  name: 'cxsync_cycle_duration_seconds',
  help: "Wall time of a sync cycle from its start to its finish, by outcome (a resumed cycle's pause included).",
  labelNames: ['outcome'] as const,
  buckets: [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200],
  registers: [registry],
});

const itemsWritten = new Counter({
  name: 'cxsync_items_written_total',
  help: 'Items written by the sync, by record type, the side written to (exchange, crm) and operation (create, update, delete).',
  labelNames: ['record_type', 'side', 'operation'] as const,
  registers: [registry],
});

const itemsFailed = new Counter({
  name: 'cxsync_items_failed_total',
  help: 'Planned writes marked failed (refused for this item, or failing until the attempt limit): logged, the cycle went on.',
  labelNames: ['record_type', 'side', 'operation'] as const,
  registers: [registry],
});

const itemsReplanned = new Counter({
  name: 'cxsync_items_replanned_total',
  help: 'Planned writes not applied because the item changed after planning (Graph 412, CRM version check): planned again.',
  labelNames: ['record_type', 'side'] as const,
  registers: [registry],
});

const itemsSkipped = new Counter({
  name: 'cxsync_items_skipped_total',
  help: 'Changes the plan logged and skipped (invalid item, field over its limit, changed under too many write attempts), by the side they were read from.',
  labelNames: ['record_type', 'side'] as const,
  registers: [registry],
});

const conflicts = new Counter({
  name: 'cxsync_conflicts_total',
  help: 'Conflicts recorded by the plan, by record type and kind: edit (same field on both sides), delete-vs-update, merge-by-email, left-scope.',
  labelNames: ['record_type', 'kind'] as const,
  registers: [registry],
});

const graphRequests = new Counter({
  name: 'cxsync_graph_requests_total',
  help: 'HTTP requests sent to Microsoft Graph (a $batch counts once), by response status; "network" when no answer came.',
  labelNames: ['status'] as const,
  registers: [registry],
});

const graphRequestDuration = new Histogram({
  name: 'cxsync_graph_request_duration_seconds',
  help: 'Time from sending a Microsoft Graph HTTP request to its answer.',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  registers: [registry],
});

const graphBatchOperations = new Counter({
  name: 'cxsync_graph_batch_operations_total',
  help: 'Operations inside answered $batch requests, by their own status (a 200 batch can hold 429s).',
  labelNames: ['status'] as const,
  registers: [registry],
});

const gateWait = new Histogram({
  name: 'cxsync_graph_gate_wait_seconds',
  help: "Time a Graph call waited at its mailbox's gate before it was sent: 4 requests in flight, 10,000 per 10 minutes, a 429's Retry-After.",
  buckets: [0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
  registers: [registry],
});

const throttlePause = new Counter({
  name: 'cxsync_graph_throttle_pause_seconds_total',
  help: "Time mailboxes' gates were held closed by Graph's Retry-After (429): nothing was sent to them meanwhile.",
  registers: [registry],
});

const collectFailures = new Counter({
  name: 'cxsync_metrics_collect_failures_total',
  help: 'Scrapes whose database read for the fleet gauges (mailboxes by state, sync lag) failed; those gauges were left out.',
  registers: [registry],
});

let store: MetricsStore | undefined;
/** One database read per scrape serves both fleet gauges. */
let pending: ReturnType<MetricsStore['snapshot']> | undefined;
function snapshot() {
  pending ??= store!.snapshot().finally(() => (pending = undefined));
  return pending;
}

new Gauge({
  name: 'cxsync_mailboxes',
  help: 'Enrolled mailboxes by state (idle, syncing, paused, needs-attention), as PostgreSQL records it: a mailbox paused between cycles counts as idle.',
  labelNames: ['state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    if (!store) return;
    try {
      const s = await snapshot();
      for (const [state, n] of Object.entries(s.mailboxes)) this.set({ state }, n);
    } catch {
      collectFailures.inc();
    }
  },
});

new Gauge({
  name: 'cxsync_sync_lag_seconds',
  help: 'Age of the oldest change read and not yet on the other side (still staged), by record type and the side it was read from; 0 when none.',
  labelNames: ['record_type', 'side'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    if (!store) return;
    try {
      for (const l of (await snapshot()).lag) this.set({ record_type: l.recordType, side: l.side }, l.seconds);
    } catch {
      // counted once, by the mailboxes gauge
    }
  },
});

/** The database the fleet gauges read (the worker's). */
export function observeDatabase(db: Db): void {
  store = new MetricsStore(db);
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* an observation only */
  }
}

export function recordCycle(outcome: CycleOutcome, seconds: number): void {
  safely(() => {
    cycles.inc({ outcome });
    cycleDuration.observe({ outcome }, Math.max(0, seconds));
  });
}

/** Bounded label for a conflict's rule (reconcile.ts writes rules as text with the policy's settings in it). */
export function conflictKind(rule: string): string {
  if (rule.startsWith('conflict:')) return 'edit';
  if (rule.startsWith('delete-vs-update')) return 'delete-vs-update';
  if (rule.startsWith('merge by email')) return 'merge-by-email';
  if (rule.startsWith('left scope')) return 'left-scope';
  return 'other';
}

/** What one committed plan recorded: its conflicts, and the items it logged as skipped. */
export function recordPlan(recordType: string, plan: { conflicts: Array<{ rule: string }>; notes: Array<{ level: string; side?: string; message: string }> }): void {
  safely(() => {
    for (const c of plan.conflicts) conflicts.inc({ record_type: recordType, kind: conflictKind(c.rule) });
    for (const n of plan.notes) {
      if (n.level === 'error' && n.message.startsWith('skipped:')) itemsSkipped.inc({ record_type: recordType, side: n.side ?? 'unknown' });
    }
  });
}

export function recordFinished(recordType: string, rows: FinishedOperations[]): void {
  safely(() => {
    for (const r of rows) {
      if (r.side !== 'exchange' && r.side !== 'crm') continue; // mapping-only operations write to neither side
      if (r.status === 'done') itemsWritten.inc({ record_type: recordType, side: r.side, operation: r.kind }, r.n);
      else if (r.status === 'failed') itemsFailed.inc({ record_type: recordType, side: r.side, operation: r.kind }, r.n);
      else if (r.replanned) itemsReplanned.inc({ record_type: recordType, side: r.side }, r.n);
      else itemsSkipped.inc({ record_type: recordType, side: r.side }, r.n);
    }
  });
}

/**
 * Counts what one apply attempt finished, after it ran (committed or not, what is in the database is what was
 * done): every way an operation ends — written, refused, given back, marked failed — is counted in one place.
 */
export async function countApplied(db: Db, step: { cycleId: string; recordType: string }, since: Date): Promise<void> {
  try {
    recordFinished(step.recordType, await new MetricsStore(db).finishedSince(step.cycleId, step.recordType, since));
  } catch {
    /* the database is unreachable: the activity's own error says so */
  }
}

/** A resumed cycle runs again: the state gauge must stop reading it as paused or needs-attention. */
export function reopenCycle(db: Db, cycleId: string): Promise<void> {
  return new MetricsStore(db).reopenCycle(cycleId);
}

export function recordGraphResponse(status: number | 'network', seconds: number): void {
  safely(() => {
    graphRequests.inc({ status: String(status) });
    graphRequestDuration.observe(seconds);
  });
}

export function recordBatchOperations(statuses: number[]): void {
  safely(() => {
    for (const s of statuses) graphBatchOperations.inc({ status: s > 0 ? String(s) : 'none' });
  });
}

export function recordGateWait(seconds: number): void {
  safely(() => gateWait.observe(seconds));
}

export function recordThrottlePause(seconds: number): void {
  safely(() => throttlePause.inc(seconds));
}

/**
 * Graph client middleware, placed just before the HTTP handler so each request really sent is counted once with
 * the status it got (the client's own handlers turn statuses into errors only after the chain).
 */
export class GraphMetricsHandler implements Middleware {
  private next: Middleware | undefined;

  async execute(context: Context): Promise<void> {
    const started = performance.now();
    try {
      await this.next!.execute(context);
    } catch (err) {
      recordGraphResponse('network', (performance.now() - started) / 1000);
      throw err;
    }
    recordGraphResponse(context.response?.status ?? 'network', (performance.now() - started) / 1000);
  }

  setNext(next: Middleware): void {
    this.next = next;
  }
}
