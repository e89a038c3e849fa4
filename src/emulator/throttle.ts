/**
 * Outlook's per-app, per-mailbox limits: 10,000 requests per 10 minutes and 4 concurrent requests.
 * Enforced so that cxsync meets the same 429s locally that it will meet in production.
 */
import { GraphHttpError } from './errors';

export interface ThrottleLimits {
  /** Requests per mailbox in any window (10 minutes unless `windowMs` says otherwise); 0 disables. */
  requestsPer10Minutes: number;
  /** Requests in flight per mailbox; 0 disables. */
  concurrentRequests: number;
  /** The rate window, default 10 minutes; benchmarks scale it down with the limit (same rate, shorter runs). */
  windowMs?: number;
}

const WINDOW_MS = 10 * 60 * 1000;

export class Throttle {
  private recent = new Map<string, number[]>();
  private inFlight = new Map<string, number>();

  constructor(private readonly limits: ThrottleLimits) {}

  /** Counts one request against the rate limit, or throws the 429 Graph would answer. */
  admit(mailboxKey: string, now = Date.now()): void {
    const max = this.limits.requestsPer10Minutes;
    if (!max) return;
    const windowMs = this.limits.windowMs ?? WINDOW_MS;
    let times = this.recent.get(mailboxKey);
    if (!times) this.recent.set(mailboxKey, (times = []));
    // Oldest first: drop what left the window (a single splice, not a scan per request).
    let expired = 0;
    while (expired < times.length && times[expired] <= now - windowMs) expired++;
    if (expired) times.splice(0, expired);
    if (times.length >= max) {
      const retryAfter = Math.max(1, Math.ceil((times[0] + windowMs - now) / 1000));
      throw new GraphHttpError(429, 'ApplicationThrottled', 'Application is over its request limit for this mailbox.', { 'Retry-After': String(retryAfter) });
    }
    times.push(now);
  }

  /** Marks a request in flight; the returned function ends it. Throws 429 over the concurrency limit. */
  enter(mailboxKey: string): () => void {
    const max = this.limits.concurrentRequests;
    const n = this.inFlight.get(mailboxKey) ?? 0;
    if (max && n >= max) {
      throw new GraphHttpError(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'Retry-After': '1' });
    }
    this.inFlight.set(mailboxKey, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight.set(mailboxKey, (this.inFlight.get(mailboxKey) ?? 1) - 1);
    };
  }

  reset(): void {
    this.recent.clear();
  }
}
