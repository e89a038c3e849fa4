/** The `cxsync` command line. User errors end with exit code 1 and one line on stderr, never a stack trace. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadEnv, type Env } from '../config';
import { migrate, openDb } from '../db/connection';
import { resolveDatabase } from '../db/resolve';
import type { MailboxStatus, TypeSummary } from '../domain/status';
import { OperatorError } from './operator';
import { withOperator } from './connect';
import { runDev } from './dev';
import { runEmulator } from './emulator-command';
import { runWorker } from '../worker/main';

let env: Env | undefined;
function config(): Env {
  return (env ??= loadEnv());
}

function out(line = ''): void {
  process.stdout.write(line + '\n');
}

function formatStatus(s: MailboxStatus): string {
  const lines = [
    `mailbox:     ${s.mailbox}`,
    `state:       ${s.state}${s.pausedReason ? ` (${s.pausedReason})` : ''}${s.needsAttentionReason ? ` (${s.needsAttentionReason})` : ''}`,
    `next cycle:  ${s.nextCycleAt ?? '-'}`,
    `cycles:      ${s.cyclesCompleted} completed`,
  ];
  const c = s.lastCycle;
  if (!c) lines.push('last cycle:  none yet');
  else {
    lines.push(`last cycle:  ${c.outcome}${c.detail ? ` (${c.detail})` : ''}, ${c.start} → ${c.end ?? '…'}`);
    for (const [type, t] of Object.entries(c.types) as [string, TypeSummary][]) {
      lines.push(
        `  ${type}: pulled ${t.pulled.exchange} from Exchange, ${t.pulled.crm} from CRM; ` +
          `Exchange +${t.exchange.created} ~${t.exchange.updated} -${t.exchange.deleted}; ` +
          `CRM +${t.crm.created} ~${t.crm.updated} -${t.crm.deleted}; conflicts ${t.conflicts}; errors ${t.errors}`,
      );
    }
  }
  return lines.join('\n');
}

export function buildProgram(): Command {
  const program = new Command('cxsync')
    .description('Two-way sync of CRM contacts with Exchange Online mailboxes, on Temporal.\nConfiguration comes from environment variables (see README.md, "Configuration").')
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
    .action(async (mailbox: string) => {
      const r = await withOperator(config(), (op) => op.enroll(mailbox));
      out(`${r.mailbox} ${r.created ? 'enrolled' : 'was already enrolled; workflow running'}`);
    });

  program
    .command('list')
    .description('list enrolled mailboxes with their state')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withOperator(config(), (op) => op.list());
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return out('no mailboxes enrolled (cxsync enroll <mailbox>)');
      for (const r of rows) out(`${r.mailbox.padEnd(32)} ${r.state.padEnd(16)} last ${r.lastCycleEnd ?? '-'}  next ${r.nextCycleAt ?? '-'}`);
    });

  program
    .command('status')
    .description('state, last cycle (per record type) and next cycle of a mailbox')
    .argument('<mailbox>')
    .option('--json', 'machine-readable output')
    .action(async (mailbox: string, opts: { json?: boolean }) => {
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
    .description('resume a paused mailbox (also clears needs-attention)')
    .argument('<mailbox>')
    .action(async (mailbox: string) => {
      const id = await withOperator(config(), (op) => op.resume(mailbox));
      out(`${id} resumed`);
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
    .description('stop syncing a mailbox and forget its sync state (synced items stay on both sides)')
    .argument('<mailbox>')
    .action(async (mailbox: string) => {
      const id = await withOperator(config(), (op) => op.remove(mailbox));
      out(`${id} removed`);
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
      for (const r of rows) out(`${r.at.toISOString()} ${r.record_type} crm ${r.crm_id} / exchange ${r.exchange_id}: ${r.rule} → ${r.outcome}\n  CRM:      ${JSON.stringify(r.crm_version)}\n  Exchange: ${JSON.stringify(r.exchange_version)}`);
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

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
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
