/** Temporal SDK logging for cxsync's processes. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Env } from '../config';

/** The SDK logs every worker state change and the bundler's output at INFO; an operator needs warnings. */
export function quietTemporalSdk(env: Env): void {
  const level = env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? 'DEBUG' : env.LOG_LEVEL === 'info' || env.LOG_LEVEL === 'warn' ? 'WARN' : 'ERROR';
  try {
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    /* a runtime exists already */
  }
}
