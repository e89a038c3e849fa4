/**
 * Contact classes (issue 4, policy `contact.contactClass`): `crm.contacts.contact_class`, set on contacts the
 * sync creates in the CRM from Exchange when the mailbox's policy names a class. Not a synced field: the
 * contact mapper and fingerprints do not read it, and editing it does not reach Exchange.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table crm.contacts add column contact_class text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table crm.contacts drop column if exists contact_class`.execute(db);
}
