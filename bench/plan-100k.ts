/**
 * Benchmark (issue 8, "planning 100,000 items must not starve heartbeats"): the planner's CPU time for 100,000
 * contacts in one cycle, and the longest stretch the event loop is blocked while it runs, as the plan activity
 * runs it (one synchronous planCycle call after a yield). A worker heartbeats from the same event loop, so the
 * longest block must stay well below the activities' heartbeat timeout (15 s, src/workflows/mailbox.ts).
 *
 *   npx tsx bench/plan-100k.ts [--items 100000]
 *
 * Three mixes, each 100,000 staged items: a first sync (all new on both sides, half matching by email under
 * mergeByEmail), a steady cycle (all mapped, edited on both sides, field-level merge against the base), and a
 * mass delete (every mapped CRM record removed; the emptied-side guard holds it). Results: docs/BENCHMARKS.md.
 */
import { fromCrmContact, fromGraphContact, type CrmContactFields, type GraphContact } from '../src/domain/contact';
import { planCycle, planCycleSteps, type StagedItem } from '../src/domain/planning';
import { runStepsYielding } from '../src/activities/yielding';
import { BUILTIN_POLICY, policySchema } from '../src/domain/policy';
import type { MappingState } from '../src/domain/reconcile';

const i = process.argv.indexOf('--items');
const N = i > 0 ? Number(process.argv[i + 1]) : 100_000;

const parser = {
  fromCrm: (p: Record<string, unknown>) => fromCrmContact(p as Partial<CrmContactFields>),
  fromExchange: (p: Record<string, unknown>) => fromGraphContact(p as GraphContact),
  exchangeModifiedAt: (p: Record<string, unknown>) => p.lastModifiedDateTime as string | undefined,
};

const crmRow = (n: number, title: string): StagedItem => ({
  id: `c${n}`,
  removed: false,
  changeKey: null,
  payload: { first_name: `First${n}`, last_name: `Last${n}`, email: `p${n}@example.com`, job_title: title, city: 'Oslo', updatedAt: '2026-11-30T10:00:00Z', cxsyncVersion: String(1000 + n) },
});
const exItem = (n: number, dept: string): StagedItem => ({
  id: `e${n}`,
  removed: false,
  changeKey: `ck${n}`,
  payload: { givenName: `First${n}`, surname: `Last${n}`, emailAddresses: [{ address: `p${n}@example.com` }], jobTitle: 'Old', department: dept, businessAddress: { city: 'Oslo' }, lastModifiedDateTime: '2026-11-30T10:00:00Z' },
});
const base = (n: number) => ({ firstName: `First${n}`, lastName: `Last${n}`, email: `p${n}@example.com`, jobTitle: 'Old', department: 'Old', city: 'Oslo' });
const mapping = (n: number): MappingState => ({ crmId: `c${n}`, exchangeId: `e${n}`, crmFingerprint: 'x', exchangeFingerprint: 'y', exchangeChangeKey: `ck${n}-old`, base: base(n) });

/** The longest gap between ticks of a 1 ms timer while `work` runs: how long the event loop was held. */
async function longestBlock<T>(work: () => Promise<T>): Promise<{ value: T; ms: number; blockMs: number }> {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  const value = await work();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(tick);
  return { value, ms, blockMs: Math.max(longest, performance.now() - last) };
}

async function run(name: string, exchange: StagedItem[], crm: StagedItem[], mappings: MappingState[], firstSync: boolean, mergeByEmail = false): Promise<void> {
  const policy = mergeByEmail ? policySchema.parse({ contact: { mergeByEmail: true } }) : BUILTIN_POLICY;
  const input = { recordType: 'contact', exchange, crm, mappings, mappedTotal: mappings.length, policy, parser, firstSync, now: new Date() };
  // As one call (before), and in slices as the plan activity drives it (now).
  const whole = await longestBlock(async () => planCycle(input));
  const sliced = await longestBlock(() => runStepsYielding(planCycleSteps(input)));
  const line = (how: string, r: { ms: number; blockMs: number }) => `${how} ${r.ms.toFixed(0).padStart(6)} ms, longest block ${r.blockMs.toFixed(0).padStart(6)} ms`;
  console.log(`${name.padEnd(34)} ops ${String(sliced.value.operations.length).padStart(7)} | ${line('one call', whole)} | ${line('sliced', sliced)}`);
}

const half = Math.floor(N / 2);
const range = (n: number) => Array.from({ length: n }, (_, k) => k);
const mixes: Array<() => Promise<void>> = [
  () => run('first sync, merge by email', range(half).map((n) => exItem(n, 'Sales')), range(N - half).map((n) => crmRow(n, 'Old')), [], true, true),
  () => run('steady: both sides edited, merged', range(half).map((n) => exItem(n, 'New')), range(N - half).map((n) => crmRow(n, 'New')), range(half).map(mapping), false),
  () => run('mass delete (guard holds it)', [], range(N).map((n) => ({ id: `c${n}`, removed: true, changeKey: null, payload: null })), range(N).map(mapping), false),
];
console.log(`node ${process.version}, ${N} staged items per mix`);
void (async () => {
  for (const m of mixes) await m();
})();
