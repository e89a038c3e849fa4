/**
 * The interleaving search's split between processes (shard.ts), on the search's own arbitraries (the settings
 * and fc.commands) played by fc.asyncModelRun against a real system that does nothing: two processes play
 * exactly the runs one would, a failure found by either reports the seed and path (fc.commands' replay path
 * included) that replay it in one process, and a two-mailbox failure that does not need B shrinks to one mailbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { failurePath, initialModel, parseFailurePath, scenarioArbs, scenarioText, type Command, type Real, type ScenarioSettings } from './commands';
import { sharded } from './shard';

const FIELDS = ['firstName', 'lastName', 'email', 'jobTitle'];
const SEED = 20261130;
const RUNS = 200;

/** Plays nothing: the commands only say they ran (and the model still decides which ones apply). */
class Nothing implements Real {
  readonly trace: string[] = [];
  readonly played: Command[] = [];
  async apply(): Promise<string> {
    return 'played';
  }
}

type FailWhen = (s: ScenarioSettings, played: Command[]) => boolean;

/**
 * The search's property, playing nothing, in process `shard` of `shards`: `seen` lists every run played (its
 * settings and the commands that ran), `failed` the run fast-check reports (the shrunk counterexample).
 */
async function played(shard: number, shards: number, opts: { path?: string; failWhen?: FailWhen; noShrink?: boolean } = {}) {
  const seen: string[] = [];
  const texts = new WeakMap<object, string>();
  const { path, replayPath } = parseFailurePath(opts.path ?? '');
  const details = await fc.check(
    fc.asyncProperty(
      ...scenarioArbs(FIELDS, { maxCommands: 25, replayPath }),
      sharded(shard, shards, async (s: ScenarioSettings, commands) => {
        const real = new Nothing();
        await fc.asyncModelRun(() => ({ model: initialModel(s), real }), commands);
        const text = scenarioText({ ...s, commands: real.played });
        seen.push(text);
        texts.set(commands, text);
        if (opts.failWhen?.(s, real.played)) throw new Error('violation');
      }),
    ),
    { numRuns: RUNS, seed: SEED, ...(path ? { path } : {}), endOnFailure: !!opts.noShrink },
  );
  const cx = details.counterexample;
  return {
    seen,
    details,
    path: details.counterexamplePath ? failurePath(details.counterexamplePath, cx?.[1]) : undefined,
    failed: cx ? texts.get(cx[1]) : undefined,
  };
}

const commandsOf = (text: string) => text.split('\n').slice(1);

test('two processes play the runs one process plays, each once, run i in process i mod 2', async () => {
  const one = (await played(0, 1)).seen;
  const [a, b] = [(await played(0, 2)).seen, (await played(1, 2)).seen];
  assert.equal(one.length, RUNS);
  assert.deepEqual(a, one.filter((_, i) => i % 2 === 0));
  assert.deepEqual(b, one.filter((_, i) => i % 2 === 1));
  assert.ok(one.some((t) => commandsOf(t).length >= 20), 'some runs play 20 commands or more');
});

test('a failure in the second process is shrunk there, and its seed and path replay it in one process', async () => {
  const one = (await played(0, 1)).seen;
  // The first run of the second process that plays more than 15 commands fails (and so do its shrinks that keep them).
  const failWhen: FailWhen = (_, p) => p.length > 15;
  const first = one.findIndex((text, i) => i % 2 === 1 && commandsOf(text).length > 15);
  assert.ok(first > 0, 'the seed gives the second process a run of more than 15 commands');
  const found = await played(1, 2, { failWhen });
  assert.equal(found.details.failed, true);
  assert.equal(found.path?.split(':')[0], String(first), 'the path starts at the run index among all runs');
  assert.match(found.path!, /@/, "the path carries fc.commands' replay path");
  const shrunk = found.failed!;
  assert.equal(commandsOf(shrunk).length, 16, 'shrunk to the smallest failing length');
  for (const noShrink of [true, false]) {
    const replay = await played(0, 1, { path: found.path, failWhen, noShrink });
    assert.equal(replay.details.failed, true);
    assert.equal(replay.seen[0], shrunk, `one process replays the shrunk sequence first (${noShrink ? 'CXSYNC_MODEL_NO_SHRINK=1' : 'then shrinks again'})`);
    assert.equal(replay.failed, shrunk, 'and reports it');
  }
  // Without the replay path, the path leads nowhere: walking it runs nothing, so no command is known to have run.
  const { path } = parseFailurePath(found.path!);
  await assert.rejects(played(0, 1, { path, failWhen }), /Unable to replay/);
});

test('a two-mailbox failure that does not need mailbox B shrinks to one mailbox, where B is read as A', async () => {
  // Fails once 11 steps ran, in whichever mailbox: with this seed the first such run has two mailboxes.
  const failWhen: FailWhen = (_, p) => p.filter((c) => c.t === 'step').length >= 11;
  const one = await played(0, 1, { failWhen });
  assert.equal(one.details.failed, true);
  const original = one.seen[Number(one.details.counterexamplePath!.split(':')[0])];
  assert.match(original, /^mailboxes A\+B/, 'the first failing run has two mailboxes');
  assert.match(original, /B: step/, 'and steps mailbox B');
  const [settings, commands] = one.details.counterexample!;
  assert.deepEqual(settings.mailboxes, ['A']);
  const printed = String(commands).split(' /*')[0];
  assert.doesNotMatch(printed, /\bB\b/, "fast-check's counterexample prints the commands as they acted");
  assert.equal(printed.split(',').filter((c) => c === 'A: step').length, 11, printed);
  assert.equal(commandsOf(one.failed!).filter((c) => c.endsWith('. A: step')).length, 11, one.failed);
});
