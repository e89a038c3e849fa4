/** What the benchmarks share: numeric `--name value` arguments, and a count of the SQL statements sent. */
import pg from 'pg';

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/**
 * Counts every statement this process sends through node-postgres from now on (the worker or activities under
 * test run in it); read the count with the returned function.
 */
export function countStatements(): () => number {
  let statements = 0;
  const query = pg.Client.prototype.query as (...a: unknown[]) => unknown;
  pg.Client.prototype.query = function counted(this: pg.Client, ...a: unknown[]) {
    statements++;
    return query.apply(this, a);
  } as typeof pg.Client.prototype.query;
  return () => statements;
}
