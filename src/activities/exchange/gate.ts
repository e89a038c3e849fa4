/**
 * Outlook's limits per app and mailbox, kept on the client side so cxsync meets them instead of collecting
 * 429s: at most 4 requests in flight, and at most 10,000 requests in any 10 minutes (throttling-limits.md).
 * Every Graph call of a mailbox goes through its gate. A JSON batch costs one request per operation (Graph
 * evaluates each against the limits) and occupies up to 4 slots, because Outlook runs up to 4 operations of a
 * batch in parallel.
 *
 * The rate window is counted conservatively: a request counts from the moment it is sent until one window
 * after its answer arrived (the server counted it somewhere in between), so the client's window never holds
 * fewer requests than the server's. The gate is per worker process: a mailbox is worked on by one activity at
 * a time, so that is enough; the rare overlap (an abandoned attempt still running elsewhere) meets a 429, whose
 * Retry-After then pauses the gate and becomes the activity's retry delay.
 */
import { recordGateWait, recordThrottlePause } from '../metrics';

export interface MailboxLimits {
  concurrency: number;
  requestsPerWindow: number;
  windowMs: number;
}

export const OUTLOOK_LIMITS: MailboxLimits = { concurrency: 4, requestsPerWindow: 10_000, windowMs: 10 * 60_000 };

let limits: MailboxLimits = { ...OUTLOOK_LIMITS };

/** Replaces the limits for gates created afterwards (benchmarks and tests that scale the window down). */
export function configureMailboxLimits(l: Partial<MailboxLimits>): void {
  limits = { ...limits, ...l };
  gates.clear();
}

export function mailboxLimits(): MailboxLimits {
  return { ...limits };
}

interface Waiter {
  permits: number;
  requests: number;
  resolve: () => void;
}

export class MailboxGate {
  private inFlight = 0;
  private pendingRequests = 0;
  /** [answer time, requests] of answered requests still inside the window, oldest first. */
  private answered: Array<[number, number]> = [];
  private answeredCount = 0;
  private queue: Waiter[] = [];
  private blockedUntil = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly limits: MailboxLimits) {}

  /** Runs `fn` once `requests` fit in the rate window and `permits` slots are free; FIFO. */
  async run<T>(cost: { permits: number; requests: number }, fn: () => Promise<T>): Promise<T> {
    const permits = Math.max(1, Math.min(cost.permits, this.limits.concurrency));
    const requests = Math.max(1, Math.min(cost.requests, this.limits.requestsPerWindow));
    const queued = Date.now();
    await new Promise<void>((resolve) => {
      this.queue.push({ permits, requests, resolve });
      this.pump();
    });
    recordGateWait((Date.now() - queued) / 1000);
    try {
      return await fn();
    } finally {
      this.inFlight -= permits;
      this.pendingRequests -= requests;
      this.answered.push([Date.now(), requests]);
      this.answeredCount += requests;
      this.pump();
    }
  }

  /** A 429's Retry-After: nothing more is sent to this mailbox before then. */
  pauseFor(ms: number): void {
    const now = Date.now();
    // Only the time this pause adds counts: overlapping Retry-Afters of one batch are one wait.
    if (now + ms > this.blockedUntil) recordThrottlePause((now + ms - Math.max(this.blockedUntil, now)) / 1000);
    this.blockedUntil = Math.max(this.blockedUntil, now + ms);
  }

  /**
   * Roughly how long a call of this cost would wait now (ignoring calls queued before it): a long wait is
   * better spent as a Temporal retry delay than inside an activity.
   */
  estimateWait(requests: number, now = Date.now()): number {
    this.expire(now);
    let wait = Math.max(0, this.blockedUntil - now);
    const over = this.answeredCount + this.pendingRequests + Math.min(requests, this.limits.requestsPerWindow) - this.limits.requestsPerWindow;
    if (over > 0) {
      let freed = 0;
      for (const [at, n] of this.answered) {
        freed += n;
        if (freed >= over) {
          wait = Math.max(wait, at + this.limits.windowMs - now);
          break;
        }
      }
    }
    return wait;
  }

  /** Requests counted in the current window (answered + in flight). */
  used(now = Date.now()): number {
    this.expire(now);
    return this.answeredCount + this.pendingRequests;
  }

  private expire(now: number): void {
    while (this.answered.length && this.answered[0][0] <= now - this.limits.windowMs) {
      this.answeredCount -= this.answered.shift()![1];
    }
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      const now = Date.now();
      if (now < this.blockedUntil) return this.wake(this.blockedUntil - now);
      if (this.inFlight + head.permits > this.limits.concurrency) return; // a finishing request pumps again
      this.expire(now);
      const over = this.answeredCount + this.pendingRequests + head.requests - this.limits.requestsPerWindow;
      if (over > 0) {
        // Wait until enough answered requests leave the window; in-flight ones will be answered first.
        let freed = 0;
        for (const [at, n] of this.answered) {
          freed += n;
          if (freed >= over) return this.wake(at + this.limits.windowMs - now + 1);
        }
        return; // only in-flight requests fill the window: their answers pump again
      }
      this.queue.shift();
      this.inFlight += head.permits;
      this.pendingRequests += head.requests;
      head.resolve();
    }
  }

  private wake(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, ms));
  }
}

const gates = new Map<string, MailboxGate>();

export function gateFor(mailbox: string): MailboxGate {
  const key = mailbox.toLowerCase();
  let g = gates.get(key);
  if (!g) {
    g = new MailboxGate(limits);
    gates.set(key, g);
  }
  return g;
}
