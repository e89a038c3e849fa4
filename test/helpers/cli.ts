/** Running the real `cxsync` command (bin/cxsync.js) as an operator would, and checking its one-line errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');

export function cxsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin', 'cxsync.js'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** What a CLI process needs to reach a test stack's Graph emulator (as npm start's emulator is reached). */
export function emulatorEnv(emu: { origin: string }, caFile: string): NodeJS.ProcessEnv {
  return { CXSYNC_EMULATOR_PORT: new URL(emu.origin).port, GRAPH_CA_FILE: caFile };
}

/** The single line a failing command printed on stderr (never a stack trace). */
export function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${stderr}`);
  assert.doesNotMatch(lines[0], /^\s+at /);
  return lines[0];
}
