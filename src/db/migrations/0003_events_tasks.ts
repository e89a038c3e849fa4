import { sql, type Kysely } from 'kysely';

/**
 * Calendar events and tasks (issue 5): crm.events (with series and their exception rows), crm.event_attendees,
 * crm.tasks — each on the same change feed as crm.contacts (xid8 change_txid and cxsync.writer through
 * crm.stamp_change) — and sync.event_instance, which remembers which series an Exchange occurrence belongs to
 * (Graph reports a cancelled occurrence only as `@removed` with the occurrence's id).
 *
 * Times are wall time (timestamp without time zone) + IANA zone: 09:00 Europe/Berlin is stored as exactly that.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table crm.events (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      -- Call, Meeting or any custom type; 'Todo' activities are tasks and live in crm.tasks.
      event_type text not null default 'Meeting',
      -- Completing an event is not synced; a Canceled event (or occurrence) is removed from Exchange.
      status text not null default 'Open' check (status in ('Open', 'Completed', 'Canceled')),
      subject text not null default '',
      description text,
      location text,
      all_day boolean not null default false,
      start_local timestamp not null,
      end_local timestamp not null,
      time_zone text not null default 'UTC',
      visibility text not null default 'normal' check (visibility in ('normal', 'personal', 'private', 'confidential')),
      organizer_email text,
      organizer_name text,
      categories text[] not null default '{}',
      -- Series master: Graph's patternedRecurrence (pattern + range), in the event's zone.
      recurrence jsonb,
      -- Exception row: the master it belongs to and the original start of the occurrence it replaces.
      series_id uuid references crm.events(id),
      original_start timestamp,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text,
      check ((series_id is null) = (original_start is null)),
      check (series_id is null or recurrence is null),
      check (end_local >= start_local)
    )`.execute(db);
  await sql`create index events_feed on crm.events (change_txid)`.execute(db);
  await sql`create index events_owner_start on crm.events (owner_id, start_local) where series_id is null`.execute(db);
  await sql`create unique index events_occurrence on crm.events (series_id, original_start) where series_id is not null and deleted_at is null`.execute(db);
  await sql`create trigger events_stamp before insert or update on crm.events for each row execute function crm.stamp_change()`.execute(db);

  await sql`
    create table crm.event_attendees (
      event_id uuid not null references crm.events(id) on delete cascade,
      email text not null,
      name text,
      -- The CRM record behind the attendee, when there is one.
      contact_id uuid references crm.contacts(id),
      user_id uuid references crm.users(id),
      attendance text not null default 'required' check (attendance in ('required', 'optional', 'resource')),
      response text not null default 'none' check (response in ('none', 'organizer', 'tentativelyAccepted', 'accepted', 'declined', 'notResponded')),
      primary key (event_id, email)
    )`.execute(db);
  // An attendee change is a change of its event: touching the event stamps it with this transaction (and writer).
  await sql`
    create function crm.touch_event() returns trigger language plpgsql as $$
    begin
      update crm.events set updated_at = now() where id = coalesce(new.event_id, old.event_id);
      if tg_op = 'UPDATE' and new.event_id is distinct from old.event_id then
        update crm.events set updated_at = now() where id = old.event_id;
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger event_attendees_touch after insert or update or delete on crm.event_attendees for each row execute function crm.touch_event()`.execute(db);

  await sql`
    create table crm.tasks (
      id uuid primary key default gen_random_uuid(),
      owner_id uuid references crm.users(id),
      contact_id uuid references crm.contacts(id),
      subject text not null,
      description text,
      status text not null default 'Open'
        check (status in ('Draft', 'Open', 'In Process', 'Completed', 'Canceled', 'Pending Approval', 'Approved', 'Rejected')),
      priority text not null default 'Medium' check (priority in ('Low', 'Medium', 'High')),
      due_date date,
      reminder_local timestamp,
      time_zone text,
      categories text[] not null default '{}',
      completed_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      deleted_at timestamptz,
      change_txid xid8 not null default pg_current_xact_id(),
      changed_by text
    )`.execute(db);
  await sql`create index tasks_feed on crm.tasks (change_txid)`.execute(db);
  await sql`create index tasks_owner on crm.tasks (owner_id)`.execute(db);
  await sql`create trigger tasks_stamp before insert or update on crm.tasks for each row execute function crm.stamp_change()`.execute(db);

  await sql`
    create table sync.event_instance (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      instance_id text not null,
      series_id text not null,
      primary key (mailbox_id, instance_id)
    )`.execute(db);
  await sql`create index event_instance_series on sync.event_instance (mailbox_id, series_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists sync.event_instance`.execute(db);
  await sql`drop table if exists crm.tasks`.execute(db);
  await sql`drop table if exists crm.event_attendees`.execute(db);
  await sql`drop function if exists crm.touch_event()`.execute(db);
  await sql`drop table if exists crm.events`.execute(db);
}
