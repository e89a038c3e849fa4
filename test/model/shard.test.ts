/**
 * The interleaving search's split between processes (shard.ts), on the search's own arbitrary with a property
 * that plays nothing: two processes play exactly the runs one would, and a failure found by either reports the
 * seed and path that replay it in one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scenarioArb, scenarioText, type Scenario } from './commands';
import { sharded } from './shard';

const FIELDS = ['firstName', 'lastName', 'email', 'jobTitle'];
const arb = () => scenarioArb(FIELDS, { maxCommands: 25 });
const SEED = 20261130;
const RUNS = 200;

async function played(shard: number, shards: number, opts: { path?: string; failWhen?: (s: Scenario) => boolean } = {}) {
  const seen: string[] = [];
  const details = await fc.check(
    fc.asyncProperty(
      arb(),
      sharded(shard, shards, async (s: Scenario) => {
        seen.push(scenarioText(s));
        if (opts.failWhen?.(s)) throw new Error('violation');
      }),
    ),
    { numRuns: RUNS, seed: SEED, ...(opts.path ? { path: opts.path } : {}) },
  );
  return { seen, details };
}

test('two processes play the runs one process plays, each once, run i in process i mod 2', async () => {
  const one = (await played(0, 1)).seen;
  const [a, b] = [(await played(0, 2)).seen, (await played(1, 2)).seen];
  assert.equal(one.length, RUNS);
  assert.deepEqual(a, one.filter((_, i) => i % 2 === 0));
  assert.deepEqual(b, one.filter((_, i) => i % 2 === 1));
});

test("a failure in the second process is shrunk there, and its seed and path replay it in one process", async () => {
  const one = (await played(0, 1)).seen;
  // The first run of the second process with more than 15 commands fails (and so do its shrinks that keep them).
  const failWhen = (s: Scenario) => s.commands.length > 15;
  const first = one.findIndex((text, i) => i % 2 === 1 && text.split('\n').length - 1 > 15);
  assert.ok(first > 0, 'the seed gives the second process a run of more than 15 commands');
  const { details } = await played(1, 2, { failWhen });
  assert.equal(details.failed, true);
  assert.equal(details.counterexamplePath?.split(':')[0], String(first), 'the path starts at the run index among all runs');
  assert.equal(details.counterexample![0].commands.length, 16, 'shrunk to the smallest failing length');
  const replay = await played(0, 1, { path: details.counterexamplePath!, failWhen });
  assert.equal(replay.details.failed, true);
  assert.equal(replay.seen[0], scenarioText(details.counterexample![0]), 'one process replays the shrunk sequence first');
});
