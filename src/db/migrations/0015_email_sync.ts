/**
 * Email sync with the CRM Email folder (issue 10, Acumatica; src/activities/email-sync.ts, docs/RECORD_TYPES.md
 * "Email sync (the CRM Email folder)").
 *
 * - sync.email_sync_folder: per mailbox, the policy's sync folder (name and id), the delta link its next round
 *   starts from, when its ids were last re-scanned, and the CRM email-activity feed's watermark with the origin
 *   it was saved under (feed-guard.ts: a restored or replaced CRM database is detected, and the feed is then read
 *   in full, which the map makes duplicate-free).
 * - sync.email_sync_map: which message of the folder (immutable id) is which CRM email activity, and which side
 *   created it. A CRM-created row is written before its message (message_id null, the sync id stamped on the
 *   message already chosen), so an attempt that dies between the Graph write and the row's update finds the
 *   message again by its sync id instead of creating it twice. Several messages may map to one activity (two
 *   copies of one message placed in the folder); an activity has at most one message created from it.
 *   `state`: in-folder, left-folder (the user moved it elsewhere), gone (deleted in Exchange), crm-deleted (the
 *   activity was deleted in the CRM and its message moved to Deleted Items, or left where the user put it).
 *   `complete` is false until the message's attachments are all carried across; `attachments_done` and
 *   `upload` let an interrupted attempt go on where it stopped.
 *
 * crm.feed_origin() now names crm.email_activities as well (0013 left it out until a feed watermark was saved
 * for it): a re-created email_activities table forces one full read of the email feed. Watermarks saved before
 * this migration carry no such key, and feed-guard compares only keys both sides have: no resync is forced.
 *
 * Every row goes with its mailbox (on delete cascade; retention-store.ts removeMailboxRows finds both tables by
 * their mailbox_id column).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table sync.email_sync_folder (
      mailbox_id text primary key references sync.mailbox(id) on delete cascade,
      folder_name text not null,
      folder_id text not null,
      delta_link text,
      rescanned_at timestamptz,
      crm_watermark text,
      crm_watermark_origin text,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table sync.email_sync_map (
      id bigint generated always as identity primary key,
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      activity_id uuid not null,
      -- Immutable id; null while a CRM-created message is being created.
      message_id text,
      origin text not null check (origin in ('crm', 'exchange')),
      -- The sync id stamped on a message cxsync created (origin crm); null for a message the user placed.
      sync_id text,
      state text not null default 'in-folder' check (state in ('in-folder', 'left-folder', 'gone', 'crm-deleted')),
      complete boolean not null default false,
      attachments_done text[] not null default '{}',
      upload jsonb,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (mailbox_id, message_id),
      unique (mailbox_id, sync_id)
    )`.execute(db);
  await sql`create unique index email_sync_map_crm_activity on sync.email_sync_map (mailbox_id, activity_id) where origin = 'crm'`.execute(db);
  await sql`create index email_sync_map_activity on sync.email_sync_map (mailbox_id, activity_id)`.execute(db);
  await sql`
    create or replace function crm.feed_origin() returns text language plpgsql stable as $$
    declare
      sysid text;
    begin
      begin
        select system_identifier::text into sysid from pg_control_system();
      exception when insufficient_privilege then
        sysid := null;
      end;
      return concat_ws(' ',
        'system=' || sysid,
        'db=' || (select d.oid::text from pg_database d where d.datname = current_database()),
        'crm.contacts=' || to_regclass('crm.contacts')::oid::text,
        'crm.events=' || to_regclass('crm.events')::oid::text,
        'crm.tasks=' || to_regclass('crm.tasks')::oid::text,
        'crm.tombstone=' || to_regclass('crm.tombstone')::oid::text,
        'crm.email_activities=' || to_regclass('crm.email_activities')::oid::text);
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function crm.feed_origin() returns text language plpgsql stable as $$
    declare
      sysid text;
    begin
      begin
        select system_identifier::text into sysid from pg_control_system();
      exception when insufficient_privilege then
        sysid := null;
      end;
      return concat_ws(' ',
        'system=' || sysid,
        'db=' || (select d.oid::text from pg_database d where d.datname = current_database()),
        'crm.contacts=' || to_regclass('crm.contacts')::oid::text,
        'crm.events=' || to_regclass('crm.events')::oid::text,
        'crm.tasks=' || to_regclass('crm.tasks')::oid::text,
        'crm.tombstone=' || to_regclass('crm.tombstone')::oid::text);
    end $$`.execute(db);
  await sql`drop table if exists sync.email_sync_map`.execute(db);
  await sql`drop table if exists sync.email_sync_folder`.execute(db);
}
