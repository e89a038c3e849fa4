/**
 * `cxsync email`: the operator's side of email filing (issue 10; docs/OPERATIONS.md, "Email: the unresolved
 * list"). Lists the messages a cycle could not file, with the reason, and stores what an operator decides for
 * one (file it to records, create a record, ignore it); the mailbox's next cycle carries the decision out
 * (activities/email-filing.ts carryOut), so nothing here writes to the CRM or the mailbox. Also manages the
 * operators' exclusions (addresses and domains never filed), which add to the policy's `email.exclude`.
 */
import type { FiledAs } from '../domain/email-filing';
import { Command, Option } from 'commander';
import type { Env } from '../config';
import type { Db } from '../db/connection';
import { EmailFilingStore, type ExclusionRow, type FilingDecision, type UnresolvedEntry } from '../db/email-filing-store';
import { PolicyStore } from '../db/policy-store';
import { PostgresCrmEmail } from '../activities/crm/postgres-crm-email';
import type { CrmRecordRef } from '../activities/crm/crm-store';
import { normaliseAddress, normaliseDomain, type EmailRecordType } from '../domain/email-records';
import { connectDb, connectTemporal } from './connect';
import { normaliseMailbox, Operator, OperatorError } from './operator';

const RECORD_TYPES: readonly EmailRecordType[] = ['contact', 'lead', 'account'];

/**
 * Who decided, stored with the decision and the exclusion and named in the sync log. The CLI has no login of its
 * own (pause, policy and the other commands record nobody), so the operating-system user, as a shell history would.
 */
export function operatorName(): string {
  return process.env.USER || process.env.USERNAME || 'cli';
}

async function knownMailbox(db: Db, mailbox: string): Promise<string> {
  const id = normaliseMailbox(mailbox);
  const row = await db.selectFrom('sync.mailbox').select('id').where('id', '=', id).executeTakeFirst();
  if (!row) throw new OperatorError(`unknown mailbox ${id}: enroll it first (cxsync enroll ${id})`);
  return id;
}

// ---- the unresolved list ----

export interface UnresolvedView {
  id: string;
  mailbox: string;
  /** The drop folder the message was found in, or `reply` for a reply found in Inbox or Sent Items. */
  folder: { role: FiledAs; name: string | null };
  received: string | null;
  sender: { address: string | null; name: string | null };
  subject: string;
  reason: string;
  candidates: Array<CrmRecordRef & { displayName: string | null; state: 'live' | 'deleted' | 'missing' }>;
  /** The operator's decision waiting for the mailbox's next cycle; null: none yet. */
  decision: FilingDecision | null;
  decidedBy: string | null;
  listedSince: string;
  messageId: string;
  internetMessageId: string | null;
}

export async function unresolvedList(db: Db, mailbox?: string): Promise<UnresolvedView[]> {
  const id = mailbox === undefined ? undefined : await knownMailbox(db, mailbox);
  const store = new EmailFilingStore(db);
  const crm = new PostgresCrmEmail(db);
  const entries = await store.unresolved(id);
  const folders = new Map<string, Map<string, string>>();
  const views: UnresolvedView[] = [];
  for (const e of entries) {
    if (!folders.has(e.mailboxId)) folders.set(e.mailboxId, new Map((await store.dropFolders(e.mailboxId)).map((f) => [f.role, f.folderName])));
    // Names and state now, not when listed: the operator picks from these.
    const candidates = (await crm.recordStates(e.candidates)).map((c) => ({ ...c.record, displayName: c.displayName, state: c.state }));
    views.push({
      id: e.id,
      mailbox: e.mailboxId,
      folder: { role: e.role, name: e.role === 'reply' ? null : (folders.get(e.mailboxId)!.get(e.role) ?? null) },
      received: e.receivedAt,
      sender: { address: e.senderAddress, name: e.senderName },
      subject: e.subject,
      reason: e.reason,
      candidates,
      decision: e.decision,
      decidedBy: e.decidedBy,
      listedSince: e.since,
      messageId: e.messageId,
      internetMessageId: e.internetMessageId,
    });
  }
  return views;
}

export function decisionText(d: FilingDecision): string {
  if ('file' in d) return `file to ${d.file.map((r) => `${r.type}:${r.id}`).join(', ')}`;
  if ('create' in d) return `create a ${d.create} from the sender and file to it`;
  return 'ignore (leave it unfiled)';
}

const shorten = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const second = (iso: string | null) => (iso ? iso.replace(/\.\d+Z$/, 'Z') : '-');

export function formatUnresolved(rows: UnresolvedView[], mailbox?: string): string {
  if (rows.length === 0) return mailbox ? `no unresolved messages for ${normaliseMailbox(mailbox)}` : 'no unresolved messages';
  const cells = rows.map((r) => [
    r.id,
    r.mailbox,
    r.folder.name ?? r.folder.role,
    second(r.received),
    r.sender.address ?? '(no sender)',
    shorten(r.subject || '(no subject)', 40),
    r.reason,
  ]);
  const head = ['ID', 'MAILBOX', 'FOLDER', 'RECEIVED', 'SENDER', 'SUBJECT', 'REASON'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]))).join('  ').trimEnd();
  const lines = [line(head)];
  rows.forEach((r, i) => {
    lines.push(line(cells[i]));
    if (r.candidates.length) {
      lines.push(`    candidates: ${r.candidates.map((c) => `${c.type}:${c.id}${c.displayName ? ` (${c.displayName}${c.state === 'deleted' ? ', deleted' : ''})` : c.state === 'live' ? '' : ` (${c.state})`}`).join(', ')}`);
    }
    if (r.decision) lines.push(`    decision pending: ${decisionText(r.decision)}, by ${r.decidedBy ?? 'an operator'}; carried out by the mailbox's next cycle`);
  });
  lines.push('', 'decide with: cxsync email file <id> --to contact:<id> | create <id> --as contact|lead|account | ignore <id> | ignore-address <address> | ignore-domain <domain>');
  return lines.join('\n');
}

// ---- decisions on one entry ----

/** Parses `--to type:id`; the record itself is checked against the CRM by fileTargets. */
export function parseTarget(raw: string): CrmRecordRef {
  const m = /^([a-z]+):(.+)$/i.exec(raw.trim());
  const type = m?.[1].toLowerCase();
  if (!m || !RECORD_TYPES.includes(type as EmailRecordType)) {
    throw new OperatorError(`--to ${raw}: give the record as type:id with type contact, lead or account (e.g. --to contact:3f0c…, the ids listed as candidates by cxsync email unresolved)`);
  }
  return { type: type as EmailRecordType, id: m[2].trim().toLowerCase() };
}

async function entryOf(store: EmailFilingStore, id: string): Promise<UnresolvedEntry> {
  const entry = await store.getUnresolved(id.trim());
  if (!entry) {
    throw new OperatorError(
      /^\d+$/.test(id.trim())
        ? `unresolved entry ${id.trim()} does not exist (it may have been filed or ignored since): pick one from cxsync email unresolved`
        : `"${id}" is not an unresolved entry id: use a number from the ID column of cxsync email unresolved`,
    );
  }
  return entry;
}

/** Checks that every record exists and is live in the CRM; one line naming each that is not. */
async function fileTargets(db: Db, entry: UnresolvedEntry, refs: CrmRecordRef[]): Promise<CrmRecordRef[]> {
  const unique = [...new Map(refs.map((r) => [`${r.type}:${r.id}`, r])).values()];
  const states = await new PostgresCrmEmail(db).recordStates(unique);
  const bad = states.filter((s) => s.state !== 'live');
  if (bad.length) {
    const what = bad.map((b) => `${b.record.type} ${b.record.id} ${b.state === 'deleted' ? 'was deleted in the CRM' : 'does not exist'}`).join('; ');
    throw new OperatorError(`${what}: entry ${entry.id} is unchanged; pick a live record (the candidates in cxsync email unresolved ${entry.mailboxId}) or create one (cxsync email create ${entry.id} --as contact|lead|account)`);
  }
  return unique;
}

export interface DecisionResult {
  entry: string;
  mailbox: string;
  decision: FilingDecision;
  /** The decision it replaced, still waiting. */
  replaced: FilingDecision | null;
  /** What happens next: a cycle requested, or why the decision waits. */
  next: string;
}

/**
 * Stores the decision and asks the mailbox for a cycle now (without waiting for it). A paused mailbox, or one
 * needing attention, does not cycle: the decision waits for `cxsync resume`, and the result says so.
 */
async function storeDecision(env: Env, entryId: string, decide: (db: Db, entry: UnresolvedEntry) => Promise<FilingDecision>): Promise<DecisionResult> {
  const db = await connectDb(env);
  try {
    // Temporal first: an unreachable server fails the command before anything is stored.
    const { client, connection } = await connectTemporal(env);
    try {
      const op = new Operator(client, db, env.TEMPORAL_TASK_QUEUE);
      const store = new EmailFilingStore(db);
      const entry = await entryOf(store, entryId);
      const decision = await decide(db, entry);
      if (!(await store.decide(entry.id, decision, operatorName()))) {
        throw new OperatorError(`unresolved entry ${entry.id} was carried out or removed meanwhile: see cxsync email unresolved ${entry.mailboxId}`);
      }
      return { entry: entry.id, mailbox: entry.mailboxId, decision, replaced: entry.decision, next: await askForCycle(db, op, entry.mailboxId) };
    } finally {
      await connection.close();
    }
  } finally {
    await db.destroy();
  }
}

async function askForCycle(db: Db, op: Operator, mailbox: string): Promise<string> {
  const policy = await new PolicyStore(db).effective(mailbox);
  if (policy.policy.ok && !policy.policy.value.email.enabled) {
    return `email filing is off in ${mailbox}'s policy ${policy.name}: the decision is carried out once it is on (email.enabled, cxsync policy update ${policy.name})`;
  }
  try {
    const s = await op.status(mailbox);
    if (s.state === 'paused') return `${mailbox} is paused${s.pausedReason ? ` (${s.pausedReason})` : ''}: the decision is carried out by its first cycle after cxsync resume ${mailbox}`;
    if (s.state === 'needs-attention') return `${mailbox} needs attention${s.needsAttentionReason ? ` (${s.needsAttentionReason})` : ''}: the decision is carried out by its first cycle after cxsync resume ${mailbox}`;
    await op.syncNow(mailbox);
  } catch (err) {
    // No workflow, or paused between the two calls: the decision is stored and waits.
    if (err instanceof OperatorError) return `no cycle requested (${err.message}); the decision is carried out by ${mailbox}'s next cycle`;
    throw err;
  }
  return `a cycle of ${mailbox} was requested and carries it out (cxsync email unresolved ${mailbox} shows what is left)`;
}

function formatDecision(r: DecisionResult, what: string): string {
  const lines = [`entry ${r.entry} (${r.mailbox}): ${what}`];
  if (r.replaced) lines.push(`it replaces the decision still pending: ${decisionText(r.replaced)}`);
  lines.push(r.next);
  return lines.join('\n');
}

// ---- exclusions ----

export interface ExclusionsView {
  exclusions: Array<{ kind: 'address' | 'domain'; value: string; mailbox: string | null; addedBy: string | null }>;
  /** With a mailbox: its policy's email.exclude, which applies too. */
  policy?: { name: string; ownDomain: string | null; addresses: string[]; domains: string[] } | { name: string; invalid: string };
}

export async function exclusionsList(db: Db, mailbox?: string): Promise<ExclusionsView> {
  const store = new EmailFilingStore(db);
  const id = mailbox === undefined ? undefined : await knownMailbox(db, mailbox);
  const rows: ExclusionRow[] = id ? await store.exclusionsFor(id) : await store.allExclusions();
  const view: ExclusionsView = { exclusions: rows.map((r) => ({ kind: r.kind, value: r.value, mailbox: r.mailboxId, addedBy: r.addedBy })) };
  if (id) {
    const p = await new PolicyStore(db).effective(id);
    if (!p.policy.ok) view.policy = { name: p.name, invalid: p.policy.error };
    else {
      const ex = p.policy.value.email.exclude;
      view.policy = { name: p.name, ownDomain: ex.ownDomain ? id.slice(id.lastIndexOf('@') + 1) : null, addresses: ex.addresses, domains: ex.domains };
    }
  }
  return view;
}

export function formatExclusions(v: ExclusionsView, mailbox?: string): string {
  const lines: string[] = [];
  if (v.exclusions.length === 0) lines.push(mailbox ? `no exclusions added for ${normaliseMailbox(mailbox)} or for every mailbox` : 'no exclusions added (cxsync email ignore-address | ignore-domain)');
  else {
    const w = Math.max(5, ...v.exclusions.map((e) => e.value.length));
    const m = Math.max(7, ...v.exclusions.map((e) => (e.mailbox ?? 'every mailbox').length));
    lines.push(`${'KIND'.padEnd(7)}  ${'VALUE'.padEnd(w)}  ${'MAILBOX'.padEnd(m)}  ADDED BY`);
    for (const e of v.exclusions) lines.push(`${e.kind.padEnd(7)}  ${e.value.padEnd(w)}  ${(e.mailbox ?? 'every mailbox').padEnd(m)}  ${e.addedBy ?? '-'}`.trimEnd());
  }
  const p = v.policy;
  if (!p) lines.push('', "each mailbox's policy adds its email.exclude lists (addresses, domains, and by default the mailbox's own domain): cxsync email exclusions --mailbox <m> shows them");
  else if ('invalid' in p) lines.push('', `the policy ${p.name} adds its email.exclude lists, but it does not validate: ${p.invalid}`);
  else {
    const parts = [p.ownDomain && `the mailbox's own domain ${p.ownDomain}`, p.addresses.length && `addresses ${p.addresses.join(', ')}`, p.domains.length && `domains ${p.domains.join(', ')}`].filter(Boolean);
    lines.push('', `the policy ${p.name} (email.exclude) adds: ${parts.length ? parts.join('; ') : 'nothing'} (change with cxsync policy update ${p.name})`);
  }
  return lines.join('\n');
}

function exclusionValue(kind: 'address' | 'domain', raw: string): string {
  const v = kind === 'address' ? normaliseAddress(raw) : normaliseDomain(raw.trim().replace(/^@/, ''));
  if (!v) throw new OperatorError(kind === 'address' ? `"${raw}" is not an email address: give one such as anna@contoso.com` : `"${raw}" is not a domain: give one such as contoso.com`);
  return v;
}

async function withDb<T>(env: Env, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connectDb(env);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

// ---- the command group ----

export function addEmailCommands(program: Command, config: () => Env, out: (line?: string) => void): void {
  const email = program
    .command('email')
    .description('email filing: the messages a cycle could not file (file them, create the record, ignore), and the addresses and domains never filed')
    .addHelpText('after', `
A decision on an entry of the unresolved list is stored and carried out by the mailbox's next cycle (the
command asks for one now; a paused mailbox carries it out after cxsync resume). See docs/OPERATIONS.md,
"Email: the unresolved list".`);

  email
    .command('unresolved')
    .description('messages dropped into a drop folder that could not be filed: id, mailbox, folder, received, sender, subject, reason, candidates, decision pending')
    .argument('[mailbox]', 'only this mailbox (default: every mailbox)')
    .option('--json', 'machine-readable output')
    .action(async (mailbox: string | undefined, opts: { json?: boolean }) => {
      const rows = await withDb(config(), (db) => unresolvedList(db, mailbox));
      out(opts.json ? JSON.stringify(rows, null, 2) : formatUnresolved(rows, mailbox));
    });

  email
    .command('file')
    .description('file a listed message to one or more CRM records (each must exist and not be deleted)')
    .argument('<entry-id>', 'the ID of the entry in cxsync email unresolved')
    .addOption(
      new Option('--to <type:id>', 'a record: contact:<id>, lead:<id> or account:<id>; repeat for several')
        .argParser((v: string, prev: CrmRecordRef[] = []) => [...prev, parseTarget(v)])
        .makeOptionMandatory(),
    )
    .action(async (entryId: string, opts: { to: CrmRecordRef[] }) => {
      const r = await storeDecision(config(), entryId, async (db, entry) => ({ file: await fileTargets(db, entry, opts.to) }));
      out(formatDecision(r, `to be ${decisionText(r.decision).replace(/^file/, 'filed')}`));
    });

  email
    .command('create')
    .description("create a CRM record of this type from the message's sender (or, for a sent message, its recipient) and file the message to it")
    .argument('<entry-id>', 'the ID of the entry in cxsync email unresolved')
    .addOption(new Option('--as <type>', 'the record to create').choices([...RECORD_TYPES]).makeOptionMandatory())
    .action(async (entryId: string, opts: { as: EmailRecordType }) => {
      const r = await storeDecision(config(), entryId, async () => ({ create: opts.as }));
      out(formatDecision(r, `a ${opts.as} is to be created from the sender and the message filed to it`));
    });

  email
    .command('ignore')
    .description('leave a listed message unfiled: it leaves the list')
    .argument('<entry-id>', 'the ID of the entry in cxsync email unresolved')
    .action(async (entryId: string) => {
      const r = await storeDecision(config(), entryId, async () => ({ ignore: true }));
      out(formatDecision(r, 'to be left unfiled and taken off the list'));
    });

  for (const kind of ['address', 'domain'] as const) {
    email
      .command(`ignore-${kind}`)
      .description(`never file mail from or to this ${kind}${kind === 'domain' ? ' (and its subdomains)' : ''}; closes the open entries of the unresolved list it covers`)
      .argument(`<${kind}>`)
      .option('--mailbox <mailbox>', 'for this mailbox only (default: every mailbox)')
      .action(async (raw: string, opts: { mailbox?: string }) => {
        const value = exclusionValue(kind, raw);
        const r = await withDb(config(), async (db) => {
          const mailboxId = opts.mailbox === undefined ? null : await knownMailbox(db, opts.mailbox);
          return { mailboxId, ...(await new EmailFilingStore(db).addExclusion({ mailboxId, kind, value, addedBy: operatorName() })) };
        });
        const scope = r.mailboxId ? `for ${r.mailboxId}` : 'for every mailbox';
        out(`${kind} ${r.value} ${r.added ? 'is now ignored' : 'was already ignored'} ${scope}`);
        out(
          r.ignored
            ? `closed ${r.ignored} open entr${r.ignored === 1 ? 'y' : 'ies'} of the unresolved list: ${r.ignored === 1 ? 'it leaves' : 'they leave'} the list at the mailbox's next cycle (cxsync sync-now <mailbox> for now)`
            : 'no open entry of the unresolved list was covered by it',
        );
      });
    email
      .command(`unignore-${kind}`)
      .description(`remove an ignore-${kind} exclusion: mail from or to it is filed again from now on`)
      .argument(`<${kind}>`)
      .option('--mailbox <mailbox>', 'the exclusion of this mailbox (default: the one for every mailbox)')
      .action(async (raw: string, opts: { mailbox?: string }) => {
        const value = exclusionValue(kind, raw);
        const mailboxId = await withDb(config(), async (db) => {
          const id = opts.mailbox === undefined ? null : await knownMailbox(db, opts.mailbox);
          if (!(await new EmailFilingStore(db).removeExclusion({ mailboxId: id, kind, value }))) {
            throw new OperatorError(
              `no ignore-${kind} exclusion of ${value} ${id ? `for ${id}` : 'for every mailbox'}: see cxsync email exclusions${id ? ` --mailbox ${id}` : ''} (one in a policy's email.exclude is changed with cxsync policy update)`,
            );
          }
          return id;
        });
        out(`${kind} ${value} is no longer ignored ${mailboxId ? `for ${mailboxId}` : 'for every mailbox'}; mail from or to it is filed again from now on`);
      });
  }

  email
    .command('exclusions')
    .description("addresses and domains never filed, added with ignore-address / ignore-domain (the policy's email.exclude lists apply too)")
    .option('--mailbox <mailbox>', "those that apply to this mailbox (its own and every mailbox's), with its policy's lists")
    .option('--json', 'machine-readable output')
    .action(async (opts: { mailbox?: string; json?: boolean }) => {
      const v = await withDb(config(), (db) => exclusionsList(db, opts.mailbox));
      out(opts.json ? JSON.stringify(v, null, 2) : formatExclusions(v, opts.mailbox));
    });
}
