/**
 * Migration 0009: meetings cxsync wrote before `event.invitations` was applied were written with their attendees,
 * so their mappings with attendees (in the base, or in the CRM when the mapping has no base) are recorded as
 * 'invite' — an upgrade never turns an invited meeting into a listed one (that would mail cancellations).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { down, up } from '../../src/db/migrations/0009_event_invitations';
import { freshDatabase } from '../helpers/database';

describe('migration 0009: meetings written before the policy applied stay invited', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const M = 'mia@contoso.com';
  const ids: Record<string, string> = {};

  before(async () => {
    database = await freshDatabase();
    const db = database.db;
    await down(db as unknown as Kysely<unknown>);
    const u = await sql<{ id: string }>`insert into crm.users (email, display_name) values (${M}, 'Mia') returning id::text`.execute(db);
    const owner = u.rows[0].id;
    await sql`insert into sync.mailbox (id, crm_user_id) values (${M}, ${owner}::uuid)`.execute(db);
    for (const name of ['baseWith', 'baseWithout', 'nullWith', 'nullWithout']) {
      const e = await sql<{ id: string }>`insert into crm.events (owner_id, subject, start_local, end_local) values (${owner}::uuid, ${name}, '2030-01-07T09:00', '2030-01-07T10:00') returning id::text`.execute(db);
      ids[name] = e.rows[0].id;
    }
    await sql`insert into crm.event_attendees (event_id, email) values (${ids.nullWith}::uuid, 'ann@example.com'), (${ids.baseWithout}::uuid, 'bob@example.com')`.execute(db);
    const map = (name: string, base: unknown) =>
      sql`insert into sync.mapping (mailbox_id, record_type, crm_id, exchange_id, sync_id, base)
        values (${M}, 'event', ${ids[name]}, ${`ex-${name}`}, gen_random_uuid(), ${base === null ? null : JSON.stringify(base)}::jsonb)`.execute(db);
    await map('baseWith', { subject: 'baseWith', attendees: [{ email: 'ann@example.com', type: 'required', response: 'none' }] });
    // The base is what was last synced: attendees the CRM has gained since have not been written yet.
    await map('baseWithout', { subject: 'baseWithout', attendees: [] });
    await map('nullWith', null);
    await map('nullWithout', null);
  });
  after(async () => database?.drop());

  test('mapped meetings with attendees are recorded as invite; the others are left to decide', async () => {
    await up(database.db as unknown as Kysely<unknown>);
    const rows = await sql<{ crm_id: string; handling: string }>`select crm_id, handling from sync.event_invitation order by crm_id`.execute(database.db);
    const byName = Object.fromEntries(rows.rows.map((r) => [Object.keys(ids).find((k) => ids[k] === r.crm_id), r.handling]));
    assert.deepEqual(byName, { baseWith: 'invite', nullWith: 'invite' });
  });
});
