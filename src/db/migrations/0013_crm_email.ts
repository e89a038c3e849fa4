/**
 * The built-in CRM's side of email (issue 10): the records mail is filed to and the email activities themselves.
 * src/activities/crm/postgres-crm-email.ts is the only module that reads or writes these tables.
 *
 * - crm.accounts and crm.leads: records like crm.contacts (owner, soft delete, change_txid/changed_by stamped by
 *   crm.stamp_change). No feed reads them yet; they are stamped so one can.
 * - crm.contacts.account_id: a contact may belong to an account (an account hard-deleted leaves it without one).
 * - crm.email_activities: one row per message, owned by a CRM user, idempotent on the sync id it came from
 *   (unique). On the change feed like contacts, with tombstones of hard deletes in crm.tombstone (0007's
 *   trigger functions); crm.feed_origin() does not name the table yet (the email sync that saves its watermarks
 *   adds it, with the test that pins the origin's format).
 * - crm.email_links: an activity filed to any number of records. Polymorphic (record_type, record_id), so no
 *   foreign key to the record: a statement trigger on each record table drops the links of hard-deleted rows;
 *   a soft delete keeps them (an undelete restores the record with its mail).
 * - crm.email_attachments: stored with their size; `content` null with a `skipped_reason` for one that was not
 *   stored (over the policy's size limit, a reference attachment). Adding or removing one re-stamps its activity,
 *   so the feed reports the activity as changed.
 *
 * Address lookups are case-insensitive: expression indexes on lower(…) of every address slot, partial on live
 * rows because deleted records are never filed to. Account domains are stored normalised (lower-case, checked).
 */
import { sql, type Kysely } from 'kysely';

const RECORD_TABLES = [
  ['contacts', 'contact'],
  ['leads', 'lead'],
  ['accounts', 'account'],
] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table crm.accounts (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      name text not null,
      domain text check (domain is null or domain = lower(domain)),
      website text, email text, phone text, industry text,
      street text, city text, state text, postal_code text, country text,
      notes text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text
    )`.execute(db);
  await sql`create index accounts_feed on crm.accounts (change_txid)`.execute(db);
  await sql`create index accounts_owner on crm.accounts (owner_id)`.execute(db);
  await sql`create index accounts_domain on crm.accounts (domain) where deleted_at is null`.execute(db);
  await sql`create index accounts_email on crm.accounts (lower(email)) where deleted_at is null`.execute(db);
  await sql`create trigger accounts_stamp before insert or update on crm.accounts for each row execute function crm.stamp_change()`.execute(db);

  await sql`
    create table crm.leads (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      first_name text, last_name text, company text,
      email text, email2 text, phone text, mobile text, job_title text, website text,
      status text not null default 'New',
      source text,
      street text, city text, state text, postal_code text, country text,
      notes text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text
    )`.execute(db);
  await sql`create index leads_feed on crm.leads (change_txid)`.execute(db);
  await sql`create index leads_owner on crm.leads (owner_id)`.execute(db);
  await sql`create index leads_email on crm.leads (lower(email)) where deleted_at is null`.execute(db);
  await sql`create index leads_email2 on crm.leads (lower(email2)) where deleted_at is null`.execute(db);
  await sql`create trigger leads_stamp before insert or update on crm.leads for each row execute function crm.stamp_change()`.execute(db);

  await sql`alter table crm.contacts add column account_id uuid references crm.accounts(id) on delete set null`.execute(db);
  await sql`create index contacts_account on crm.contacts (account_id) where account_id is not null`.execute(db);
  for (const slot of ['email', 'email2', 'email3']) {
    await sql`create index ${sql.id(`contacts_${slot}_lower`)} on crm.contacts (lower(${sql.id(slot)}))
      where deleted_at is null`.execute(db);
  }

  await sql`
    create table crm.email_activities (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      subject text not null default '',
      body_text text,
      body_html text,
      from_address text,
      from_name text,
      -- [{ "address": "...", "name": "..." | null }, ...]
      to_recipients jsonb not null default '[]',
      cc_recipients jsonb not null default '[]',
      bcc_recipients jsonb not null default '[]',
      sent_at timestamptz,
      received_at timestamptz,
      direction text not null check (direction in ('incoming', 'outgoing')),
      internet_message_id text,
      conversation_id text,
      in_reply_to text,
      -- The sync operation that created the row; a retried create finds it. Null for mail entered in the CRM.
      sync_id uuid unique,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text
    )`.execute(db);
  await sql`create index email_activities_feed on crm.email_activities (change_txid)`.execute(db);
  await sql`create index email_activities_owner on crm.email_activities (owner_id)`.execute(db);
  await sql`create index email_activities_message on crm.email_activities (internet_message_id) where internet_message_id is not null`.execute(db);
  await sql`create index email_activities_conversation on crm.email_activities (conversation_id) where conversation_id is not null`.execute(db);
  await sql`create trigger email_activities_stamp before insert or update on crm.email_activities for each row execute function crm.stamp_change()`.execute(db);
  await sql`create trigger email_activities_tombstone after delete on crm.email_activities
    referencing old table as old_rows for each statement execute function crm.record_tombstones()`.execute(db);
  await sql`create trigger email_activities_truncate_tombstone before truncate on crm.email_activities
    for each statement execute function crm.record_truncate_tombstones()`.execute(db);

  await sql`
    create table crm.email_links (
      email_activity_id uuid not null references crm.email_activities(id) on delete cascade,
      record_type text not null check (record_type in ('account', 'contact', 'lead')),
      record_id uuid not null,
      linked_at timestamptz not null default now(),
      linked_by text default nullif(current_setting('cxsync.writer', true), ''),
      primary key (email_activity_id, record_type, record_id)
    )`.execute(db);
  await sql`create index email_links_record on crm.email_links (record_type, record_id)`.execute(db);
  await sql`
    create function crm.drop_email_links() returns trigger language plpgsql as $$
    begin
      delete from crm.email_links l using old_rows o where l.record_type = tg_argv[0] and l.record_id = o.id;
      return null;
    end $$`.execute(db);
  for (const [table, type] of RECORD_TABLES) {
    await sql`create trigger ${sql.id(`${table}_email_links`)} after delete on ${sql.table(`crm.${table}`)}
      referencing old table as old_rows for each statement execute function crm.drop_email_links(${sql.lit(type)})`.execute(db);
  }

  await sql`
    create table crm.email_attachments (
      id uuid primary key default gen_random_uuid(),
      email_activity_id uuid not null references crm.email_activities(id) on delete cascade,
      -- Where the attachment came from (the Graph attachment id, or its position): a retried add finds it.
      attachment_key text not null default gen_random_uuid()::text,
      name text not null,
      content_type text,
      size_bytes bigint not null check (size_bytes >= 0),
      is_inline boolean not null default false,
      content_id text,
      content bytea,
      skipped_reason text,
      created_at timestamptz not null default now(),
      unique (email_activity_id, attachment_key),
      check ((content is null) <> (skipped_reason is null)),
      check (content is null or octet_length(content) = size_bytes)
    )`.execute(db);
  await sql`
    create function crm.touch_email_activity() returns trigger language plpgsql as $$
    begin
      update crm.email_activities set deleted_at = deleted_at
      where id = case when tg_op = 'DELETE' then old.email_activity_id else new.email_activity_id end;
      return null;
    end $$`.execute(db);
  await sql`create trigger email_attachments_touch after insert or delete on crm.email_attachments
    for each row execute function crm.touch_email_activity()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists crm.email_attachments`.execute(db);
  await sql`drop function if exists crm.touch_email_activity()`.execute(db);
  for (const [table] of RECORD_TABLES) {
    await sql`drop trigger if exists ${sql.id(`${table}_email_links`)} on ${sql.table(`crm.${table}`)}`.execute(db);
  }
  await sql`drop function if exists crm.drop_email_links()`.execute(db);
  await sql`drop table if exists crm.email_links`.execute(db);
  await sql`delete from crm.tombstone where table_name = 'email_activities'`.execute(db);
  await sql`drop table if exists crm.email_activities`.execute(db);
  for (const slot of ['email', 'email2', 'email3']) {
    await sql`drop index if exists ${sql.id('crm', `contacts_${slot}_lower`)}`.execute(db);
  }
  await sql`alter table crm.contacts drop column if exists account_id`.execute(db);
  await sql`drop table if exists crm.leads`.execute(db);
  await sql`drop table if exists crm.accounts`.execute(db);
}
