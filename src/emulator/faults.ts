/** Injected transient faults, per mailbox, consumed by the requests they match. */
import { prng } from '../util/prng';

export interface FaultSpec {
  status: number;
  count: number;
  method?: string;
  /** Regular expression tested against the request path and query, e.g. '/contacts$' or 'delta'. */
  pathPattern?: string;
  retryAfterSeconds?: number;
  /** Perform the request, then answer with the fault anyway: a write that succeeded but whose answer was lost. */
  applyThenFail?: boolean;
  /** The error's message (default "Injected fault <status>."): Graph's messages can echo the values a request sent. */
  message?: string;
}

/**
 * Random faults: each Graph operation on the mailbox (a $batch sub-request included) fails with probability
 * `rate`, with a status drawn from `statuses`. A failed write is performed anyway with probability
 * `applyThenFail` (only for 5xx statuses: a 429 is refused before any work). Seeded, so a run can be replayed.
 */
export interface ChaosSpec {
  rate: number;
  statuses?: number[];
  applyThenFail?: number;
  retryAfterSeconds?: number;
  seed?: number;
}

interface ArmedFault extends FaultSpec {
  regex?: RegExp;
}


export class Faults {
  private byMailbox = new Map<string, ArmedFault[]>();
  private latency = new Map<string, { ms: number; jitterMs: number }>();
  private chaos = new Map<string, ChaosSpec & { random: () => number }>();
  private jitterRandom = prng(1);

  /** Added delay for every Graph request to one mailbox: `ms` plus a uniform random share of `jitterMs` (0, 0 removes it). */
  setLatency(mailboxKey: string, ms: number, jitterMs = 0): void {
    if (!Number.isFinite(ms) || ms < 0 || !Number.isFinite(jitterMs) || jitterMs < 0) throw new Error('latency must be a non-negative number of milliseconds');
    if (ms === 0 && jitterMs === 0) this.latency.delete(mailboxKey);
    else this.latency.set(mailboxKey, { ms, jitterMs });
  }

  latencyFor(mailboxKey: string): number {
    const l = this.latency.get(mailboxKey);
    if (!l) return 0;
    return l.ms + (l.jitterMs ? Math.floor(this.jitterRandom() * l.jitterMs) : 0);
  }

  setChaos(mailboxKey: string, spec: ChaosSpec | null): void {
    if (!spec || !spec.rate) {
      this.chaos.delete(mailboxKey);
      return;
    }
    if (!(spec.rate > 0 && spec.rate <= 1)) throw new Error('chaos rate must be in (0, 1]');
    const statuses = spec.statuses ?? [429, 503, 504];
    if (!statuses.length || statuses.some((s) => !Number.isInteger(s) || s < 400)) throw new Error('chaos statuses must be HTTP error statuses');
    this.chaos.set(mailboxKey, { ...spec, statuses, random: prng(spec.seed ?? 42) });
  }

  /** A random fault for one operation, or undefined. */
  roll(mailboxKey: string, method: string): FaultSpec | undefined {
    const c = this.chaos.get(mailboxKey);
    if (!c || c.random() >= c.rate) return undefined;
    const statuses = c.statuses!;
    const status = statuses[Math.floor(c.random() * statuses.length)];
    const write = method !== 'GET';
    const applyThenFail = write && status >= 500 && c.random() < (c.applyThenFail ?? 0);
    return { status, count: 1, retryAfterSeconds: c.retryAfterSeconds ?? 1, applyThenFail };
  }

  add(mailboxKey: string, spec: FaultSpec): void {
    if (!Number.isInteger(spec.status) || spec.status < 400 || !Number.isInteger(spec.count) || spec.count < 1) {
      throw new Error('a fault needs an HTTP error status (>= 400) and a positive count');
    }
    const list = this.byMailbox.get(mailboxKey) ?? [];
    list.push({ ...spec, regex: spec.pathPattern ? new RegExp(spec.pathPattern, 'i') : undefined });
    this.byMailbox.set(mailboxKey, list);
  }

  clear(mailboxKey?: string): void {
    if (mailboxKey === undefined) {
      this.byMailbox.clear();
      this.latency.clear();
      this.chaos.clear();
    } else {
      this.byMailbox.delete(mailboxKey);
      this.latency.delete(mailboxKey);
      this.chaos.delete(mailboxKey);
    }
  }

  /** The first armed fault matching this request, with one use consumed; else a random one (chaos), if any. */
  take(mailboxKey: string, method: string, pathAndQuery: string): FaultSpec | undefined {
    const list = this.byMailbox.get(mailboxKey);
    if (!list) return this.roll(mailboxKey, method);
    const i = list.findIndex((f) => (!f.method || f.method.toUpperCase() === method.toUpperCase()) && (!f.regex || f.regex.test(pathAndQuery)));
    if (i < 0) return this.roll(mailboxKey, method);
    const f = list[i];
    if (--f.count <= 0) list.splice(i, 1);
    return f;
  }
}
