/**
 * The Temporal CLI dev server as a child process of `cxsync dev`: its data file under the data directory, its
 * UI on TEMPORAL_UI_PORT. Owning the process (rather than the SDK's test environment) means Ctrl-C stops it.
 */
import { spawn } from 'node:child_process';
import { isListening } from '../util/net';

export interface DevServer {
  stop(): Promise<void>;
}


export async function startDevServer(o: { cli: string; ip: string; port: number; uiPort: number; dbFile: string; namespace: string }): Promise<DevServer> {
  const child = spawn(
    o.cli,
    ['server', 'start-dev', '--ip', o.ip, '--port', String(o.port), '--ui-port', String(o.uiPort), '--db-filename', o.dbFile, '--namespace', o.namespace, '--log-level', 'error'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  const deadline = Date.now() + 60_000;
  while (!(await isListening(o.ip, o.port))) {
    if (exited) throw new Error(`the Temporal dev server exited at start: ${stderr.trim().split('\n').pop() ?? ''}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the Temporal dev server did not start within 60 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
