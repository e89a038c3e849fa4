/**
 * One process of the interleaving search (interleaving.test.ts starts them): fast-check's model-based testing
 * (fc.commands + fc.asyncModelRun, commands.ts and scenario.ts) over the real activities, with its own PostgreSQL
 * database and HTTPS Graph emulator (environment.ts), and its share of the runs (shard.ts): n processes play
 * exactly the sequences one process would, and a failure's seed and path replay it in one process.
 *
 * Run by interleaving.test.ts as `node --import tsx test/model/search.ts` with CXSYNC_MODEL_SHARD=k/n and a
 * numeric CXSYNC_MODEL_SEED; it sends its outcome to the parent over IPC (run by hand, it prints it as JSON). The
 * other CXSYNC_MODEL_* variables are read here too (documented in interleaving.test.ts).
 */
import fc from 'fast-check';
import { failurePath, parseFailurePath, scenarioArbs, scenarioText } from './commands';
import { startModelEnv } from './environment';
import { INVARIANTS, type Invariant } from './invariants';
import { runScenario } from './scenario';
import { sharded } from './shard';
import { syncedFields } from './world';

export interface SearchOutcome {
  shard: string;
  /** Sequences played by this process (shrinks included). */
  played: number;
  seconds: number;
  failed: boolean;
  seed: number;
  path?: string;
  /** fast-check's report: seed, path, the shrunk run (settings and commands), the violations and the trace. */
  report?: string;
}

async function search(): Promise<SearchOutcome> {
  const runs = Number(process.env.CXSYNC_MODEL_RUNS ?? 1000);
  const maxCommands = Number(process.env.CXSYNC_MODEL_COMMANDS ?? 25);
  const seed = Number(process.env.CXSYNC_MODEL_SEED);
  if (!Number.isInteger(seed)) throw new Error(`CXSYNC_MODEL_SEED: ${process.env.CXSYNC_MODEL_SEED} is not an integer (the parent resolves "random")`);
  const { path, replayPath } = parseFailurePath(process.env.CXSYNC_MODEL_PATH ?? '');
  const [shard, shards] = (process.env.CXSYNC_MODEL_SHARD ?? '0/1').split('/').map(Number);
  if (path && shards > 1) throw new Error('CXSYNC_MODEL_PATH replays one sequence: run it in one process');
  const fieldsWanted = process.env.CXSYNC_MODEL_FIELDS?.split(',').map((s) => s.trim()).filter(Boolean);
  const skip = new Set((process.env.CXSYNC_MODEL_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean) as Invariant[]);
  for (const s of skip) if (!(s in INVARIANTS)) throw new Error(`CXSYNC_MODEL_SKIP: unknown invariant ${s}; known: ${Object.keys(INVARIANTS).join(', ')}`);

  const env = await startModelEnv();
  try {
    const fields = await syncedFields(env);
    const edited = fieldsWanted ?? fields;
    for (const f of edited) if (!fields.includes(f)) throw new Error(`CXSYNC_MODEL_FIELDS: ${f} is not a synced field; synced: ${fields.join(', ')}`);
    const started = Date.now();
    let played = 0;
    const details = await fc.check(
      fc.asyncProperty(
        ...scenarioArbs(edited, { maxCommands, replayPath }),
        sharded(shard, shards, async (settings, commands) => {
          played++;
          if (played % 100 === 0) console.log(`model ${shard}/${shards}: ${played} sequences, ${((Date.now() - started) / 1000).toFixed(0)} s`);
          const r = await runScenario(env, fields, settings, commands, skip);
          if (r.violations.length === 0) return;
          throw new Error(
            [
              `${r.violations.length} invariant violation(s):`,
              ...r.violations.map((v) => `  [${v.invariant}] ${v.message}`),
              'scenario (the commands that ran):',
              scenarioText({ ...settings, commands: r.played }),
              'trace:',
              ...r.trace.map((t) => `  ${t}`),
            ].join('\n'),
          );
        }),
      ),
      { numRuns: runs, seed, ...(path ? { path } : {}), endOnFailure: process.env.CXSYNC_MODEL_NO_SHRINK === '1' },
    );
    const seconds = (Date.now() - started) / 1000;
    const outcome: SearchOutcome = { shard: `${shard}/${shards}`, played, seconds, failed: details.failed, seed };
    if (details.failed) {
      outcome.path = details.counterexamplePath ? failurePath(details.counterexamplePath, details.counterexample?.[1]) : undefined;
      // fast-check's report names the seed, the path (without the replay path that outcome.path adds) and the
      // shrunk run: its settings, then the commands that ran; the property's error (violations, the commands as
      // they acted, and the trace) comes after it.
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      outcome.report = `${(await fc.asyncDefaultReportMessage(details)) ?? 'the property failed'}\n${error}`;
    }
    return outcome;
  } finally {
    await env.close();
  }
}

// A parent that is gone (its file timed out, or was killed) leaves nobody to report to: stop at once.
process.on('disconnect', () => process.exit(2));
// Exits once the outcome is sent: a pooled socket or timer left open must not keep the parent waiting.
search().then(
  (outcome) => (process.send ? process.send(outcome, () => process.exit(0)) : (console.log(JSON.stringify(outcome)), process.exit(outcome.failed ? 1 : 0))),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
