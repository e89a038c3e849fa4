/** Running the real `cxsync` command (bin/cxsync.js) as an operator would, and checking its one-line errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Stack } from './stack';

export const ROOT = path.resolve(__dirname, '..', '..');

export function cxsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'cxsync.js'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * What a cxsync process needs to run against a test stack: its database, Temporal and task queue, and its Graph
 * emulator (reached as npm start's is). It serves no metrics: the worker and npm start use fixed ports by default,
 * and another test file running alongside may hold them.
 */
export function stackEnv(s: Pick<Stack, 'dbUrl' | 'temporalAddress' | 'taskQueue' | 'emulator' | 'caFile'>): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: s.dbUrl,
    TEMPORAL_ADDRESS: s.temporalAddress,
    TEMPORAL_TASK_QUEUE: s.taskQueue,
    CXSYNC_EMULATOR_PORT: new URL(s.emulator.origin).port,
    GRAPH_CA_FILE: s.caFile(),
    CXSYNC_METRICS_ADDRESS: 'off',
    CXSYNC_TEMPORAL_METRICS_ADDRESS: 'off',
  };
}

/** The single line a failing command printed on stderr (never a stack trace). */
export function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(lines[0], /^\s+at /);
  return lines[0];
}
