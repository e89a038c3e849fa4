/**
 * A process holding a pooled connection (src/db/connection.ts openDb) inside a transaction, as a worker's activity
 * does between two queries, for test/integration/restarts.test.ts to restart PostgreSQL under it. Driven by lines
 * on stdin: `go` runs the transaction's next query, `again` queries through the pool; each answer is one line.
 * An 'error' event nobody listens to would end this process, which is what the test watches for.
 */
import readline from 'node:readline';
import { sql } from 'kysely';
import { openDb } from '../../src/db/connection';

async function main(): Promise<void> {
  const db = openDb(process.argv[2]);
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const next = async () => String((await lines.next()).value ?? '');
  const transaction = db
    .transaction()
    .execute(async (tx) => {
      await sql`select 1`.execute(tx);
      console.log('held');
      if ((await next()) !== 'go') throw new Error('expected go');
      await sql`select 1`.execute(tx);
    })
    .then(
      () => 'transaction committed',
      (err: Error) => `transaction failed: ${err.message}`,
    );
  console.log(await transaction);
  if ((await next()) !== 'again') throw new Error('expected again');
  const r = await sql<{ n: number }>`select 42 as n`.execute(db);
  console.log(`queried: ${r.rows[0].n}`);
  await db.destroy();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
