/**
 * Graph calls through the mailbox's gate, and JSON batching (json-batching.md): up to 20 operations per
 * request, no `dependsOn` (Outlook then runs up to 4 of them in parallel, which is the mailbox's whole
 * concurrency, so one batch is in flight per mailbox), one status per operation. A batch request that fails
 * as a whole (429, 5xx, network) stands for a failure of each of its operations, so callers handle one shape.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { classifyGraphError, classifySubResponse, type ClassifiedGraphError } from './errors';
import { gateFor } from './gate';
import { recordBatchOperations } from '../metrics';

export const BATCH_LIMIT = 20;

export interface GraphSubRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Relative to the version root, e.g. /users/{upn}/contacts/{id}. */
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * A batch operation's url must be relative to the version root (json-batching.md), but Graph's nextLinks are
 * absolute (paging.md): drop the origin and version, keep the rest byte for byte (the link is opaque).
 */
export function versionRelativeUrl(link: string): string {
  return link.replace(/^https?:\/\/[^/]+\/(?:v1\.0|beta)(?=[/?]|$)/i, '') || '/';
}

export interface GraphSubResponse {
  /** 0 when the batch request itself got no answer (network). */
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

export const isSuccess = (r: GraphSubResponse) => r.status >= 200 && r.status < 300;

/**
 * What a call meets when the mailbox's own budget would hold it longer than MAX_IN_ACTIVITY_WAIT_MS: shaped
 * like Graph's 429, so it is classified the same way and its Retry-After becomes the activity's retry delay.
 */
export class BudgetExhausted extends Error {
  readonly statusCode = 429;
  readonly code = 'ClientThrottled';
  readonly headers: Record<string, string>;
  constructor(readonly waitMs: number) {
    super(`the mailbox's request budget is spent for ${Math.ceil(waitMs / 1000)} s (client-side pacing of Outlook's limit)`);
    this.headers = { 'retry-after': String(Math.ceil(waitMs / 1000)) };
  }
}

/** Throws BudgetExhausted when the mailbox's budget would hold `requests` longer than an activity waits. */
function withinBudget(gate: ReturnType<typeof gateFor>, requests: number): void {
  const wait = gate.estimateWait(requests);
  if (wait > MAX_IN_ACTIVITY_WAIT_MS) throw new BudgetExhausted(wait);
}

/** One plain Graph call, counted against the mailbox's limits; a 429 pauses the mailbox's gate. */
export async function gated<T>(mailbox: string, fn: () => Promise<T>): Promise<T> {
  const gate = gateFor(mailbox);
  withinBudget(gate, 1);
  try {
    return await gate.run({ permits: 1, requests: 1 }, fn);
  } catch (err) {
    const g = classifyGraphError(err);
    if (g.kind === 'throttled' && g.retryAfterMs) gate.pauseFor(g.retryAfterMs);
    throw err;
  }
}

/**
 * Sends up to 20 operations as one $batch; the answers come back in the order of `requests`. Throws
 * BudgetExhausted, sending nothing, when the mailbox's budget would hold the batch longer than an activity waits.
 */
export async function sendBatch(client: Client, mailbox: string, requests: GraphSubRequest[]): Promise<GraphSubResponse[]> {
  if (requests.length === 0) return [];
  if (requests.length > BATCH_LIMIT) throw new Error(`a $batch holds at most ${BATCH_LIMIT} requests, got ${requests.length}`);
  const gate = gateFor(mailbox);
  withinBudget(gate, requests.length);
  const payload = {
    requests: requests.map((r, i) => ({
      id: String(i + 1),
      method: r.method,
      url: r.url,
      ...(r.body !== undefined || r.headers ? { headers: { ...(r.body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...r.headers } } : {}),
      ...(r.body !== undefined ? { body: r.body } : {}),
    })),
  };
  let answers: GraphSubResponse[];
  try {
    const res = (await gate.run({ permits: requests.length, requests: requests.length }, () => client.api('/$batch').post(payload))) as {
      responses?: Array<{ id: string; status: number; headers?: Record<string, string>; body?: unknown }>;
    };
    const byId = new Map((res.responses ?? []).map((r) => [String(r.id), r]));
    answers = requests.map((_, i) => {
      const r = byId.get(String(i + 1));
      return r ? { status: r.status, headers: r.headers ?? {}, body: r.body } : { status: 0, headers: {}, body: { error: { code: 'MissingResponse', message: 'no answer for this request in the batch' } } };
    });
    recordBatchOperations(answers.map((a) => a.status));
  } catch (err) {
    // Every request of the batch gets the batch's answer (a 401/403 or a token refused included), so each caller
    // classifies it as it classifies one item's answer, with its record type (a 403 stops that type only).
    const g = classifyGraphError(err);
    const headers: Record<string, string> = g.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(g.retryAfterMs / 1000)) } : {};
    const status = g.status > 0 ? g.status : 0;
    answers = requests.map(() => ({ status, headers, body: { error: { code: g.code || 'BatchFailed', message: g.message } } }));
  }
  // Any 429 inside the batch pauses the mailbox for its Retry-After.
  let pause = 0;
  for (const a of answers) {
    if (a.status === 429) pause = Math.max(pause, classifySubResponse(a).retryAfterMs ?? 0);
  }
  if (pause > 0) gate.pauseFor(pause);
  return answers;
}

export interface BatchOutcome<K> {
  key: K;
  response: GraphSubResponse;
  /** Set for a failed operation. */
  error?: ClassifiedGraphError;
}

/** Waits longer than this are not spent inside an activity: the caller stops and Temporal retries later. */
export const MAX_IN_ACTIVITY_WAIT_MS = 30_000;

export interface BatchRun<K> {
  /** Operations not sent: `onBatch` asked to stop, or the mailbox's budget would have made them wait too long. */
  unsent: Array<{ key: K; request: GraphSubRequest }>;
  /** Set when the budget stopped the run: how long until it allows the next batch. */
  waitMs?: number;
}

/**
 * Runs operations 20 at a time, one batch after another, and hands each batch's outcomes to `onBatch` before
 * the next is sent (so progress is saved as it is made). Stops early when `onBatch` says so (e.g. after a
 * throttling answer with a long Retry-After) or when the mailbox's request budget is spent for longer than
 * MAX_IN_ACTIVITY_WAIT_MS.
 */
export async function runBatched<K>(
  client: Client,
  mailbox: string,
  items: Array<{ key: K; request: GraphSubRequest }>,
  onBatch: (outcomes: BatchOutcome<K>[]) => Promise<'stop' | void>,
  /** Called right before a batch is sent (e.g. to count create attempts: only what is really sent). */
  beforeBatch?: (keys: K[]) => Promise<void>,
): Promise<BatchRun<K>> {
  const gate = gateFor(mailbox);
  for (let i = 0; i < items.length; i += BATCH_LIMIT) {
    const chunk = items.slice(i, i + BATCH_LIMIT);
    const wait = gate.estimateWait(chunk.length);
    if (wait > MAX_IN_ACTIVITY_WAIT_MS) return { unsent: items.slice(i), waitMs: wait };
    await beforeBatch?.(chunk.map((c) => c.key));
    const answers = await sendBatch(client, mailbox, chunk.map((c) => c.request));
    const outcomes = chunk.map((c, j) => ({ key: c.key, response: answers[j], ...(isSuccess(answers[j]) ? {} : { error: classifySubResponse(answers[j]) }) }));
    if ((await onBatch(outcomes)) === 'stop') return { unsent: items.slice(i + BATCH_LIMIT) };
  }
  return { unsent: [] };
}
