/**
 * Filing mail by drop folder (issue 10; src/activities/email-filing.ts, docs/RECORD_TYPES.md "Email").
 *
 * - sync.mail_folder: per mailbox and folder role — a drop folder (account, contact, lead), or Inbox and Sent
 *   Items read for replies (inbox, sentitems) — the folder's immutable id, the delta link its next round starts
 *   from, when its ids were last re-scanned (the backstop for a message moved A→B→A between two rounds, which
 *   delta reports removed and never again), and since when it is read.
 * - sync.mail_filed: what was settled, per mailbox, message (immutable id) and role (a drop folder's, or
 *   `reply`): the activity it became, or none when an operator chose to leave it unfiled.
 *   A message seen again (a later round, a re-scan, a retried activity) is not filed again.
 * - sync.email_unresolved: messages that could not be filed (no usable sender, an ambiguous match, an excluded
 *   sender, a deleted activity), with the reason and candidates, until an operator's decision (`decision`) is
 *   carried out by the next cycle or the message is filed. Holds the subject and sender so the operator can
 *   recognise the message; the CRM holds as much once it is filed.
 * - sync.email_exclusion: addresses and domains never filed, for one mailbox or (mailbox_id null) all of them,
 *   added by `cxsync email ignore-address|ignore-domain`; the policy's `email.exclude` adds to them.
 *
 * Every row of a mailbox goes with it when it is removed (retention-store.ts removeMailboxRows finds the tables
 * by their mailbox_id column); a global exclusion (mailbox_id null) stays.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table sync.mail_folder (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      role text not null check (role in ('account', 'contact', 'lead', 'inbox', 'sentitems')),
      folder_name text not null,
      folder_id text not null,
      delta_link text,
      rescanned_at timestamptz,
      -- Replies (inbox, sentitems) are filed from this moment on, never retroactively.
      since timestamptz not null default now(),
      primary key (mailbox_id, role)
    )`.execute(db);
  await sql`
    create table sync.mail_filed (
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      message_id text not null,
      role text not null check (role in ('account', 'contact', 'lead', 'reply')),
      -- Null when an operator chose to leave the message unfiled (cxsync email ignore, ignore-address/-domain):
      -- settled all the same, so a re-scan does not list it again.
      activity_id uuid,
      -- The thread it belongs to in this mailbox, and its Internet message id: a reply is found by them.
      conversation_id text,
      internet_message_id text,
      filed_at timestamptz not null default now(),
      primary key (mailbox_id, message_id, role)
    )`.execute(db);
  await sql`create index mail_filed_conversation on sync.mail_filed (mailbox_id, conversation_id) where conversation_id is not null`.execute(db);
  await sql`
    create table sync.email_unresolved (
      id bigint generated always as identity primary key,
      mailbox_id text not null references sync.mailbox(id) on delete cascade,
      message_id text not null,
      role text not null check (role in ('account', 'contact', 'lead', 'reply')),
      internet_message_id text,
      subject text not null default '',
      sender_address text,
      sender_name text,
      received_at timestamptz,
      reason text not null,
      candidates jsonb not null default '[]',
      -- An operator's decision, carried out by the next cycle: {"file":[{type,id}]}, {"create":type}, {"ignore":true}.
      decision jsonb,
      decided_by text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (mailbox_id, message_id, role)
    )`.execute(db);
  await sql`create index email_unresolved_open on sync.email_unresolved (mailbox_id, id)`.execute(db);
  await sql`
    create table sync.email_exclusion (
      id bigint generated always as identity primary key,
      mailbox_id text references sync.mailbox(id) on delete cascade,
      kind text not null check (kind in ('address', 'domain')),
      value text not null,
      added_by text,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index email_exclusion_unique on sync.email_exclusion (coalesce(mailbox_id, ''), kind, value)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['email_exclusion', 'email_unresolved', 'mail_filed', 'mail_folder']) {
    await sql`drop table if exists ${sql.table(`sync.${t}`)}`.execute(db);
  }
}
