/** Injected transient faults, per mailbox, consumed by the requests they match. */

export interface FaultSpec {
  status: number;
  count: number;
  method?: string;
  /** Regular expression tested against the request path and query, e.g. '/contacts$' or 'delta'. */
  pathPattern?: string;
  retryAfterSeconds?: number;
  /** Perform the request, then answer with the fault anyway: a write that succeeded but whose answer was lost. */
  applyThenFail?: boolean;
}

interface ArmedFault extends FaultSpec {
  regex?: RegExp;
}

export class Faults {
  private byMailbox = new Map<string, ArmedFault[]>();
  private latency = new Map<string, number>();

  /** Added delay for every Graph request to one mailbox (0 removes it). */
  setLatency(mailboxKey: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error('latency must be a non-negative number of milliseconds');
    if (ms === 0) this.latency.delete(mailboxKey);
    else this.latency.set(mailboxKey, ms);
  }

  latencyFor(mailboxKey: string): number {
    return this.latency.get(mailboxKey) ?? 0;
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
    } else {
      this.byMailbox.delete(mailboxKey);
      this.latency.delete(mailboxKey);
    }
  }

  /** The first armed fault matching this request, with one use consumed. */
  take(mailboxKey: string, method: string, pathAndQuery: string): FaultSpec | undefined {
    const list = this.byMailbox.get(mailboxKey);
    if (!list) return undefined;
    const i = list.findIndex((f) => (!f.method || f.method.toUpperCase() === method.toUpperCase()) && (!f.regex || f.regex.test(pathAndQuery)));
    if (i < 0) return undefined;
    const f = list[i];
    if (--f.count <= 0) list.splice(i, 1);
    return f;
  }
}
