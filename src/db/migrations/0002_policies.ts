import { sql, type Kysely } from 'kysely';

/**
 * Sync policies (issue 4): the default policy as a stored row (so operators can change the defaults), and the
 * emptied-side guard's state on the mailbox: the mass deletes held per record type and an operator's decision.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // '{}' = every setting at its built-in default (policy files merge over the defaults).
  await sql`insert into sync.policy (name, settings) values ('default', '{}'::jsonb) on conflict (name) do nothing`.execute(db);
  await sql`alter table sync.mailbox add column held_deletes jsonb, add column delete_decision jsonb`.execute(db);
  await sql`create index mailbox_policy on sync.mailbox (policy_name)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists sync.mailbox_policy`.execute(db);
  await sql`alter table sync.mailbox drop column if exists held_deletes, drop column if exists delete_decision`.execute(db);
}
