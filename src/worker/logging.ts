/** Temporal SDK logging and metrics for cxsync's processes. */
import { IllegalStateError } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { consoleLogFunction } from './log-format';
import { metricsAddresses, type Env } from '../config';
import { temporalMetricsExporter } from './metrics';

/**
 * The SDK logs every worker state change and the bundler's output at INFO; an operator needs warnings. The same
 * runtime serves the SDK's Prometheus metrics (CXSYNC_TEMPORAL_METRICS_ADDRESS): it must be installed before any
 * connection to Temporal is made.
 */
export function quietTemporalSdk(env: Env): void {
  const level = env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? 'DEBUG' : env.LOG_LEVEL === 'info' || env.LOG_LEVEL === 'warn' ? 'WARN' : 'ERROR';
  const { temporal } = metricsAddresses(env);
  try {
    Runtime.install({ logger: new DefaultLogger(level, consoleLogFunction(level === 'DEBUG')), ...(temporal ? { telemetryOptions: { metrics: temporalMetricsExporter(temporal) } } : {}) });
  } catch (err) {
    if (err instanceof IllegalStateError) return; // a runtime exists already
    const msg = (err as Error).message;
    throw new Error(/in use/i.test(msg)
      ? `the Temporal SDK metrics address ${temporal} is in use (another cxsync worker or \`npm start\` on this host?): set CXSYNC_TEMPORAL_METRICS_ADDRESS to a free IP:port, or to off`
      : `cannot serve Temporal SDK metrics on ${temporal} (CXSYNC_TEMPORAL_METRICS_ADDRESS): ${msg}`);
  }
}
