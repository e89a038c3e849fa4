/**
 * A worker's two Prometheus endpoints (docs/OPERATIONS.md, "Metrics"):
 * - cxsync's own metrics (src/activities/metrics.ts, prom-client) plus Node.js process metrics, served here on
 *   CXSYNC_METRICS_ADDRESS (default 0.0.0.0:9464) at /metrics;
 * - the Temporal SDK's metrics (workflow and activity tasks, slots, latencies, failures), served by the SDK's own
 *   Prometheus exporter on CXSYNC_TEMPORAL_METRICS_ADDRESS (default 0.0.0.0:9465) at /metrics.
 * Two endpoints because the SDK's exporter runs inside its native core and binds its own socket; merging its
 * text into ours would mean re-writing exposition by hand.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsExporterConfig } from '@temporalio/worker';
import { collectDefaultMetrics } from 'prom-client';
import { registry } from '../activities/metrics';
import { metricsAddresses, type Env } from '../config';

/**
 * How the SDK's exporter is set up: Prometheus naming (counters end in `_total`, durations are `_seconds`
 * histograms), the same conventions as cxsync's own metrics.
 */
export function temporalMetricsExporter(bindAddress: string): MetricsExporterConfig {
  return { prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } };
}

/**
 * The Temporal SDK metrics the shipped dashboard and alert rules use (docs/grafana-dashboard.json,
 * docs/prometheus-alerts.yml); test/integration/metrics.test.ts checks that the SDK really exports each of them.
 */
export const TEMPORAL_SDK_METRICS = [
  'temporal_activity_execution_failed_total',
  'temporal_activity_task_received_total',
  'temporal_activity_execution_latency_seconds',
  'temporal_activity_schedule_to_start_latency_seconds',
  'temporal_workflow_task_execution_latency_seconds',
  'temporal_workflow_task_schedule_to_start_latency_seconds',
  'temporal_workflow_continue_as_new_total',
  'temporal_worker_task_slots_available',
  'temporal_worker_task_slots_used',
  'temporal_sticky_cache_size',
] as const;

export interface MetricsServer {
  /** http://host:port/metrics */
  url: string;
  close(): Promise<void>;
}

let processMetrics = false;

/** Serves cxsync's registry at /metrics. A busy address fails with the variable to change named. */
export async function startMetricsServer(address: { host: string; port: number }, variable = 'CXSYNC_METRICS_ADDRESS'): Promise<MetricsServer> {
  if (!processMetrics) {
    // Node.js process metrics (CPU, memory, event loop lag: planning 100,000 items is CPU work) under their usual names.
    collectDefaultMetrics({ register: registry });
    processMetrics = true;
  }
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('cxsync metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
      reject(new Error(err.code === 'EADDRINUSE'
        ? `the metrics address ${where} is in use (another cxsync worker or \`npm start\` on this host?): set ${variable} to a free IP:port, or to off`
        : `cannot serve metrics on ${where} (${variable}): ${err.message}`));
    });
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** The process's cxsync endpoint per the configuration (the SDK's is bound by quietTemporalSdk); says where both are. */
export async function startWorkerMetrics(env: Env, say: (line: string) => void): Promise<MetricsServer | undefined> {
  const { cxsync, temporal } = metricsAddresses(env);
  const server = cxsync ? await startMetricsServer(cxsync) : undefined;
  say(`metrics: cxsync ${server ? server.url : 'off'}, Temporal SDK ${temporal ? `http://${temporal}/metrics` : 'off'}`);
  return server;
}
