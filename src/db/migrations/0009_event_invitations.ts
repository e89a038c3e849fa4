/**
 * Meeting invitations (policy `event.invitations`, src/domain/invitations.ts): `sync.event_invitation` keeps, per
 * mailbox and CRM meeting, whether cxsync writes the meeting's attendees to Outlook ('invite': Exchange mails
 * them) or only lists them in the body ('list-in-body'). The decision sticks for the meeting's life: adding the
 * attendees later would invite people about an old meeting, removing them would mail cancellations.
 *
 * No foreign key to sync.mailbox: a mailbox unenrolled and enrolled again finds its Outlook copies as they were
 * written, and must keep handling them the same way.
 *
 * Meetings cxsync wrote before this migration were written with their attendees (there was no other way), so
 * the mapped ones that have attendees — in the mapping's base, or in the CRM when the mapping has no base — are
 * recorded as 'invite'.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table sync.event_invitation (
      mailbox_id text not null,
      crm_id text not null,
      handling text not null check (handling in ('invite', 'list-in-body')),
      reason text not null,
      decided_at timestamptz not null default now(),
      primary key (mailbox_id, crm_id)
    )`.execute(db);
  await sql`
    insert into sync.event_invitation (mailbox_id, crm_id, handling, reason)
    select m.mailbox_id, m.crm_id, 'invite', 'written with its attendees before event.invitations was applied'
    from sync.mapping m
    where m.record_type = 'event'
      and (case when jsonb_typeof(m.base -> 'attendees') = 'array' then jsonb_array_length(m.base -> 'attendees') > 0 else false end
        or (m.base is null and exists (select 1 from crm.event_attendees a where a.event_id::text = m.crm_id)))
    on conflict do nothing`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists sync.event_invitation`.execute(db);
}
