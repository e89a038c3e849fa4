/** Which PostgreSQL to use: DATABASE_URL, or the embedded one under the data directory (started on demand). */
import path from 'node:path';
import { dataDir, type Env } from '../config';
import { startEmbeddedPostgres } from './embedded';
import { isListening } from '../util/net';

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  stop(): Promise<void>;
}


export function embeddedUrl(env: Env): string {
  return `postgres://postgres:postgres@127.0.0.1:${env.CXSYNC_EMBEDDED_PG_PORT}/postgres`;
}

export async function resolveDatabase(env: Env, opts: { start: boolean; log?: (l: string) => void }): Promise<ResolvedDatabase> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, embedded: false, stop: async () => undefined };
  const url = embeddedUrl(env);
  if (!opts.start || (await isListening('127.0.0.1', env.CXSYNC_EMBEDDED_PG_PORT))) return { url, embedded: true, stop: async () => undefined };
  const pg = await startEmbeddedPostgres({ dir: path.join(dataDir(env), 'pg'), port: env.CXSYNC_EMBEDDED_PG_PORT, log: opts.log });
  return { url: pg.url, embedded: true, stop: pg.stop };
}
