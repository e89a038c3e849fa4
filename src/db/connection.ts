/** Opening the database and running migrations: the only place that creates a pg pool. */
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema';
import { migrationProvider } from './migrations';

// bigint/bigserial come back as strings (ids are opaque to us); timestamptz as Date.
export type Db = Kysely<Database>;

export function openDb(url: string, opts: { max?: number } = {}): Db {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: 10_000 });
  // A pooled connection that dies (database restart) must not crash the process; the next query reconnects.
  // pg-pool listens for errors on idle clients only: a client checked out (a query running, or idle inside a
  // transaction) emits 'error' with no listener when the server goes away, and that throws. Its queries are
  // rejected all the same (the activity fails, Temporal retries it) and pg-pool drops the broken client on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export async function migrate(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema: 'public' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Turns a connection failure into one line an operator can act on. */
export async function checkDb(db: Db, url: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    const safe = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    throw new Error(`PostgreSQL unreachable at ${safe}: ${(err as Error).message}`);
  }
}
