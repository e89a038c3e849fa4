/**
 * The metrics endpoints' configuration (src/config.ts) and start-up: each mistake is named with its variable at
 * start, and a busy address says which variable to change instead of a bare EADDRINUSE.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConfigError, loadEnv, metricsAddresses } from '../../src/config';
import { startMetricsServer } from '../../src/worker/metrics';
import { quietTemporalSdk } from '../../src/worker/logging';

function problems(env: Record<string, string>): string[] {
  try {
    loadEnv(env);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
}

async function occupiedPort(): Promise<{ port: number; close: () => void }> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

describe('metrics configuration', () => {
  it('defaults to both endpoints on all interfaces, 9464 for cxsync and 9465 for the Temporal SDK', () => {
    assert.deepEqual(metricsAddresses(loadEnv({})), { cxsync: { host: '0.0.0.0', port: 9464 }, temporal: '0.0.0.0:9465' });
  });

  it('takes IPv4 and bracketed IPv6 addresses, and off', () => {
    const env = loadEnv({ CXSYNC_METRICS_ADDRESS: '[::1]:9100', CXSYNC_TEMPORAL_METRICS_ADDRESS: 'off' });
    assert.deepEqual(metricsAddresses(env), { cxsync: { host: '::1', port: 9100 }, temporal: null });
    assert.deepEqual(metricsAddresses(loadEnv({ CXSYNC_METRICS_ADDRESS: 'off', CXSYNC_TEMPORAL_METRICS_ADDRESS: '127.0.0.1:9100' })), { cxsync: null, temporal: '127.0.0.1:9100' });
  });

  it('names the variable and what it accepts for each mistake', () => {
    for (const bad of ['localhost:9464', '9464', '0.0.0.0', '0.0.0.0:0', '0.0.0.0:70000', '999.1.1.1:9464', 'on']) {
      const p = problems({ CXSYNC_METRICS_ADDRESS: bad });
      assert.equal(p.length, 1, `${bad}: ${p.join('; ')}`);
      assert.match(p[0], /^CXSYNC_METRICS_ADDRESS must be IP:port such as 0\.0\.0\.0:9464 or \[::\]:9464 \(a port from 1 to 65535\), or off$/);
    }
    assert.match(problems({ CXSYNC_TEMPORAL_METRICS_ADDRESS: 'metrics.local:9465' })[0], /^CXSYNC_TEMPORAL_METRICS_ADDRESS must be IP:port/);
    assert.deepEqual(problems({ CXSYNC_METRICS_ADDRESS: '0.0.0.0:9500', CXSYNC_TEMPORAL_METRICS_ADDRESS: '127.0.0.1:9500' }), [
      'CXSYNC_TEMPORAL_METRICS_ADDRESS must use another port than CXSYNC_METRICS_ADDRESS: they are two endpoints',
    ]);
  });

  it('a busy cxsync metrics address fails with the variable to change', async () => {
    const busy = await occupiedPort();
    try {
      await assert.rejects(startMetricsServer({ host: '127.0.0.1', port: busy.port }), {
        message: `the metrics address 127.0.0.1:${busy.port} is in use (another cxsync worker or \`npm start\` on this host?): set CXSYNC_METRICS_ADDRESS to a free IP:port, or to off`,
      });
    } finally {
      busy.close();
    }
  });

  it("a busy Temporal SDK metrics address fails with the variable to change, before any connection is made", async () => {
    const busy = await occupiedPort();
    try {
      assert.throws(() => quietTemporalSdk(loadEnv({ CXSYNC_TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${busy.port}` })), {
        message: `the Temporal SDK metrics address 127.0.0.1:${busy.port} is in use (another cxsync worker or \`npm start\` on this host?): set CXSYNC_TEMPORAL_METRICS_ADDRESS to a free IP:port, or to off`,
      });
    } finally {
      busy.close();
    }
  });
});
