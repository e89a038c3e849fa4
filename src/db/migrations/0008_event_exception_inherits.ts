import { sql, type Kysely } from 'kysely';

/**
 * An exception row of a series (crm.events with series_id) inherits the series' subject and location when it has
 * none of its own: subject '' (the column is not null), location null. The sync used to store a copy of the
 * series' values instead, and a copy reads as an occurrence-specific subject once the series is renamed — both
 * sides then kept the old one. Rows whose value still equals their series' are made to inherit: what they mean
 * today is unchanged (the sync already drops an exception subject equal to the series'); only a later rename of
 * the series now reaches them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    update crm.events x set
      subject = case when x.subject = m.subject then '' else x.subject end,
      location = case when x.location = m.location then null else x.location end
    from crm.events m
    where x.series_id = m.id and x.deleted_at is null
      and ((x.subject <> '' and x.subject = m.subject) or x.location = m.location)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // The copies the code before this migration expects.
  await sql`
    update crm.events x set subject = case when x.subject = '' then m.subject else x.subject end, location = coalesce(x.location, m.location)
    from crm.events m
    where x.series_id = m.id and x.deleted_at is null and (x.subject = '' or (x.location is null and m.location is not null))`.execute(db);
}
