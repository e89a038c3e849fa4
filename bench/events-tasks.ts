/**
 * Benchmark (issue 5): initial sync of 2,000 calendar events (200 of them weekly series, half of those with a
 * moved and a cancelled occurrence) and 2,000 tasks, on the real stack (Temporal dev server, PostgreSQL, the
 * HTTPS Graph emulator through the real Graph client and the per-mailbox gate).
 *
 *   DATABASE_URL=postgres://… TEMPORAL_CLI_PATH=… npx tsx bench/events-tasks.ts [--latency-ms 0] [--batch 500]
 *
 * Two mailboxes, one per direction: CRM → Exchange (everything starts in the CRM) and Exchange → CRM
 * (everything starts in the mailbox). Each is enrolled and synced (sync-now, cycle after cycle: a cycle takes at
 * most the batch size per type) until a cycle finds nothing to do. Reported: wall time, cycles, Graph operations
 * counted by the emulator (every $batch sub-request counts, as Outlook counts them), and the cost of a quiet
 * cycle afterwards. Results and method: docs/BENCHMARKS.md ("Events and tasks").
 */
import { sql } from 'kysely';
import { addDays } from '../src/domain/timezone';
import type { TypeSummary } from '../src/domain/status';
import { startStack, type Stack } from '../test/helpers/stack';
import { arg } from './kit';

const EVENTS = 2000;
const SERIES = 200;
const TASKS = 2000;
const ZONES = [
  { iana: 'Europe/Berlin', windows: 'W. Europe Standard Time' },
  { iana: 'America/New_York', windows: 'Eastern Standard Time' },
];
const CRM_STATUSES = ['Open', 'In Process', 'Completed', 'Canceled', 'Pending Approval', 'Approved'];
const TODO_STATUSES = ['notStarted', 'inProgress', 'completed', 'waitingOnOthers'];


const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);
const hh = (n: number) => String(n).padStart(2, '0');
/** Monday on or after the date. */
function monday(d: string): string {
  while (new Date(`${d}T00:00:00Z`).getUTCDay() !== 1) d = addDays(d, 1);
  return d;
}

async function seedCrm(s: Stack, owner: string): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    for (let i = 0; i < EVENTS - SERIES; i += 200) {
      const rows = Array.from({ length: Math.min(200, EVENTS - SERIES - i) }, (_, k) => {
        const n = i + k;
        const z = ZONES[n % 2].iana;
        const d = day(1 + (n % 300));
        const h = 8 + (n % 9);
        return sql`(${owner}::uuid, ${n % 3 === 0 ? 'Call' : 'Meeting'}, ${`Event ${n}`}, ${`Notes for event ${n}`}, ${`Room ${n % 40}`},
          ${`${d}T${hh(h)}:00`}::timestamp, ${`${d}T${hh(h)}:45`}::timestamp, ${z})`;
      });
      const ids = await sql<{ id: string }>`insert into crm.events (owner_id, event_type, subject, description, location, start_local, end_local, time_zone)
        values ${sql.join(rows)} returning id::text`.execute(tx);
      // A third of the events have two attendees.
      const att = ids.rows.filter((_, k) => (i + k) % 3 === 0).flatMap((r, k) => [sql`(${r.id}::uuid, ${`guest${k}@fabrikam.example`}, 'required')`, sql`(${r.id}::uuid, ${`peer${k}@contoso.example`}, 'optional')`]);
      if (att.length) await sql`insert into crm.event_attendees (event_id, email, attendance) values ${sql.join(att)}`.execute(tx);
    }
    for (let n = 0; n < SERIES; n++) {
      const z = ZONES[n % 2].iana;
      const start = monday(day(1 + (n % 28)));
      const h = 8 + (n % 9);
      const rec = { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: start, numberOfOccurrences: 12 } };
      const m = await sql<{ id: string }>`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, recurrence)
        values (${owner}::uuid, ${`Series ${n}`}, ${`${start}T${hh(h)}:00`}::timestamp, ${`${start}T${hh(h)}:30`}::timestamp, ${z}, ${JSON.stringify(rec)}::jsonb)
        returning id::text`.execute(tx);
      if (n % 2 === 0) {
        const moved = addDays(start, 14);
        const cancelled = addDays(start, 28);
        await sql`insert into crm.events (owner_id, subject, start_local, end_local, time_zone, series_id, original_start, status) values
          (${owner}::uuid, ${`Series ${n}`}, ${`${addDays(moved, 1)}T${hh(h)}:00`}::timestamp, ${`${addDays(moved, 1)}T${hh(h)}:30`}::timestamp, ${z}, ${m.rows[0].id}::uuid, ${`${moved}T${hh(h)}:00`}::timestamp, 'Open'),
          (${owner}::uuid, ${`Series ${n}`}, ${`${cancelled}T${hh(h)}:00`}::timestamp, ${`${cancelled}T${hh(h)}:30`}::timestamp, ${z}, ${m.rows[0].id}::uuid, ${`${cancelled}T${hh(h)}:00`}::timestamp, 'Canceled')`.execute(tx);
      }
    }
    for (let i = 0; i < TASKS; i += 500) {
      const rows = Array.from({ length: Math.min(500, TASKS - i) }, (_, k) => {
        const n = i + k;
        return sql`(${owner}::uuid, ${`Task ${n}`}, ${`Details of task ${n}`}, ${CRM_STATUSES[n % CRM_STATUSES.length]}, ${['Low', 'Medium', 'High'][n % 3]},
          ${day(n % 90)}::date, ${n % 2 ? `${day(n % 90)}T09:00` : null}::timestamp, 'Europe/Berlin')`;
      });
      await sql`insert into crm.tasks (owner_id, subject, description, status, priority, due_date, reminder_local, time_zone) values ${sql.join(rows)}`.execute(tx);
    }
  });
}

function seedExchange(s: Stack, upn: string): void {
  const admin = s.emulator.admin;
  for (let n = 0; n < EVENTS - SERIES; n++) {
    const z = ZONES[n % 2].windows;
    const d = day(1 + (n % 300));
    const h = 8 + (n % 9);
    admin.createEvent(upn, 'VEvents', {
      subject: `Appointment ${n}`,
      body: { contentType: 'html', content: `<p>Notes for appointment ${n}</p>` },
      location: { displayName: `Room ${n % 40}` },
      start: { dateTime: `${d}T${hh(h)}:00:00`, timeZone: z },
      end: { dateTime: `${d}T${hh(h)}:45:00`, timeZone: z },
      ...(n % 3 === 0 ? { attendees: [{ emailAddress: { address: `guest${n}@fabrikam.example` }, type: 'required' }] } : {}),
    });
  }
  const masters: Array<{ id: string; start: string; h: number; z: string }> = [];
  for (let n = 0; n < SERIES; n++) {
    const z = ZONES[n % 2].windows;
    const start = monday(day(1 + (n % 28)));
    const h = 8 + (n % 9);
    const ev = admin.createEvent(upn, 'VEvents', {
      subject: `Weekly ${n}`,
      start: { dateTime: `${start}T${hh(h)}:00:00`, timeZone: z },
      end: { dateTime: `${start}T${hh(h)}:30:00`, timeZone: z },
      recurrence: { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, range: { type: 'numbered', startDate: start, numberOfOccurrences: 12 } },
    });
    if (n % 2 === 0) masters.push({ id: ev.id, start, h, z });
  }
  // Half of the series: the third occurrence moved a day later, the fifth cancelled.
  const view = admin.calendarView(upn, 'VEvents', `${day(0)}T00:00:00Z`, `${day(130)}T00:00:00Z`) as Array<Record<string, unknown>>;
  for (const m of masters) {
    const occ = view.filter((v) => v.seriesMasterId === m.id).sort((a, b) => String((a.start as { dateTime: string }).dateTime).localeCompare(String((b.start as { dateTime: string }).dateTime)));
    const moved = addDays(m.start, 15);
    admin.updateEvent(upn, String(occ[2].id), { start: { dateTime: `${moved}T${hh(m.h)}:00:00`, timeZone: m.z }, end: { dateTime: `${moved}T${hh(m.h)}:30:00`, timeZone: m.z } });
    admin.deleteEvent(upn, String(occ[4].id));
  }
  for (let n = 0; n < TASKS; n++) {
    admin.createTask(upn, 'VTasks', {
      title: `To Do ${n}`,
      status: TODO_STATUSES[n % TODO_STATUSES.length],
      importance: ['low', 'normal', 'high'][n % 3],
      body: { content: `Details of to-do ${n}`, contentType: 'text' },
      dueDateTime: { dateTime: `${day(n % 90)}T00:00:00`, timeZone: 'UTC' },
      ...(n % 2 ? { isReminderOn: true, reminderDateTime: { dateTime: `${day(n % 90)}T09:00:00`, timeZone: 'W. Europe Standard Time' } } : {}),
    });
  }
}

interface Run {
  label: string;
  seconds: number;
  cycles: number;
  requests: number;
  created: { event: number; task: number };
  errors: number;
  quietRequests: number;
  quietSeconds: number;
}

const busy = (t: TypeSummary | undefined) =>
  !!t && t.pulled.exchange + t.pulled.crm + t.exchange.created + t.exchange.updated + t.exchange.deleted + t.crm.created + t.crm.updated + t.crm.deleted > 0;

async function syncUntilQuiet(s: Stack, upn: string, label: string, side: 'exchange' | 'crm'): Promise<Run> {
  const before = s.emulator.requestCount(upn);
  const t0 = Date.now();
  await s.operator.enroll(upn);
  let cycles = 0;
  const created = { event: 0, task: 0 };
  let errors = 0;
  for (;;) {
    const st = await s.operator.syncNow(upn, { wait: true, timeoutMs: 30 * 60_000 });
    const c = st?.lastCycle;
    if (!c || c.outcome !== 'completed') throw new Error(`${label}: cycle ${c?.outcome}: ${c?.detail ?? ''}`);
    cycles++;
    created.event += c.types.event?.[side].created ?? 0;
    created.task += c.types.task?.[side].created ?? 0;
    errors += (c.types.event?.errors ?? 0) + (c.types.task?.errors ?? 0);
    if (!busy(c.types.event) && !busy(c.types.task)) break;
    if (cycles > 100) throw new Error(`${label}: not quiet after 100 cycles`);
  }
  const seconds = (Date.now() - t0) / 1000;
  const requests = s.emulator.requestCount(upn) - before;
  // The last cycle was already quiet; one more shows what a steady-state cycle costs.
  const q0 = s.emulator.requestCount(upn);
  const tq = Date.now();
  await s.operator.syncNow(upn, { wait: true });
  return { label, seconds, cycles, requests, created, errors, quietRequests: s.emulator.requestCount(upn) - q0, quietSeconds: (Date.now() - tq) / 1000 };
}

async function main(): Promise<void> {
  const latency = arg('latency-ms', 0);
  const batch = arg('batch', 500);
  const s = await startStack({ worker: { batchSize: batch, intervalSeconds: 24 * 3600 } });
  try {
    const toExchange = 'crm.first@contoso.example';
    const toCrm = 'outlook.first@contoso.example';
    const owner = await s.addUser(toExchange, 'CRM First');
    await s.addUser(toCrm, 'Outlook First');
    await sql`update crm.users set time_zone = 'Europe/Berlin'`.execute(s.db);
    if (latency) for (const u of [toExchange, toCrm]) s.emulator.admin.setLatency(u, latency);

    let t = Date.now();
    await seedCrm(s, owner);
    console.log(`seeded the CRM in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    seedExchange(s, toCrm);
    console.log(`seeded the mailbox in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    const runs = [await syncUntilQuiet(s, toExchange, 'CRM → Exchange', 'exchange'), await syncUntilQuiet(s, toCrm, 'Exchange → CRM', 'crm')];
    const counts = await sql<{ events: string; exceptions: string; tasks: string }>`
      select (select count(*) from crm.events e join crm.users u on u.id = e.owner_id where u.email = ${toCrm} and e.series_id is null)::text as events,
             (select count(*) from crm.events e join crm.users u on u.id = e.owner_id where u.email = ${toCrm} and e.series_id is not null)::text as exceptions,
             (select count(*) from crm.tasks t join crm.users u on u.id = t.owner_id where u.email = ${toCrm})::text as tasks`.execute(s.db);
    const exported = { events: s.emulator.admin.listEvents(toExchange, 'VEvents').length, tasks: s.emulator.admin.listTasks(toExchange, 'VTasks').length };

    console.log(`\nbatch size ${batch}, emulator latency ${latency} ms per Graph operation\n`);
    console.log('| direction | events / series / tasks | wall time | cycles | Graph operations | quiet cycle after |');
    console.log('|---|---|---|---|---|---|');
    for (const r of runs) {
      console.log(`| ${r.label} | ${r.created.event} / ${SERIES} / ${r.created.task} created | ${r.seconds.toFixed(1)} s | ${r.cycles} | ${r.requests} | ${r.quietRequests} operations, ${r.quietSeconds.toFixed(1)} s |`);
      if (r.errors) console.log(`  (${r.errors} item errors)`);
    }
    console.log(`\nCRM → Exchange: ${exported.events} events/series masters and ${exported.tasks} tasks in the mailbox`);
    console.log(`Exchange → CRM: ${counts.rows[0].events} events/series masters, ${counts.rows[0].exceptions} exception rows, ${counts.rows[0].tasks} tasks in the CRM`);
  } finally {
    await s.teardown();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
