/**
 * The model-based interleaving test of the sync cycle (DESIGN.md, "Concurrency"): the gate for every change to
 * the cycle. It is fast-check model-based testing over the real activities, PostgreSQL and the HTTPS Graph
 * emulator: fc.commands draws sequences of commands (commands.ts: workflow steps, plain, with the answer lost or
 * with Graph faults; pauses and resumes; batch-size changes; user actions on both sides of one or two mailboxes
 * that share contacts; in one run in four, mail dropped into the drop folders, moved, and its CRM activity edited
 * or deleted), each an fc.AsyncCommand whose check(model) says whether it applies; fc.asyncModelRun plays
 * them (scenario.ts) after a setup that resets the environment and syncs the initial records; the run then
 * settles and is checked against the users' intent (invariants.ts). fast-check shrinks a failure (fewer and
 * simpler commands, one mailbox instead of two, fewer initial records) and prints it as a user would say it.
 *
 * The sequences are played by worker processes (search.ts), each with its own database and emulator, run i by
 * process i mod n (shard.ts): the same sequences one process would play, in about half the time on two cores.
 *
 * CXSYNC_MODEL_RUNS      sequences to run (default 1000: about 3.5 minutes on two free cores; stress: 10×)
 * CXSYNC_MODEL_SEED      the seed (default 20261130: npm test plays the same sequences every time); `random` for a
 *                        new one, printed first; with CXSYNC_MODEL_PATH, replays a reported failure
 * CXSYNC_MODEL_PATH      a reported failure's path: fast-check's counterexample path, then `@` and fc.commands'
 *                        replay path (which commands ran), as the failure prints it
 * CXSYNC_MODEL_PROCESSES worker processes (default: 2, or fewer cores; 1 when replaying a path)
 * CXSYNC_MODEL_SKIP      invariants to leave out, comma-separated (to hunt for others while one is known to fail)
 * CXSYNC_MODEL_COMMANDS  most commands per sequence (default 25)
 * CXSYNC_MODEL_FIELDS    synced fields the users edit, comma-separated (default: every synced field)
 * CXSYNC_MODEL_NO_SHRINK=1 report the first failing sequence as found (shrinking replays many sequences)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { SearchOutcome } from './search';

const RUNS = Number(process.env.CXSYNC_MODEL_RUNS ?? 1000);
const MAX_COMMANDS = Number(process.env.CXSYNC_MODEL_COMMANDS ?? 25);
const PATH = process.env.CXSYNC_MODEL_PATH || undefined;
// npm test searches the same sequences on every run, so a red CI means the change broke something; stress runs
// and bug hunts search new ones with CXSYNC_MODEL_SEED=random (docs/DEVELOPMENT.md).
const SEED = process.env.CXSYNC_MODEL_SEED === 'random' ? Math.floor(Math.random() * 0x7fffffff) : Number(process.env.CXSYNC_MODEL_SEED ?? 20261130);
const PROCESSES = PATH ? 1 : Math.max(1, Number(process.env.CXSYNC_MODEL_PROCESSES ?? Math.min(2, os.availableParallelism())));
/** scripts/run-tests.ts gives the model files the same bound (node's --test-timeout is per file). */
const TIMEOUT_MS = Math.max(600_000, RUNS * 600);

const root = path.resolve(__dirname, '..', '..');

function worker(shard: number, children: Set<ChildProcess>): Promise<SearchOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'search.ts')], {
      cwd: root,
      env: { ...process.env, CXSYNC_MODEL_SEED: String(SEED), CXSYNC_MODEL_RUNS: String(RUNS), CXSYNC_MODEL_SHARD: `${shard}/${PROCESSES}` },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(child);
    let outcome: SearchOutcome | undefined;
    const stderr: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => console.log(l));
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > 200) stderr.shift();
      console.error(l);
    });
    child.on('message', (m) => (outcome = m as SearchOutcome));
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (outcome) resolve(outcome);
      else reject(new Error(`model process ${shard}/${PROCESSES} (seed ${SEED}) ended with ${signal ?? `exit code ${code}`} and no outcome:\n${stderr.join('\n')}`));
    });
  });
}

test(`sync cycle under random interleavings: ${RUNS} sequences of up to ${MAX_COMMANDS} commands`, { timeout: TIMEOUT_MS }, async (t) => {
  console.log(`model: seed ${SEED}${PATH ? `, path ${PATH}` : ''}, ${RUNS} sequences in ${PROCESSES} process(es)`);
  const started = Date.now();
  const children = new Set<ChildProcess>();
  const stop = () => children.forEach((c) => c.kill('SIGKILL'));
  t.signal.addEventListener('abort', stop);
  try {
    const outcomes = await Promise.all(Array.from({ length: PROCESSES }, (_, i) => worker(i, children)));
    const played = outcomes.reduce((n, o) => n + o.played, 0);
    const seconds = (Date.now() - started) / 1000;
    console.log(`model: ${played} sequences in ${seconds.toFixed(1)} s (${((seconds / played) * 100).toFixed(1)} s per 100; ${outcomes.map((o) => `process ${o.shard}: ${o.played} in ${o.seconds.toFixed(0)} s`).join(', ')})`);
    const failed = outcomes.filter((o) => o.failed);
    if (failed.length) {
      throw new Error(
        failed
          .map((o) =>
            [
              `model process ${o.shard} found a failing sequence: seed ${o.seed}, path ${o.path}`,
              `replay it: CXSYNC_MODEL_SEED=${o.seed} CXSYNC_MODEL_PATH='${o.path}' CXSYNC_MODEL_NO_SHRINK=1 npx tsx scripts/run-tests.ts test/model/interleaving.test.ts`,
              o.report,
            ].join('\n'),
          )
          .join('\n\n'),
      );
    }
  } finally {
    t.signal.removeEventListener('abort', stop);
    stop();
  }
});
