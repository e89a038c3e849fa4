import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create schema if not exists sync`.execute(db);
  await sql`create schema if not exists crm`.execute(db);

  await sql`
    create table sync.policy (
      name text primary key,
      settings jsonb not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table crm.users (
      id uuid primary key default gen_random_uuid(),
      email text not null unique,
      display_name text not null,
      workgroup text,
      time_zone text not null default 'UTC'
    )`.execute(db);

  await sql`
    create table sync.mailbox (
      id text primary key,
      display_name text,
      crm_user_id uuid not null references crm.users(id),
      policy_name text references sync.policy(name),
      enrolled_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table sync.cursor (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      exchange_folder_id text,
      delta_link text,
      pending_delta_link text,
      next_link text,
      crm_watermark text,
      pending_crm_watermark text,
      updated_at timestamptz not null default now(),
      primary key (mailbox_id, record_type)
    )`.execute(db);

  // One row per item and side: an item seen twice in a round keeps its latest state (partial updates merge).
  await sql`
    create table sync.staged_change (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      side text not null check (side in ('exchange', 'crm')),
      external_id text not null,
      removed boolean not null,
      change_key text,
      payload jsonb,
      staged_at timestamptz not null default now(),
      primary key (mailbox_id, record_type, side, external_id)
    )`.execute(db);

  await sql`
    create table sync.mapping (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      crm_id text not null,
      exchange_id text not null,
      sync_id uuid not null,
      crm_fingerprint text,
      exchange_change_key text,
      exchange_fingerprint text,
      updated_at timestamptz not null default now(),
      primary key (mailbox_id, record_type, crm_id),
      unique (mailbox_id, record_type, exchange_id)
    )`.execute(db);

  await sql`
    create table sync.cycle (
      id bigserial primary key,
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      started_at timestamptz not null default now(),
      ended_at timestamptz,
      status text not null check (status in ('running', 'done', 'failed')),
      summary jsonb
    )`.execute(db);
  await sql`create unique index cycle_one_running on sync.cycle (mailbox_id) where status = 'running'`.execute(db);

  await sql`
    create table sync.operation (
      id bigserial primary key,
      cycle_id bigint not null references sync.cycle(id) on delete cascade,
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      seq integer not null,
      side text not null,
      kind text not null,
      crm_id text,
      exchange_id text,
      sync_id uuid not null,
      payload jsonb,
      reason text not null,
      status text not null default 'pending' check (status in ('pending', 'done', 'failed', 'skipped')),
      attempts integer not null default 0,
      error text,
      done_at timestamptz,
      unique (cycle_id, record_type, seq)
    )`.execute(db);
  await sql`create index operation_pending on sync.operation (cycle_id, record_type, seq) where status = 'pending'`.execute(db);

  await sql`
    create table sync.conflict (
      id bigserial primary key,
      cycle_id bigint not null references sync.cycle(id) on delete cascade,
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      record_type text not null,
      crm_id text not null,
      exchange_id text not null,
      rule text not null,
      outcome text not null,
      crm_version jsonb,
      exchange_version jsonb,
      at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table sync.log (
      id bigserial primary key,
      mailbox_id text not null,
      cycle_id bigint,
      at timestamptz not null default now(),
      level text not null,
      record_type text,
      side text,
      item_id text,
      message text not null
    )`.execute(db);
  await sql`create index log_by_mailbox on sync.log (mailbox_id, id desc)`.execute(db);

  // The CRM change feed is ordered by transaction id (xid8), not by a sequence: reading only below the oldest
  // running transaction's id means a slow transaction that commits late is never skipped.
  await sql`
    create table crm.contacts (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      first_name text, last_name text, email text, phone text, mobile text,
      company text, job_title text, department text,
      street text, city text, state text, postal_code text, country text,
      notes text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text
    )`.execute(db);
  await sql`create index contacts_feed on crm.contacts (change_txid)`.execute(db);
  await sql`create index contacts_owner on crm.contacts (owner_id)`.execute(db);
  // Writes made by the sync set cxsync.writer (transaction-local) so the feed can leave out a mailbox's own echoes.
  await sql`
    create function crm.stamp_change() returns trigger language plpgsql as $$
    begin
      new.change_txid := pg_current_xact_id();
      new.changed_by := nullif(current_setting('cxsync.writer', true), '');
      if tg_op = 'UPDATE' then new.updated_at := now(); end if;
      return new;
    end $$`.execute(db);
  await sql`create trigger contacts_stamp before insert or update on crm.contacts for each row execute function crm.stamp_change()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop schema if exists sync cascade`.execute(db);
  await sql`drop schema if exists crm cascade`.execute(db);
}
