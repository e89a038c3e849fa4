/** Demo data for the local quick start: two CRM users with contacts, events and tasks, and their mailboxes in the emulator. */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/connection';
import type { Database } from '../db/schema';

export const DEMO_MAILBOXES = [
  { email: 'anna@contoso.com', displayName: 'Anna Schmidt', workgroup: 'Sales', timeZone: 'Europe/Berlin' },
  { email: 'ben@contoso.com', displayName: 'Ben Carter', workgroup: 'Sales', timeZone: 'America/New_York' },
] as const;

const DEMO_CONTACTS: Record<string, { first_name: string; last_name: string; email: string; company: string; job_title: string; phone: string }[]> = {
  'anna@contoso.com': [
    { first_name: 'Lukas', last_name: 'Weber', email: 'lukas.weber@fabrikam.de', company: 'Fabrikam', job_title: 'Buyer', phone: '+49 30 1234567' },
    { first_name: 'Sofia', last_name: 'Rossi', email: 'sofia.rossi@adventure-works.it', company: 'Adventure Works', job_title: 'CTO', phone: '+39 02 7654321' },
    { first_name: 'Jan', last_name: 'Novak', email: 'jan.novak@tailspin.cz', company: 'Tailspin Toys', job_title: 'Owner', phone: '+420 2 2222 3333' },
  ],
  'ben@contoso.com': [
    { first_name: 'Maria', last_name: 'Garcia', email: 'maria.garcia@northwind.com', company: 'Northwind Traders', job_title: 'Purchasing Manager', phone: '+1 212 555 0101' },
    { first_name: 'Kenji', last_name: 'Sato', email: 'kenji.sato@wingtip.jp', company: 'Wingtip Toys', job_title: 'CEO', phone: '+81 3 5555 0199' },
  ],
};

/** Seeds the demo CRM once: does nothing when the CRM already has users. */
export async function seedDemoCrm(db: Db): Promise<boolean> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from crm.users`.execute(db);
  if (Number(rows[0].n) > 0) return false;
  await db.transaction().execute(async (tx) => {
    for (const u of DEMO_MAILBOXES) {
      const { id } = await tx
        .insertInto('crm.users')
        .values({ email: u.email, display_name: u.displayName, workgroup: u.workgroup, time_zone: u.timeZone })
        .returning('id')
        .executeTakeFirstOrThrow();
      for (const c of DEMO_CONTACTS[u.email]) await tx.insertInto('crm.contacts').values({ ...c, owner_id: id } as never).execute();
      await seedDemoActivities(tx, id, u.timeZone);
    }
  });
  return true;
}

/** Demo Exchange contacts made "by the user" in Outlook, so the first sync shows both directions. */
export const DEMO_EXCHANGE_CONTACTS: Record<string, Record<string, unknown>[]> = {
  'anna@contoso.com': [{ givenName: 'Chloé', surname: 'Martin', companyName: 'Contoso Paris', emailAddresses: [{ address: 'chloe.martin@contoso.fr' }] }],
  'ben@contoso.com': [{ givenName: 'Omar', surname: 'Haddad', companyName: 'Litware', emailAddresses: [{ address: 'omar@litware.com' }] }],
};

/** A few events (a meeting, a call, a weekly series) and tasks per demo user, in the coming days in the user's zone. */
async function seedDemoActivities(tx: Transaction<Database>, ownerId: string, timeZone: string): Promise<void> {
  const day = (n: number) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);
  let monday = day(1);
  while (new Date(`${monday}T00:00:00Z`).getUTCDay() !== 1) monday = new Date(Date.parse(`${monday}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const weekly = { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: monday, numberOfOccurrences: 10 } };
  await sql`insert into crm.events (owner_id, event_type, subject, location, start_local, end_local, time_zone, recurrence) values
    (${ownerId}::uuid, 'Meeting', 'Quarterly review', 'Room 4.12', ${`${day(2)}T09:00`}::timestamp, ${`${day(2)}T10:30`}::timestamp, ${timeZone}, null),
    (${ownerId}::uuid, 'Call', 'Follow-up call', null, ${`${day(3)}T15:00`}::timestamp, ${`${day(3)}T15:30`}::timestamp, ${timeZone}, null),
    (${ownerId}::uuid, 'Meeting', 'Weekly sales sync', 'Teams', ${`${monday}T09:00`}::timestamp, ${`${monday}T09:30`}::timestamp, ${timeZone}, ${JSON.stringify(weekly)}::jsonb)`.execute(tx);
  await sql`insert into crm.tasks (owner_id, subject, status, priority, due_date, reminder_local, time_zone) values
    (${ownerId}::uuid, 'Send the offer', 'Open', 'High', ${day(3)}::date, ${`${day(3)}T09:00`}::timestamp, ${timeZone}),
    (${ownerId}::uuid, 'Prepare the contract draft', 'In Process', 'Medium', ${day(7)}::date, null, ${timeZone}),
    (${ownerId}::uuid, 'Internal draft (not synced)', 'Draft', 'Low', null, null, ${timeZone})`.execute(tx);
}

/** The policy the demo mailboxes are enrolled with: the defaults, with email filing on. */
export const DEMO_POLICY = { name: 'demo', doc: { description: 'npm start demo: the defaults, with email filing by drop folder on', email: { enabled: true } } } as const;

/**
 * Mail the demo users drop into VLeads once their drop folders exist: one from a CRM contact of theirs (filed to
 * that contact, no lead made) and one from an unknown sender (a new lead). Month-old mail: drop folders have no
 * received-date filter.
 */
export function demoDroppedMail(mailbox: string): Array<{ folder: string; message: Record<string, unknown> }> {
  const known = DEMO_CONTACTS[mailbox]?.[0];
  const user = DEMO_MAILBOXES.find((m) => m.email === mailbox);
  if (!known || !user) return [];
  const received = new Date(Math.floor((Date.now() - 30 * 86_400_000) / 1000) * 1000).toISOString();
  const to = [{ emailAddress: { address: mailbox, name: user.displayName } }];
  return [
    {
      folder: 'VLeads',
      message: {
        subject: 'Re: your offer',
        body: { contentType: 'html', content: `<p>Thanks for the offer, we would like to go ahead.</p><p>${known.first_name}</p>` },
        from: { emailAddress: { address: known.email, name: `${known.first_name} ${known.last_name}` } },
        toRecipients: to,
        internetMessageId: `<demo-known.${mailbox}@cxsync.example>`,
        receivedDateTime: received,
      },
    },
    {
      folder: 'VLeads',
      message: {
        subject: 'Enquiry about your products',
        body: { contentType: 'text', content: 'Hello, could you send me your price list? Nina Petrova, Margie Travel' },
        from: { emailAddress: { address: `nina.petrova.${mailbox.split('@')[0]}@margie-travel.example`, name: 'Nina Petrova' } },
        toRecipients: to,
        internetMessageId: `<demo-unknown.${mailbox}@cxsync.example>`,
        receivedDateTime: received,
      },
    },
  ];
}

interface DemoMailDeps {
  admin: { listMessages(upn: string, folder?: string): Array<Record<string, unknown>>; dropMessage(upn: string, folder: string, message: Record<string, unknown>): unknown };
  /** The mailbox's completed cycles (its first one creates the drop folders). */
  cyclesCompleted(mailbox: string): Promise<number>;
  syncNow(mailbox: string): Promise<unknown>;
}

/**
 * Drops the demo mail into each demo mailbox once (a later `npm start` finds it there and drops nothing), after
 * the mailbox's first cycle created its drop folders, then asks for a cycle to file it. Returns the mailboxes
 * it dropped mail into. `signal` stops it (npm start stopping): it asks Temporal nothing more.
 */
export async function dropDemoMail(deps: DemoMailDeps, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string[]> {
  const dropped: string[] = [];
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (const m of DEMO_MAILBOXES) {
    const mail = demoDroppedMail(m.email);
    const present = new Set(deps.admin.listMessages(m.email).map((x) => x.internetMessageId));
    if (mail.every((d) => present.has(d.message.internetMessageId))) continue;
    if (opts.signal?.aborted) return dropped;
    while ((await deps.cyclesCompleted(m.email)) < 1) {
      if (opts.signal?.aborted) return dropped;
      if (Date.now() > deadline) throw new Error(`the first cycle of ${m.email} did not complete within ${Math.round((opts.timeoutMs ?? 120_000) / 1000)} s: no demo mail dropped (see npx cxsync status ${m.email})`);
      await new Promise((r) => setTimeout(r, 500));
    }
    for (const d of mail) if (!present.has(d.message.internetMessageId)) deps.admin.dropMessage(m.email, d.folder, d.message);
    await deps.syncNow(m.email);
    dropped.push(m.email);
  }
  return dropped;
}
