/**
 * Migration 0008: exception rows that hold a copy of their series' subject or location (as the sync wrote them
 * before) are made to inherit ('' / null), so a later rename of the series reaches them; an occurrence's own
 * subject or location stays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { down, up } from '../../src/db/migrations/0008_event_exception_inherits';
import { freshDatabase } from '../helpers/database';

describe('migration 0008: exception rows inherit the series subject and location', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let master: string;

  before(async () => {
    database = await freshDatabase();
    const db = database.db;
    const u = await sql<{ id: string }>`insert into crm.users (email, display_name) values ('mia@contoso.com', 'Mia') returning id::text`.execute(db);
    const owner = u.rows[0].id;
    const rec = JSON.stringify({ pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: '2030-01-07', numberOfOccurrences: 5 } });
    const m = await sql<{ id: string }>`insert into crm.events (owner_id, subject, location, start_local, end_local, time_zone, recurrence)
      values (${owner}::uuid, 'Planning', 'Room 1', '2030-01-07T09:00', '2030-01-07T10:00', 'Europe/Berlin', ${rec}::jsonb) returning id::text`.execute(db);
    master = m.rows[0].id;
    const row = (original: string, subject: string, location: string | null, status = 'Open') =>
      sql`insert into crm.events (owner_id, subject, location, start_local, end_local, time_zone, series_id, original_start, status)
        values (${owner}::uuid, ${subject}, ${location}, ${`${original}T11:00`}::timestamp, ${`${original}T12:00`}::timestamp, 'Europe/Berlin', ${master}::uuid, ${`${original}T09:00`}::timestamp, ${status})`.execute(db);
    await row('2030-01-14', 'Planning', 'Room 1'); // a copy of both
    await row('2030-01-21', 'Planning (budget)', 'Room 1'); // its own subject, a copy of the room
    await row('2030-01-28', 'Planning', 'Board room'); // a copy of the subject, its own room
    await row('2030-02-04', 'Planning', null, 'Canceled');
  });
  after(async () => database?.drop());

  const rows = async () =>
    (
      await sql<{ original: string; subject: string; location: string | null }>`
        select to_char(original_start, 'YYYY-MM-DD') as original, subject, location from crm.events
        where series_id = ${master}::uuid order by original_start`.execute(database.db)
    ).rows.map((r) => [r.original, r.subject, r.location]);

  test('copies become inheritance; own values stay; down puts the copies back', async () => {
    const asMigrator = database.db as unknown as Kysely<unknown>; // migrations are typed against no schema
    await up(asMigrator);
    assert.deepEqual(await rows(), [
      ['2030-01-14', '', null],
      ['2030-01-21', 'Planning (budget)', null],
      ['2030-01-28', '', 'Board room'],
      ['2030-02-04', '', null],
    ]);
    const m = await sql<{ subject: string }>`select subject from crm.events where id = ${master}::uuid`.execute(database.db);
    assert.equal(m.rows[0].subject, 'Planning', 'the master is untouched');

    await down(asMigrator);
    assert.deepEqual(await rows(), [
      ['2030-01-14', 'Planning', 'Room 1'],
      ['2030-01-21', 'Planning (budget)', 'Room 1'],
      ['2030-01-28', 'Planning', 'Board room'],
      ['2030-02-04', 'Planning', 'Room 1'],
    ]);
  });
});
