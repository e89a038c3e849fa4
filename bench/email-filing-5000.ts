/**
 * Filing 5,000 dropped messages (issue 10, "Performance"), on the real path: a fresh PostgreSQL database with the
 * migrations, the HTTPS Graph emulator with Outlook's throttling model on at Outlook's real rates (10,000 requests
 * per 10 minutes per app and mailbox, 4 in flight, 150 MB of uploads per 5 minutes), the production Graph client
 * with MSAL, and the `fileMail` activity of createMailboxActivities (src/activities/email-filing.ts
 * fileDroppedMail) called cycle after cycle as the mailbox workflow calls it: startCycle, fileMail with the batch
 * size as its limit, finishCycle, until no work remains. A failed attempt that carries a retry delay (a 429, the
 * client-side gate's BudgetExhausted) is retried after that delay, as Temporal would.
 *
 *   DATABASE_URL=postgres://… npx tsx bench/email-filing-5000.ts [--messages 5000] [--batch 500] [--latency-ms 20] [--jitter-ms 20] [--seed 1]
 *
 * The mailbox gets the three drop folders (VAccounts, VContacts, VLeads), each a third of the messages. Senders:
 * half known to the CRM (seeded contacts, leads, accounts by domain, owned by the mailbox's user), half unknown,
 * which become a record of the folder's type on their first message; both pools send several messages each
 * (repeats). Every fifth message has attachments: most have one or two small files (4–120 KB); one in 25 of them a
 * file of 3.2–5.5 MB (over Graph's 3 MB inline limit, under the policy's 10 MB default: stored), one in 100 a file
 * of 10.5–12 MB (over the policy's limit: kept as a placeholder). Messages are seeded through the emulator's
 * admin API in-process (as mail arriving: attachments of any size up to the mailbox's 35 MB message limit).
 *
 * Reported: wall time, messages/s, Graph operations (every $batch sub-request counts, as Outlook counts them) in
 * total and per message, 429s, the busiest 10-minute window as a share of 10,000, the busiest 5-minute window of
 * uploads (POST/PATCH/PUT operations) as a share of 150 MB, CRM rows, SQL statements, peak RSS (this process:
 * the emulator with every message and attachment in memory, the client and PostgreSQL's client side). Then quiet
 * cycles: the Graph operations of filing when nothing is new. Checks that fail the run (exit 1): one activity per
 * Internet message id, each linked to exactly the expected record, attachments and placeholders as seeded
 * (sizes and SHA-256 of the stored bytes), records created once per unknown sender, nothing unresolved.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import { ApplicationFailure } from '@temporalio/common';
import { createMailboxActivities } from '../src/activities/mailbox-activities';
import { graphAdapters } from '../src/activities/graph-adapters';
import { configureMailboxLimits, OUTLOOK_LIMITS } from '../src/activities/exchange/gate';
import { startGraphEmulator } from '../src/emulator';
import { DEFAULT_ACTIVITY_SETTINGS } from '../src/worker/worker';
import { freshDatabase } from '../test/helpers/database';
import { connect } from '../test/helpers/emulator-client';
import { arg, countStatements } from './kit';
import { prng } from '../src/util/prng';

const UPN = 'filer@contoso.com';
const MiB = 1024 * 1024;
const WINDOW_MS = 10 * 60_000;
const REQUEST_BUDGET = 10_000;
const UPLOAD_WINDOW_MS = 5 * 60_000;
const UPLOAD_BUDGET = 150 * MiB;
const POLICY_LIMIT = 10 * MiB; // the policy's default attachments.maxBytes

const N = arg('messages', 5000);
const BATCH = arg('batch', 500);
const LATENCY = arg('latency-ms', 20);
const JITTER = arg('jitter-ms', 20);
const SEED = arg('seed', 1);

/** SQL statements sent by this process, counted at the pg client. */
const statements = countStatements();

const rnd = prng(SEED);
const pick = (n: number) => Math.floor(rnd() * n);
const secs = (ms: number) => (ms / 1000).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Role = 'account' | 'contact' | 'lead';
const FOLDER: Record<Role, string> = { account: 'VAccounts', contact: 'VContacts', lead: 'VLeads' };
const ROLES: Role[] = ['account', 'contact', 'lead'];

interface PlannedAttachment {
  name: string;
  size: number;
  sha256: string;
}
interface Planned {
  role: Role;
  imid: string;
  from: { address: string; name: string };
  /** The record the message must be linked to: a seeded one (known sender), or the one made for `key`. */
  known?: { type: Role; id: string };
  key?: string;
  attachments: PlannedAttachment[];
}

const scale = Math.max(1, N / 5000);
const KNOWN = { contact: Math.round(300 * scale), lead: Math.round(200 * scale), account: Math.round(100 * scale) };
const UNKNOWN = { contact: Math.round(500 * scale), lead: Math.round(400 * scale), account: Math.round(300 * scale) };

function knownSender(role: Role, k: number, j: number) {
  if (role === 'account') return { address: `person${j % 7}@acct${k}.example`, name: `Person ${j % 7} Acct${k}` };
  if (role === 'contact') return { address: `c${k}@contactco${k % 50}.example`, name: `Carla${k} Known` };
  return { address: `l${k}@leadco${k % 50}.example`, name: `Leo${k} Known` };
}
function unknownSender(role: Role, u: number, j: number) {
  if (role === 'account') return { address: `staff${j % 5}@newco${u}.example`, name: `Staff ${j % 5} Newco${u}` };
  if (role === 'contact') return { address: `new.c${u}@prospects${u % 40}.example`, name: `Nina${u} New` };
  return { address: `new.l${u}@inbound${u % 40}.example`, name: `Ned${u} Lead` };
}

function attachmentPlan(j: number): number[] {
  if (j % 100 === 50) return [Math.round(10.5 * MiB + rnd() * 1.5 * MiB)]; // over the policy's 10 MB: placeholder
  if (j % 25 === 0) return [Math.round(3.2 * MiB + rnd() * 2.3 * MiB)]; // over 3 MB: stored
  const n = 1 + pick(2);
  return Array.from({ length: n }, () => 4_000 + pick(116_000));
}

async function main(): Promise<void> {
  configureMailboxLimits(OUTLOOK_LIMITS);
  const database = await freshDatabase();
  const db = database.db;
  // HTTP-level view of the emulator (a $batch once, upload-URL PUTs included), for the upload budget.
  const httpLog: Array<{ at: number; method: string; path: string }> = [];
  const emulator = await startGraphEmulator({
    port: 0,
    throttle: { requestsPer10Minutes: REQUEST_BUDGET, concurrentRequests: 4, windowMs: WINDOW_MS },
    log: (line) => {
      const m = /^(GET|POST|PATCH|PUT|DELETE) (\S+)/.exec(line);
      if (m) httpLog.push({ at: Date.now(), method: m[1], path: m[2] });
    },
  });
  try {
    emulator.admin.ensureMailbox(UPN, 'Filer');
    const settings = emulator.admin.getMailSettings(UPN);
    const graph = connect(emulator);
    const acts = createMailboxActivities({ db, ...graphAdapters(db, graph.client), settings: DEFAULT_ACTIVITY_SETTINGS });

    let retries = 0;
    const cycle = async (limit: number) => {
      const { cycleId } = await acts.startCycle(UPN);
      for (;;) {
        try {
          const r = await acts.fileMail({ mailboxId: UPN, cycleId, limit });
          await acts.finishCycle({ mailboxId: UPN, cycleId, outcome: 'completed' });
          return r;
        } catch (err) {
          const delay = err instanceof ApplicationFailure && !err.nonRetryable ? (typeof err.nextRetryDelay === 'number' ? err.nextRetryDelay : 1000) : undefined;
          if (delay === undefined) throw err;
          retries++;
          console.log(`  attempt failed (${(err as Error).message}); retried after ${delay} ms`);
          await sleep(delay);
        }
      }
    };

    // ---- CRM: the user, the mailbox with a policy filing email (defaults otherwise), the known records ----
    const owner = (await sql<{ id: string }>`insert into crm.users (email, display_name) values (${UPN}, 'Filer') returning id::text as id`.execute(db)).rows[0].id;
    await sql`insert into sync.policy (name, settings) values ('mail', ${JSON.stringify({ email: { enabled: true } })}::jsonb)`.execute(db);
    await sql`insert into sync.mailbox (id, display_name, crm_user_id, policy_name) values (${UPN}, 'Filer', ${owner}::uuid, 'mail')`.execute(db);
    const knownIds: Record<Role, string[]> = { account: [], contact: [], lead: [] };
    for (let k = 0; k < KNOWN.account; k++) {
      knownIds.account.push((await sql<{ id: string }>`insert into crm.accounts (owner_id, name, domain, email) values (${owner}::uuid, ${`Acct ${k}`}, ${`acct${k}.example`}, ${`info@acct${k}.example`}) returning id::text as id`.execute(db)).rows[0].id);
    }
    for (let k = 0; k < KNOWN.contact; k++) {
      const s = knownSender('contact', k, 0);
      knownIds.contact.push((await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${owner}::uuid, ${`Carla${k}`}, 'Known', ${s.address}) returning id::text as id`.execute(db)).rows[0].id);
    }
    for (let k = 0; k < KNOWN.lead; k++) {
      const s = knownSender('lead', k, 0);
      knownIds.lead.push((await sql<{ id: string }>`insert into crm.leads (owner_id, first_name, last_name, email) values (${owner}::uuid, ${`Leo${k}`}, 'Known', ${s.address}) returning id::text as id`.execute(db)).rows[0].id);
    }
    const seeded = await rowCounts(db);

    // ---- the mailbox: N messages dropped across the three folders ----
    // The first cycle creates the drop folders (under the mailbox's root, as cxsync does); the user drops into them.
    const setup0 = emulator.requestCount(UPN);
    await cycle(BATCH);
    const setupOps = emulator.requestCount(UPN) - setup0;
    const plan: Planned[] = [];
    const tSeed = Date.now();
    let attachmentBytes = 0;
    for (let i = 0; i < N; i++) {
      const role = ROLES[i % 3];
      const knownSide = rnd() < 0.5;
      let p: Planned;
      if (knownSide) {
        const k = pick(KNOWN[role]);
        p = { role, imid: `<bench.${SEED}.${i}@mail.example.net>`, from: knownSender(role, k, i), known: { type: role, id: knownIds[role][k] }, attachments: [] };
      } else {
        const u = pick(UNKNOWN[role]);
        const from = unknownSender(role, u, i);
        p = { role, imid: `<bench.${SEED}.${i}@mail.example.net>`, from, key: `${role}:${role === 'account' ? from.address.split('@')[1] : from.address}`, attachments: [] };
      }
      const files = i % 5 === 0 ? attachmentPlan(i / 5) : [];
      const attachments = files.map((size, a) => {
        const content = crypto.randomBytes(size);
        const name = `file-${i}-${a}.bin`;
        p.attachments.push({ name, size, sha256: crypto.createHash('sha256').update(content).digest('hex') });
        attachmentBytes += size;
        return { '@odata.type': '#microsoft.graph.fileAttachment', name, contentType: 'application/octet-stream', contentBytes: content.toString('base64') };
      });
      emulator.admin.dropMessage(UPN, FOLDER[role], {
        subject: `Bench message ${i} from ${p.from.name}`,
        body: { contentType: 'html', content: `<html><body><p>Hello Filer,</p><p>${'Message body text. '.repeat(40 + pick(60))}</p><p>Regards, ${p.from.name}</p></body></html>` },
        from: { emailAddress: p.from },
        sender: { emailAddress: p.from },
        toRecipients: [{ emailAddress: { address: UPN, name: 'Filer' } }],
        internetMessageId: p.imid,
        receivedDateTime: new Date(Date.now() - (1 + pick(60 * 24 * 60)) * 60_000).toISOString(),
        ...(attachments.length ? { attachments } : {}),
      });
      plan.push(p);
    }
    const withAtt = plan.filter((p) => p.attachments.length);
    const allAtts = withAtt.flatMap((p) => p.attachments);
    const over3 = allAtts.filter((a) => a.size >= 3 * MiB);
    const placeholdersExpected = allAtts.filter((a) => a.size > POLICY_LIMIT).length;
    const keys = new Set(plan.flatMap((p) => (p.key ? [p.key] : [])));
    console.log(
      `seeded in ${secs(Date.now() - tSeed)} s: ${N} messages (${ROLES.map((r) => `${FOLDER[r]} ${plan.filter((p) => p.role === r).length}`).join(', ')}); ` +
        `${plan.filter((p) => p.known).length} from ${KNOWN.account + KNOWN.contact + KNOWN.lead} known senders, ${plan.filter((p) => p.key).length} from ${keys.size} unknown senders (accounts by domain); ` +
        `${withAtt.length} with attachments: ${allAtts.length} files, ${(attachmentBytes / MiB).toFixed(0)} MiB, ${over3.length} over 3 MB (${placeholdersExpected} of them over the policy's 10 MB)`,
    );
    console.log(`first cycle (drop folders created, nothing to file): ${setupOps} Graph operations`);
    console.log(`limits: emulator ${REQUEST_BUDGET} requests / 10 min and 4 in flight per mailbox, uploads ${settings.uploadBudgetBytes / MiB} MiB / ${settings.uploadWindowMs / 60000} min; the gate ${JSON.stringify(OUTLOOK_LIMITS)}; latency ${LATENCY}+0..${JITTER} ms per operation; batch size ${BATCH}`);
    emulator.admin.setLatency(UPN, LATENCY, JITTER);

    // ---- the operations counter, sampled for the busiest 10-minute window ----
    const samples: Array<[number, number]> = [];
    const sample = () => samples.push([Date.now(), emulator.requestCount(UPN)]);
    const sampler = setInterval(sample, 100);

    const ops0 = emulator.requestCount(UPN);
    const sql0 = statements();
    const t0 = Date.now();
    sample();
    let cycles = 0;
    let filedTotal = 0;
    let createdTotal = 0;
    let unresolvedTotal = 0;
    for (;;) {
      const c0 = Date.now();
      const o0 = emulator.requestCount(UPN);
      const r = await cycle(BATCH);
      cycles++;
      filedTotal += r.filed;
      createdTotal += r.recordsCreated;
      unresolvedTotal += r.unresolved;
      console.log(`  cycle ${cycles}: ${secs(Date.now() - c0)} s; filed ${r.filed}, records created ${r.recordsCreated}, unresolved ${r.unresolved}; ${emulator.requestCount(UPN) - o0} Graph operations; work remaining ${r.workRemaining}`);
      if (!r.workRemaining) break;
      if (cycles > 10 * Math.ceil(N / BATCH) + 10) throw new Error('filing does not end');
    }
    sample();
    const wall = Date.now() - t0;
    const ops = emulator.requestCount(UPN) - ops0;
    const sqlN = statements() - sql0;
    clearInterval(sampler);
    const throttled = emulator.throttledCount(UPN);
    const busiest = busiestWindow(samples, WINDOW_MS);
    const recent = emulator.recentRequests();
    const kinds = operationKinds(recent.slice(-ops));
    const rss = process.resourceUsage().maxRSS * 1024;

    // Uploads: every operation that is not a GET (sub-requests included) and every PUT to an upload URL.
    const writes = recent.slice(-ops).filter((r) => !r.startsWith('GET ')).length;
    const uploadPuts = httpLog.filter((h) => h.path.startsWith('/api/v2.0/')).length;

    // ---- quiet cycles ----
    const quiet: Array<{ ops: number; what: string[] }> = [];
    for (let q = 0; q < 2; q++) {
      const o0 = emulator.requestCount(UPN);
      const r = await cycle(BATCH);
      if (r.filed || r.unresolved || r.workRemaining) throw new Error(`the quiet cycle had work: ${JSON.stringify(r)}`);
      const n = emulator.requestCount(UPN) - o0;
      quiet.push({ ops: n, what: emulator.recentRequests().slice(-n).map(short) });
    }
    // The same with the periodic id re-scan due (every 6 hours by default): as if the last one were 7 hours ago.
    await sql`update sync.mail_folder set rescanned_at = now() - interval '7 hours' where mailbox_id = ${UPN}`.execute(db);
    const o1 = emulator.requestCount(UPN);
    await cycle(BATCH);
    const rescanOps = emulator.requestCount(UPN) - o1;
    const rescanWhat = Object.entries(operationKinds(emulator.recentRequests().slice(-rescanOps))).map(([k, v]) => `${k} ${v}`);

    // ---- checks ----
    const rows = await rowCounts(db);
    const failures = await check(db, plan, keys, unresolvedTotal);

    const mps = N / (wall / 1000);
    console.log('\nRESULT email filing');
    console.log(`  messages: ${N} in ${secs(wall)} s = ${mps.toFixed(1)} messages/s over ${cycles} cycles of at most ${BATCH} (${filedTotal} filed, ${createdTotal} records created, ${unresolvedTotal} unresolved); attempts retried: ${retries}`);
    console.log(`  Graph operations: ${ops} = ${(ops / N).toFixed(3)} per message (${Object.entries(kinds).map(([k, v]) => `${k} ${v}`).join(', ')}); HTTP requests to /v1.0 (a $batch once): ${httpLog.filter((h) => h.path.startsWith('/v1.0')).length}`);
    console.log(`  429 answers: ${throttled}`);
    console.log(`  busiest 10-minute window: ${busiest} operations = ${((100 * busiest) / REQUEST_BUDGET).toFixed(1)} % of ${REQUEST_BUDGET}${wall < WINDOW_MS ? ' (the whole run fits in one window)' : ''}; average rate ${(ops / (wall / 1000)).toFixed(2)}/s = ${((100 * ops) / (wall / 1000) / (REQUEST_BUDGET / 600)).toFixed(1)} % of the 16.67/s the budget allows`);
    console.log(
      writes || uploadPuts
        ? `  uploads: ${writes} write operations and ${uploadPuts} upload-URL PUTs (${recent.slice(-ops).filter((r) => !r.startsWith('GET ')).slice(0, 5).map(short).join(' | ')}): bytes not measured here`
        : `  uploads: none — every operation was a GET, no upload-URL PUT: 0 bytes, 0 % of the ${UPLOAD_BUDGET / MiB} MiB per ${UPLOAD_WINDOW_MS / 60000} minutes`,
    );
    console.log(`  attachments downloaded: ${(allAtts.filter((a) => a.size <= POLICY_LIMIT).reduce((n, a) => n + a.size, 0) / MiB).toFixed(0)} MiB in ${kinds['attachment download'] ?? 0} GETs`);
    console.log(`  CRM rows added: activities ${rows.activities - seeded.activities}, links ${rows.links - seeded.links}, attachments ${rows.stored - seeded.stored} stored + ${rows.placeholders - seeded.placeholders} placeholders, records created: contacts ${rows.contacts - seeded.contacts}, leads ${rows.leads - seeded.leads}, accounts ${rows.accounts - seeded.accounts}; sync.mail_filed ${rows.filed}; log lines ${rows.logs}`);
    console.log(`  SQL statements: ${sqlN} = ${(sqlN / N).toFixed(1)} per message`);
    console.log(`  peak RSS of the process (emulator with every message in memory included): ${(rss / MiB).toFixed(0)} MiB`);
    console.log(`  quiet cycles: ${quiet.map((q) => q.ops).join(', ')} Graph operations (${quiet[0].what.join(' | ')})`);
    console.log(`  quiet cycle with the 6-hourly id re-scan due: ${rescanOps} Graph operations (${rescanWhat.join(', ')})`);
    if (failures.length) {
      console.log(`\nCHECKS FAILED (${failures.length}):\n  ${failures.slice(0, 30).join('\n  ')}`);
      process.exitCode = 1;
    } else console.log('  checks: every message filed exactly once, links, records, attachments and placeholders as seeded — OK');
  } finally {
    await emulator.close().catch(() => undefined);
    await database.drop().catch(() => undefined);
  }
}

function short(op: string): string {
  return op.replace(/\?.*$/, '?…').replace(/\/users\/[^/]+/, '/users/…').replace(/(messages|mailFolders|attachments)\/[A-Za-z0-9_=%-]{20,}/g, '$1/{id}');
}

function operationKinds(ops: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of ops) {
    const k = /\/messages\/delta/.test(op)
      ? 'delta page'
      : /\/mailFolders\/[^/]+\/messages\?/.test(op)
        ? 're-scan page'
        : /\/attachments\/[^/?]+/.test(op)
          ? 'attachment download'
          : /\/attachments\?/.test(op)
            ? 'attachment list'
            : /\/messages\/[^/?]+\?\$select=id,parentFolderId$/.test(op)
              ? 'removal check'
              : /\/messages\/[^/?]+\?/.test(op)
                ? 'message read'
                : /mailFolders/.test(op)
                  ? 'folder'
                  : 'other';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** The most operations in any window of `windowMs`, from (time, cumulative count) samples. */
function busiestWindow(samples: Array<[number, number]>, windowMs: number): number {
  let best = 0;
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    while (samples[i][0] - samples[j][0] > windowMs) j++;
    // Counts between sample j-1 and j may have been inside the window: the sample before j bounds it from above.
    best = Math.max(best, samples[i][1] - samples[Math.max(0, j - 1)][1]);
  }
  return best;
}

async function rowCounts(db: import('../src/db/connection').Db) {
  const r = (await sql<Record<string, string>>`select
      (select count(*) from crm.email_activities)::text as activities,
      (select count(*) from crm.email_links)::text as links,
      (select count(*) from crm.email_attachments where content is not null)::text as stored,
      (select count(*) from crm.email_attachments where content is null)::text as placeholders,
      (select count(*) from crm.contacts)::text as contacts,
      (select count(*) from crm.leads)::text as leads,
      (select count(*) from crm.accounts)::text as accounts,
      (select count(*) from sync.mail_filed)::text as filed,
      (select count(*) from sync.log)::text as logs`.execute(db)).rows[0];
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])) as Record<'activities' | 'links' | 'stored' | 'placeholders' | 'contacts' | 'leads' | 'accounts' | 'filed' | 'logs', number>;
}

async function check(db: import('../src/db/connection').Db, plan: Planned[], keys: Set<string>, unresolved: number): Promise<string[]> {
  const fail: string[] = [];
  const acts = (await sql<{ id: string; imid: string }>`select id::text, internet_message_id as imid from crm.email_activities where deleted_at is null`.execute(db)).rows;
  const byImid = new Map<string, string[]>();
  for (const a of acts) byImid.set(a.imid, [...(byImid.get(a.imid) ?? []), a.id]);
  if (acts.length !== plan.length) fail.push(`${acts.length} activities for ${plan.length} messages`);
  const links = (await sql<{ aid: string; t: Role; rid: string }>`select email_activity_id::text as aid, record_type as t, record_id::text as rid from crm.email_links`.execute(db)).rows;
  const linksOf = new Map<string, Array<{ t: Role; rid: string }>>();
  for (const l of links) linksOf.set(l.aid, [...(linksOf.get(l.aid) ?? []), l]);
  const atts = (await sql<{ aid: string; name: string; size: string; stored: boolean; skipped: string | null; sha: string | null }>`
    select email_activity_id::text as aid, name, size_bytes::text as size, content is not null as stored, skipped_reason as skipped,
      encode(sha256(content), 'hex') as sha from crm.email_attachments`.execute(db)).rows;
  const attsOf = new Map<string, typeof atts>();
  for (const a of atts) attsOf.set(a.aid, [...(attsOf.get(a.aid) ?? []), a]);
  const recordOfKey = new Map<string, string>();
  for (const p of plan) {
    const ids = byImid.get(p.imid) ?? [];
    if (ids.length !== 1) {
      fail.push(`${p.imid}: ${ids.length} activities`);
      continue;
    }
    const l = linksOf.get(ids[0]) ?? [];
    if (l.length !== 1) fail.push(`${p.imid}: ${l.length} links`);
    else if (l[0].t !== p.role) fail.push(`${p.imid}: linked to a ${l[0].t}, dropped into the ${p.role} folder`);
    else if (p.known && l[0].rid !== p.known.id) fail.push(`${p.imid}: linked to ${l[0].rid}, the sender's record is ${p.known.id}`);
    else if (p.key) {
      const first = recordOfKey.get(p.key);
      if (first === undefined) recordOfKey.set(p.key, l[0].rid);
      else if (first !== l[0].rid) fail.push(`${p.imid}: unknown sender ${p.key} filed to two records (${first}, ${l[0].rid})`);
    }
    const got = (attsOf.get(ids[0]) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    if (got.length !== p.attachments.length) fail.push(`${p.imid}: ${got.length} attachments stored for ${p.attachments.length}`);
    else
      p.attachments.forEach((want, i) => {
        const a = got[i];
        const placeholder = want.size > POLICY_LIMIT;
        if (a.name !== want.name || Number(a.size) !== want.size) fail.push(`${p.imid}: attachment ${a.name}/${a.size} for ${want.name}/${want.size}`);
        else if (placeholder && (a.stored || !a.skipped)) fail.push(`${p.imid}: ${want.name} (${want.size} bytes) stored, expected a placeholder`);
        else if (!placeholder && a.sha !== want.sha256) fail.push(`${p.imid}: ${want.name} stored with other bytes`);
      });
  }
  if (recordOfKey.size !== keys.size) fail.push(`${recordOfKey.size} records for ${keys.size} unknown senders`);
  // The record made for an unknown sender is of the folder's type and carries the sender's address (or domain).
  for (const [key, id] of recordOfKey) {
    const [role, value] = key.split(/:(.*)/s) as [Role, string];
    const table = sql.table(`crm.${role === 'account' ? 'accounts' : role === 'contact' ? 'contacts' : 'leads'}`);
    const col = sql.ref(role === 'account' ? 'domain' : 'email');
    const r = (await sql<{ v: string | null }>`select ${col} as v from ${table} where id = ${id}::uuid`.execute(db)).rows[0];
    if (r?.v !== value) fail.push(`record ${id} made for ${key} holds ${r?.v}`);
  }
  const created = (await sql<{ n: string }>`select (
      (select count(*) from crm.contacts where changed_by like '%(email filing)') + (select count(*) from crm.leads where changed_by like '%(email filing)')
      + (select count(*) from crm.accounts where changed_by like '%(email filing)'))::text as n`.execute(db)).rows[0].n;
  if (Number(created) !== keys.size) fail.push(`${created} records created by filing for ${keys.size} unknown senders`);
  const filed = (await sql<{ n: string; d: string }>`select count(*)::text as n, count(distinct message_id)::text as d from sync.mail_filed`.execute(db)).rows[0];
  if (Number(filed.n) !== plan.length || Number(filed.d) !== plan.length) fail.push(`sync.mail_filed: ${filed.n} rows, ${filed.d} messages, for ${plan.length}`);
  const listed = (await sql<{ n: string }>`select count(*)::text as n from sync.email_unresolved`.execute(db)).rows[0].n;
  if (unresolved || Number(listed)) fail.push(`${listed} messages unresolved (${unresolved} counted by the cycles)`);
  return fail;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
