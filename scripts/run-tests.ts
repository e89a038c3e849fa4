/**
 * `npm test`: everything the suite needs, then node's test runner over test/** (two files at a time), and then
 * over the model's interleaving search (test/model/interleaving.test.ts) alone. With file arguments, those files
 * only, in the same two phases.
 * - the Temporal CLI (TEMPORAL_CLI_PATH, on PATH, a previous go install, or built once with go install);
 * - PostgreSQL: DATABASE_URL when set (each test file creates its own database in it), else an embedded
 *   PostgreSQL started here under .cxsync-test/ and stopped at the end.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded';
import { findTemporalCli } from '../src/worker/temporal-cli';

function testFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFiles(path.join(dir, e.name)) : e.name.endsWith('.test.ts') ? [path.join(dir, e.name)] : []))
    .sort();
}

async function main(): Promise<number> {
  const root = path.resolve(__dirname, '..');
  const only = process.argv.slice(2);
  const all = only.length
    ? only.map((f) => path.resolve(root, f))
    : [...['unit', 'property', 'integration', 'replay', 'model'].flatMap((d) => testFiles(path.join(root, 'test', d)))];
  // The model's interleaving search runs after the other files, alone: it plays its sequences in two processes of
  // its own (test/model/search.ts), one per core, and its time bound is meant for a machine it has to itself.
  const interleaving = path.join(root, 'test', 'model', 'interleaving.test.ts');
  const phases = [all.filter((f) => f !== interleaving), all.filter((f) => f === interleaving)].filter((p) => p.length > 0);
  // node's --test-timeout bounds each file. The search's default 1,000 sequences take 2–4 minutes on a quiet
  // 2-core machine; a stress run (CXSYNC_MODEL_RUNS=10000) gets 0.6 s a sequence.
  const modelRuns = Number(process.env.CXSYNC_MODEL_RUNS ?? 1000);
  const timeoutOf = (files: string[]) => (files.includes(interleaving) ? Math.max(600_000, modelRuns * 600) : 600_000);

  const cli = findTemporalCli({ explicit: process.env.TEMPORAL_CLI_PATH, log: (l) => console.log(l) });
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (cli) env.TEMPORAL_CLI_PATH = cli;

  let stop = async () => undefined as unknown;
  if (!process.env.DATABASE_URL) {
    const pg = await startEmbeddedPostgres({ dir: path.join(root, '.cxsync-test', 'pg'), port: Number(process.env.CXSYNC_TEST_PG_PORT ?? 54330) });
    env.DATABASE_URL = pg.url;
    stop = pg.stop;
    console.log(`embedded PostgreSQL for tests: ${pg.url}`);
  }
  try {
    let failed = 0;
    for (const files of phases) {
      const args = ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeoutOf(files)}`, '--test-reporter=spec', ...files];
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: root });
        child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
      });
      if (code !== 0) failed++;
      if (phases.length > 1) console.log(`${path.relative(root, files[0])}${files.length > 1 ? ` and ${files.length - 1} more file(s)` : ''}: ${code === 0 ? 'passed' : `failed (exit code ${code})`}`);
    }
    return failed ? 1 : 0;
  } finally {
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
