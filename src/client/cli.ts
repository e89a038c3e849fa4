/** The `cxsync` command line. User errors end with exit code 1 and one line on stderr, never a stack trace. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { sql } from 'kysely';
import { ConfigError, graphSettings, loadEnv, type Env } from '../config';
import { migrate, openDb } from '../db/connection';
import { resolveDatabase } from '../db/resolve';
import { parsePolicy } from '../domain/policy';
import { RECORD_TYPES, type MailboxStatus, type TypeSummary } from '../domain/status';
import { SingleBar, Presets } from 'cli-progress';
import { LIST_STATES, normaliseMailbox, OperatorError, type ListState, type LiveStatus, type Operator } from './operator';
import { connectDb, withOperator } from './connect';
import { readAdapters } from './adapters';
import { dryRun, type DryRunResult } from './dry-run';
import { formatConflict } from './format';
import { formatReport, testConnection, type ConnectionReport } from './test-connection';
import { forget, formatForget } from './forget';
import { addEmailCommands } from './email';
import { runDev } from './dev';
import { runEmulator } from './emulator-command';
import { runWorker } from '../worker/main';
import { runCodecServer } from '../security/codec-server';
import { purgeTombstones } from '../activities/crm/feed-guard';

let env: Env | undefined;
function config(): Env {
  return (env ??= loadEnv());
}

function out(line = ''): void {
  process.stdout.write(line + '\n');
}

function formatStatus(s: LiveStatus): string {
  const lines = [
    `mailbox:     ${s.mailbox}`,
    `state:       ${s.state}${s.pausedReason ? ` (${s.pausedReason})` : ''}${s.needsAttentionReason ? ` (${s.needsAttentionReason})` : ''}`,
  ];
  for (const [type, reason] of Object.entries(s.typesNeedingAttention ?? {})) lines.push(`  ${type} stopped: ${reason}`);
  if (s.activity) lines.push(`now:         ${s.activity.step}${s.activity.attempt > 1 ? `, attempt ${s.activity.attempt}` : ''}${s.activity.startedAt ? ` (started ${s.activity.startedAt})` : ''}`);
  if (s.retrying) lines.push(`retrying:    every attempt has failed since ${s.retrying.since} (${s.retrying.attempts} attempts); last error ${s.retrying.lastErrorAt} in ${s.retrying.step}${s.retrying.recordType ? ` (${s.retrying.recordType})` : ''}: ${s.retrying.lastError}`);
  const p = s.progress;
  if (p) {
    const rate = p.ratePerSecond ? `, ${p.ratePerSecond.toFixed(1)}/s` : '';
    const eta = p.etaSeconds !== null ? `, about ${formatSeconds(p.etaSeconds)} left` : '';
    lines.push(`this cycle:  started ${p.startedAt}; ${p.done} of ${p.planned} planned writes applied${rate}${eta}`);
    for (const type of RECORD_TYPES.filter((x) => p.types[x])) {
      const t = p.types[type];
      lines.push(`  ${type}: read ${t.pulled.exchange} from Exchange, ${t.pulled.crm} from CRM; ${t.done} of ${t.planned} writes applied, ${t.failed} failed, ${t.pending} to go`);
    }
  }
  lines.push(`next cycle:  ${s.nextCycleAt ?? '-'}`, `cycles:      ${s.cyclesCompleted} completed`);
  const c = s.lastCycle;
  if (!c) lines.push('last cycle:  none yet');
  else {
    lines.push(`last cycle:  ${c.outcome}${c.detail ? ` (${c.detail})` : ''}, ${c.start} → ${c.end ?? '…'}`);
    // In the order a cycle processes them (the stored summary comes back in its own key order).
    for (const type of RECORD_TYPES.filter((x) => c.types[x])) {
      const t = c.types[type] as TypeSummary;
      lines.push(
        `  ${type}: pulled ${t.pulled.exchange} from Exchange, ${t.pulled.crm} from CRM; ` +
          `Exchange +${t.exchange.created} ~${t.exchange.updated} -${t.exchange.deleted}; ` +
          `CRM +${t.crm.created} ~${t.crm.updated} -${t.crm.deleted}; conflicts ${t.conflicts}; errors ${t.errors}`,
      );
    }
    const e = c.email;
    if (e) lines.push(`  email: filed ${e.filed}, ${e.recordsCreated} record(s) created from senders; ${e.unresolved} not filed (cxsync email unresolved ${s.mailbox})`);
    const y = c.emailSync;
    if (y) lines.push(`  email sync: Exchange +${y.toExchange} -${y.deletedInExchange}; CRM +${y.toCrm}; ${y.contactsCreated} contact(s) created; ${y.attachmentsSkipped} attachment(s) skipped`);
  }
  return lines.join('\n');
}

/**
 * `status --watch`: one progress bar over the running cycle's planned writes (cli-progress), with the step, the
 * rate and ETA, and the last error while an activity retries; ends when the cycle ends or the mailbox stops.
 */
async function watchStatus(op: Operator, mailbox: string): Promise<void> {
  const bar = new SingleBar(
    { format: '{step} |{bar}| {value}/{total} writes | {rate}/s | ETA {eta_formatted} {note}', hideCursor: true, etaBuffer: 30, fps: 5 },
    Presets.shades_classic,
  );
  let started = false;
  let shown = false;
  for (;;) {
    const s = await op.status(mailbox);
    const p = s.progress;
    const note = s.retrying ? `| retrying since ${s.retrying.since}: ${s.retrying.lastError}` : s.state !== 'syncing' ? `| ${s.state}` : '';
    const step = s.activity ? `${s.activity.step}${s.activity.attempt > 1 ? ` (attempt ${s.activity.attempt})` : ''}` : s.state;
    if (p) {
      if (!started) bar.start(Math.max(p.planned, 1), p.done, { step, rate: '-', note });
      started = true;
      bar.setTotal(Math.max(p.planned, 1));
      bar.update(p.done, { step, rate: p.ratePerSecond ? p.ratePerSecond.toFixed(1) : '-', note });
    }
    if (!p && started) {
      bar.stop();
      out(formatStatus(s));
      return;
    }
    if (!p && !started) {
      if (s.state !== 'syncing') return out(formatStatus(s));
      if (!shown) out(`${s.mailbox} is ${s.state}; waiting for its cycle to start…`);
      shown = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function formatSeconds(n: number): string {
  return n < 90 ? `${n} s` : n < 5400 ? `${Math.round(n / 60)} min` : `${(n / 3600).toFixed(1)} h`;
}

/** Reads and validates a policy file; every problem is one line naming the file and the field. */
export function readPolicyFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OperatorError(code === 'ENOENT' ? `policy file ${file} not found` : code === 'EISDIR' ? `policy file ${file} is a directory` : `cannot read policy file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new OperatorError(`policy file ${file} is not valid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = parsePolicy(doc);
  if (!r.ok) throw new OperatorError(`policy file ${file}: ${r.error}`);
  return doc as Record<string, unknown>;
}

function formatDryRun(r: DryRunResult, all: boolean): string {
  const lines = [`plan for ${r.mailbox} (policy ${r.policy}); nothing has been applied`];
  if (r.disabled.length) lines.push(`disabled by the policy: ${r.disabled.join(', ')}`);
  const pad = (x: string, n: number) => (x.length >= n ? x : x + ' '.repeat(n - x.length));
  for (const t of r.types) {
    lines.push('', `${t.recordType}: read Exchange from ${t.read.exchangeFrom} (${t.read.exchangeFresh} changes${t.read.exchangeStaged ? `, plus ${t.read.exchangeStaged} staged` : ''}), CRM from ${t.read.crmFrom} (${t.read.crmFresh} changes${t.read.crmStaged ? `, plus ${t.read.crmStaged} staged` : ''})`);
    for (const h of t.held) lines.push(`  HELD: ${h.reason}; the cycle will stop (needs-attention) until an operator confirms or discards (cxsync resume ${r.mailbox} --confirm-mass-delete | --discard-mass-delete)`);
    const shown = all ? t.operations : t.operations.filter((o) => o.kind !== 'refresh');
    const refreshes = t.operations.length - shown.length;
    if (shown.length === 0) lines.push('  no writes');
    for (const o of shown) {
      const where = o.side === 'mapping' ? 'mapping' : o.side === 'crm' ? 'CRM' : 'Exchange';
      const ids = [o.crmId && `crm ${o.crmId}`, o.exchangeId && `exchange ${o.exchangeId}`].filter(Boolean).join(' / ');
      lines.push(`  ${pad(o.kind, 7)} ${pad(where, 9)} ${pad(o.label ?? '-', 28)} ${o.reason}  [${ids}]`);
    }
    if (refreshes) lines.push(`  (${refreshes} mapping refresh${refreshes > 1 ? 'es' : ''} without writes; --all shows them)`);
    if (t.conflicts.length) {
      lines.push(`  conflicts (${t.conflicts.length}):`);
      for (const c of t.conflicts) lines.push(`    crm ${c.crmId} / exchange ${c.exchangeId}: ${c.rule} → ${c.outcome}`);
    }
    if (t.skipped.length) {
      lines.push(`  not synced (${t.skipped.length}):`);
      for (const sk of t.skipped) lines.push(`    ${sk.side} ${sk.id}: ${sk.reason}`);
    }
    const problems = t.notes.filter((n) => n.level === 'error' || n.level === 'warn');
    if (problems.length) {
      lines.push(`  log (${problems.length}):`);
      for (const n of problems) lines.push(`    ${n.level} ${[n.side, n.itemId].filter(Boolean).join(' ')}: ${n.message}`);
    }
  }
  return lines.join('\n');
}

/** package.json's version: two levels up from src/client (tsx) and from dist/client (the image). */
function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Exit code of test-connection (and of an enroll it stopped) when a check failed; 1 stays for usage and setup errors. */
export const CHECK_FAILED_EXIT = 2;

class ChecksFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChecksFailed';
  }
}

async function runTestConnection(mailboxes: string[], opts: { policy?: string }): Promise<ConnectionReport> {
  const env = config();
  const db = await connectDb(env);
  try {
    return await testConnection({ db, graph: graphSettings(env) }, mailboxes, opts);
  } finally {
    await db.destroy();
  }
}

export function buildProgram(): Command {
  const program = new Command('cxsync')
    .description('Two-way sync of CRM contacts, calendar events and tasks with Exchange Online mailboxes, on Temporal.\nConfiguration comes from environment variables (see README.md, "Configuration").')
    .version(version(), '-V, --version', 'print the cxsync version')
    .showHelpAfterError('(run cxsync --help for usage)')
    .exitOverride();

  program
    .command('dev')
    .description('run everything locally on embedded defaults: Temporal dev server, PostgreSQL, Graph emulator with demo data, worker (what npm start runs)')
    .action(async () => {
      await runDev(config(), (l) => out(l));
    });

  program
    .command('enroll')
    .description('start syncing a mailbox (its address must belong to a CRM user); repairs a stopped workflow')
    .argument('<mailbox>', 'user principal name, e.g. anna@contoso.com')
    .option('--policy <name>', 'sync policy (default: the default policy); on an enrolled mailbox, assigns it')
    .option('--skip-test-connection', 'enroll without running test-connection first')
    .addHelpText('after', `
First runs the checks of cxsync test-connection for the mailbox (token, mailbox, each record type the policy
syncs, folders, CRM user) and prints them; if one fails, nothing is enrolled and the exit code is ${CHECK_FAILED_EXIT}.`)
    .action(async (mailbox: string, opts: { policy?: string; skipTestConnection?: boolean }) => {
      if (!opts.skipTestConnection) {
        const report = await runTestConnection([mailbox], { policy: opts.policy });
        out(formatReport(report));
        if (!report.ok) throw new ChecksFailed(`${normaliseMailbox(mailbox)} not enrolled: fix what failed above and enroll again (or enroll anyway with --skip-test-connection)`);
      }
      const r = await withOperator(config(), (op) => op.enroll(mailbox, { policy: opts.policy }));
      out(`${r.mailbox} ${r.created ? 'enrolled' : 'was already enrolled; workflow running'} (policy ${r.policy})`);
    });

  program
    .command('test-connection')
    .description('check that cxsync can sync a mailbox: token, mailbox, each record type\'s permission, folders, email, CRM user (writes nothing)')
    .argument('[mailbox]', 'the mailbox to check; without one, only the token is checked')
    .option('--all', 'check every enrolled mailbox')
    .option('--policy <name>', 'check against this policy instead of the mailbox\'s own (as enroll --policy would)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
One line per check: ✓ passed, ✗ failed (→ what to do), - not checked. The checks only read: the permission to
write is not tested. Exit code: 0 every check passed; ${CHECK_FAILED_EXIT} a check failed; 1 the checks could not run
(bad arguments, database unreachable). See docs/DEPLOYMENT.md, "Test connection".`)
    .action(async (mailbox: string | undefined, opts: { all?: boolean; policy?: string; json?: boolean }) => {
      if (mailbox && opts.all) throw new OperatorError('give a mailbox or --all, not both');
      let mailboxes = mailbox ? [mailbox] : [];
      if (opts.all) {
        const db = await connectDb(config());
        try {
          mailboxes = (await db.selectFrom('sync.mailbox').select('id').orderBy('id').execute()).map((r) => r.id);
        } finally {
          await db.destroy();
        }
        if (mailboxes.length === 0) out('no mailboxes enrolled; checking the token only');
      }
      const report = await runTestConnection(mailboxes, { policy: opts.policy });
      out(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      if (!report.ok) throw new ChecksFailed('');
    });

  program
    .command('assign')
    .description("give a mailbox a sync policy; it applies from the mailbox's next cycle")
    .argument('<mailbox>')
    .argument('<policy>', "policy name ('default' for the default policy)")
    .action(async (mailbox: string, policy: string) => {
      const r = await withOperator(config(), (op) => op.assign(mailbox, policy));
      out(`${r.mailbox}: policy ${r.policy}${r.previous !== r.policy ? ` (was ${r.previous})` : ' (unchanged)'}; applies from the next cycle`);
    });

  const policy = program.command('policy').description('sync policies: list, show, create, update, delete (see docs/POLICIES.md)');
  policy
    .command('list')
    .description('policies with their description and how many mailboxes use them')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withOperator(config(), (op) => op.listPolicies());
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      for (const r of rows) {
        out(`${r.name.padEnd(24)} ${String(r.mailboxes).padStart(5)} mailbox${r.mailboxes === 1 ? ' ' : 'es'}  ${r.invalid ? `INVALID: ${r.invalid}` : r.description}`);
      }
    });
  policy
    .command('show')
    .description('every setting of a policy (defaults filled in) and the mailboxes using it')
    .argument('<name>')
    .option('--json', 'machine-readable: the stored document, the effective policy and the mailboxes')
    .action(async (name: string, opts: { json?: boolean }) => {
      const d = await withOperator(config(), (op) => op.showPolicy(name));
      if (opts.json) return out(JSON.stringify(d, null, 2));
      out(`policy ${d.name}, used by ${d.mailboxes.length} mailbox${d.mailboxes.length === 1 ? '' : 'es'}${d.mailboxes.length ? `: ${d.mailboxes.slice(0, 20).join(', ')}${d.mailboxes.length > 20 ? ', …' : ''}` : ''}`);
      if (d.invalid) {
        out(`INVALID: ${d.invalid}`);
        out(JSON.stringify(d.stored, null, 2));
      } else out(JSON.stringify(d.effective, null, 2));
    });
  policy
    .command('create')
    .description('create a policy from a JSON file; fields left out take the defaults')
    .argument('<name>', "lower-case letters, digits, '.', '_', '-'")
    .requiredOption('--file <policy.json>', 'the policy document')
    .action(async (name: string, opts: { file: string }) => {
      const doc = readPolicyFile(opts.file);
      const n = await withOperator(config(), (op) => op.createPolicy(name, doc));
      out(`policy ${n} created`);
    });
  policy
    .command('update')
    .description("replace a policy with a JSON file (fields left out take the defaults); applies at each mailbox's next cycle")
    .argument('<name>')
    .requiredOption('--file <policy.json>', 'the policy document')
    .action(async (name: string, opts: { file: string }) => {
      const doc = readPolicyFile(opts.file);
      const r = await withOperator(config(), (op) => op.updatePolicy(name, doc));
      out(`policy ${r.name} updated; applies from the next cycle of ${r.mailboxes.length} mailbox${r.mailboxes.length === 1 ? '' : 'es'}`);
    });
  policy
    .command('delete')
    .description('delete a policy no mailbox uses')
    .argument('<name>')
    .action(async (name: string) => {
      const n = await withOperator(config(), (op) => op.deletePolicy(name));
      out(`policy ${n} deleted`);
    });

  addEmailCommands(program, config, out);

  program
    .command('plan')
    .description('dry run: what the next cycle would do, with the reason for each operation; applies nothing')
    .argument('<mailbox>')
    .option('--all', 'also list mapping refreshes (bookkeeping without writes)')
    .option('--json', 'machine-readable output')
    .action(async (mailbox: string, opts: { all?: boolean; json?: boolean }) => {
      const env = config();
      const id = normaliseMailbox(mailbox);
      const db = await connectDb(env);
      try {
        const r = await dryRun(db, readAdapters(db, graphSettings(env)), id);
        out(opts.json ? JSON.stringify(r, null, 2) : formatDryRun(r, !!opts.all));
      } finally {
        await db.destroy();
      }
    });

  program
    .command('list')
    .description('list enrolled mailboxes with their state and, when paused or needing attention, why')
    .addOption(new Option('--state <state>', 'only mailboxes in this state').choices([...LIST_STATES]))
    .option('--json', 'machine-readable output')
    .action(async (opts: { state?: ListState; json?: boolean }) => {
      const all = await withOperator(config(), (op) => op.list());
      const rows = opts.state ? all.filter((r) => r.state === opts.state) : all;
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      if (all.length === 0) return out('no mailboxes enrolled (cxsync enroll <mailbox>)');
      if (rows.length === 0) return out(`no mailbox is ${opts.state} (${all.length} enrolled)`);
      const w = Math.max(7, ...rows.map((r) => r.mailbox.length));
      out(`${'MAILBOX'.padEnd(w)}  ${'STATE'.padEnd(15)}  ${'LAST CYCLE'.padEnd(24)}  ${'NEXT CYCLE'.padEnd(24)}  REASON`);
      for (const r of rows) out(`${r.mailbox.padEnd(w)}  ${r.state.padEnd(15)}  ${(r.lastCycleEnd ?? '-').padEnd(24)}  ${(r.nextCycleAt ?? '-').padEnd(24)}  ${r.reason ?? ''}`.trimEnd());
    });

  program
    .command('status')
    .description('state, what the running cycle is doing (step, progress, rate, ETA, retries and the last error), last cycle per record type, next cycle')
    .argument('<mailbox>')
    .option('--json', 'machine-readable output')
    .option('--watch', 'a live progress bar of the running cycle, refreshed every second, until it finishes (Ctrl-C to stop)')
    .action(async (mailbox: string, opts: { json?: boolean; watch?: boolean }) => {
      if (opts.watch) return withOperator(config(), (op) => watchStatus(op, mailbox));
      const s = await withOperator(config(), (op) => op.status(mailbox));
      out(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  program
    .command('pause')
    .description('stop syncing a mailbox after the batch in flight')
    .argument('<mailbox>')
    .option('--reason <text>', 'why, shown in status')
    .action(async (mailbox: string, opts: { reason?: string }) => {
      const id = await withOperator(config(), (op) => op.pause(mailbox, opts.reason));
      out(`${id} paused`);
    });

  program
    .command('resume')
    .description('resume a paused mailbox (also clears needs-attention); answers a held mass delete')
    .argument('<mailbox>')
    .option('--confirm-mass-delete', 'mirror the deletes the emptied-side guard held, and sync now')
    .option('--discard-mass-delete', "do not mirror them: unlink the deleted items, keep the other side's copies, and sync now")
    .action(async (mailbox: string, opts: { confirmMassDelete?: boolean; discardMassDelete?: boolean }) => {
      if (opts.confirmMassDelete && opts.discardMassDelete) throw new OperatorError('give --confirm-mass-delete or --discard-mass-delete, not both');
      const massDelete = opts.confirmMassDelete ? 'confirm' : opts.discardMassDelete ? 'discard' : undefined;
      const r = await withOperator(config(), (op) => op.resume(mailbox, { massDelete }));
      if (r.notPaused) return out(`${r.mailbox} is not paused and needs no attention (state ${r.notPaused}): nothing to resume`);
      if (r.decided.length) out(`${r.mailbox} resumed; mass delete of ${r.decided.join(', ')} ${massDelete === 'confirm' ? 'confirmed: the deletes are mirrored' : 'discarded: the deleted items are unlinked, the other side keeps its copies'} in the cycle starting now`);
      else out(`${r.mailbox} resumed`);
      if (r.held.length) out(`note: a mass delete of ${r.held.join(', ')} is still held; the next cycle stops again unless you resume with --confirm-mass-delete or --discard-mass-delete`);
    });

  program
    .command('retry')
    .description('retry the failed operations of a mailbox (items that failed after their attempts, shown in cxsync log) once the cause is fixed; starts a cycle')
    .argument('<mailbox>')
    .action(async (mailbox: string) => {
      const r = await withOperator(config(), (op) => op.retry(mailbox));
      out(r.operations ? `${r.mailbox}: ${r.operations} failed operation(s) set to be applied again; a cycle starts now` : `${r.mailbox} has no failed operations to retry`);
    });

  program
    .command('sync-now')
    .description('run a sync cycle now (refused while the mailbox is paused)')
    .argument('<mailbox>')
    .option('--wait', 'wait until the cycle has finished and print its status')
    .option('--json', 'with --wait: machine-readable status')
    .action(async (mailbox: string, opts: { wait?: boolean; json?: boolean }) => {
      const s = await withOperator(config(), (op) => op.syncNow(mailbox, { wait: opts.wait }));
      if (!s) return out(`sync requested for ${mailbox.toLowerCase()}`);
      out(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  program
    .command('remove')
    .description('stop syncing a mailbox and delete its rows from every sync table (log, conflicts, history, mappings, cursors); synced items stay on both sides')
    .argument('<mailbox>')
    .action(async (mailbox: string) => {
      const id = await withOperator(config(), (op) => op.remove(mailbox));
      out(`${id} removed`);
    });

  program
    .command('forget')
    .description("GDPR erasure: erase a person's email address, and the records holding it, from cxsync's own tables; the CRM and Exchange are not touched")
    .argument('<email>', 'the address, matched case-insensitively and as a whole address, in any email slot or text')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `
Erased: sync log lines and conflicts that mention the address, the record copies in applied operations and staged
changes, and the fields holding it in mapping bases (the merge base of a synced record: sync goes on, see
docs/OPERATIONS.md, "Retention and erasure"). Exit code 1 when something could not be erased yet (a change of the
person's records not synced yet): the output says which mailbox and what to do.

cxsync does not erase the person in the CRM or in Exchange: that is the CRM's and Exchange's own job. Do it there
first; otherwise the next cycle that reads their records stores the address again.`)
    .action(async (email: string, opts: { json?: boolean }) => {
      const db = await connectDb(config());
      try {
        const r = await forget(db, email);
        if (opts.json) out(JSON.stringify(r, null, 2));
        else for (const l of formatForget(r)) out(l);
        if (r.blocked.length || r.remaining.length) throw new OperatorError(`${r.email} is not erased everywhere yet: ${r.blocked.length ? `mailbox${r.blocked.length > 1 ? 'es' : ''} ${r.blocked.map((b) => b.mailbox).join(', ')} still hold${r.blocked.length > 1 ? '' : 's'} it` : `still mentioned in ${r.remaining.map((x) => x.table).join(', ')}`} (see above)`);
      } finally {
        await db.destroy();
      }
    });

  program
    .command('log')
    .description('the sync log of a mailbox, newest first')
    .argument('<mailbox>')
    .addOption(new Option('-n, --limit <n>', 'how many lines').default('50').argParser((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('it must be a positive whole number.');
      return n;
    }))
    .option('--json', 'machine-readable output')
    .action(async (mailbox: string, opts: { limit: number | string; json?: boolean }) => {
      const rows = await withOperator(config(), (op) => op.log(mailbox, Number(opts.limit)));
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return out(`the sync log of ${normaliseMailbox(mailbox)} is empty (nothing synced or logged yet)`);
      for (const r of rows) out(`${r.at.toISOString()} ${r.level.padEnd(7)} ${[r.record_type, r.side, r.item_id].filter(Boolean).join(' ')}  ${r.message}`);
    });

  program
    .command('conflicts')
    .description('conflicts resolved for a mailbox: both versions, the rule applied and the outcome')
    .argument('<mailbox>')
    .option('--json', 'machine-readable output')
    .action(async (mailbox: string, opts: { json?: boolean }) => {
      const rows = await withOperator(config(), (op) => op.conflicts(mailbox, 100));
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return out('no conflicts');
      out(rows.map(formatConflict).join('\n\n'));
    });

  program
    .command('migrate')
    .description('apply database migrations (starts the embedded PostgreSQL when DATABASE_URL is unset)')
    .action(async () => {
      const database = await resolveDatabase(config(), { start: true });
      const db = openDb(database.url);
      try {
        const applied = await migrate(db);
        out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await db.destroy();
        await database.stop();
      }
    });

  program
    .command('maintenance')
    .description('housekeeping to run daily (cron or a systemd timer): deletes the records of hard-deleted CRM rows (crm.tombstone) that no mailbox needs any more')
    .option('--older-than <interval>', 'keep tombstones younger than this PostgreSQL interval', '7 days')
    .option('--json', 'machine-readable output')
    .action(async (opts: { olderThan: string; json?: boolean }) => {
      const db = await connectDb(config());
      try {
        let valid = false;
        try {
          valid = (await sql<{ ok: boolean }>`select ${opts.olderThan}::interval >= interval '0' as ok`.execute(db)).rows[0].ok;
        } catch {
          valid = false;
        }
        if (!valid) throw new OperatorError(`--older-than ${JSON.stringify(opts.olderThan)} is not a PostgreSQL interval of zero or more (e.g. "7 days")`);
        const purged = await purgeTombstones(db, { olderThan: opts.olderThan });
        if (opts.json) return out(JSON.stringify({ tombstonesPurged: purged }, null, 2));
        out(`tombstones purged: contacts ${purged.contacts}, events ${purged.events}, tasks ${purged.tasks}, email activities ${purged.email_activities}`);
      } finally {
        await db.destroy();
      }
    });

  program
    .command('worker')
    .description('run a cxsync worker (needs a reachable Temporal server; scale out by running more)')
    .action(async () => {
      await runWorker(config(), (l) => out(l));
    });

  program
    .command('emulator')
    .description('run the HTTPS Microsoft Graph emulator on its own (port CXSYNC_EMULATOR_PORT)')
    .action(async () => {
      await runEmulator(config(), (l) => out(l));
    });

  program
    .command('codec-server')
    .description('decode encrypted payloads for the Temporal UI and CLI (needs CXSYNC_CODEC_KEYS; docs/DEPLOYMENT.md, "Payload encryption")')
    .addOption(new Option('--port <port>', 'port to listen on').default(8888).argParser((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('it must be a port number (0-65535).');
      return n;
    }))
    .option('--host <address>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
    .action(async (opts: { port: number; host: string }) => {
      await runCodecServer(config(), opts, (l) => out(l));
    });

  return program;
}

/**
 * `cxsync` alone, or a command group alone (`cxsync policy`), is a request for help: printed on stdout, exit 0.
 * Commander treats a missing command as an error (help on stderr, exit 1).
 */
function helpRequested(program: Command, args: string[]): Command | undefined {
  let cmd = program;
  for (const a of args) {
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (!sub) return undefined;
    cmd = sub;
  }
  return cmd.commands.length > 0 ? cmd : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const help = helpRequested(program, argv.slice(2));
  if (help) {
    help.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof ChecksFailed) {
      if (err.message) process.stderr.write(`cxsync: ${err.message}\n`);
      return CHECK_FAILED_EXIT;
    }
    if (err instanceof CommanderError) {
      // Commander already printed its message (or the help, for --help/--version).
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : err.exitCode || 1;
    }
    if (err instanceof ConfigError) process.stderr.write(`cxsync: ${err.message}\n`);
    else if (err instanceof OperatorError) process.stderr.write(`cxsync: ${err.message}\n`);
    else process.stderr.write(`cxsync: ${(err as Error).message?.split('\n')[0] ?? String(err)}\n`);
    if (process.env.CXSYNC_DEBUG) console.error(err);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
