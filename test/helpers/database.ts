/** A fresh database per test file inside the PostgreSQL that npm test provides (DATABASE_URL). */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, openDb, type Db } from '../../src/db/connection';

export async function freshDatabase(): Promise<{ url: string; db: Db; drop(): Promise<void> }> {
  const admin = process.env.DATABASE_URL;
  if (!admin) throw new Error('DATABASE_URL is not set: run the tests with npm test, which provides a PostgreSQL');
  const name = `cxsync_t_${process.pid}_${randomBytes(3).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const db = openDb(u.toString());
  await migrate(db);
  return {
    url: u.toString(),
    db,
    async drop() {
      await db.destroy();
      const c2 = new pg.Client({ connectionString: admin });
      await c2.connect();
      await c2.query(`drop database if exists ${name} with (force)`);
      await c2.end();
    },
  };
}
