/**
 * The sync lag gauge (src/db/metrics-store.ts) asks, on every scrape of every worker, for the oldest staged change
 * per record type and side. Staging holds a whole first round (100,000 rows and more): without this index each
 * scrape would scan it.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists staged_change_age on sync.staged_change (record_type, side, staged_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists sync.staged_change_age`.execute(db);
}
