/**
 * Secure Temporal connections (issue 9): the worker (NativeConnection, the SDK's Rust core) and the CLI's client
 * (Connection, grpc-js) reach Temporal over TLS with a client certificate (mTLS) and an API key, configured only
 * through the environment cxsync validates at start. The Temporal CLI dev server has no TLS, so a TLS-terminating
 * HTTP/2 proxy (test/helpers/grpc-tls-proxy.ts) stands in front of it, checking the client certificate against a
 * throwaway CA and the API key, as a secured cluster or Temporal Cloud would. A mailbox is enrolled and synced
 * through it; connections missing the certificate, the key or TLS are refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadEnv, type Env } from '../../src/config';
import { connectTemporal } from '../../src/client/connect';
import { Operator } from '../../src/client/operator';
import { createWorker } from '../../src/worker/worker';
import { describeTemporalSecurity, refusedCredentialsMessage, temporalConnectionOptions } from '../../src/security/temporal-connection';
import { emulatorGraphSettings, startStack, type Stack } from '../helpers/stack';
import { makeTestPki, startTlsProxy, type TestPki, type TlsProxy } from '../helpers/grpc-tls-proxy';
import { NativeConnection, type Worker } from '@temporalio/worker';

const ANNA = 'anna@contoso.com';
const API_KEY = 'test-api-key-0123456789';

function problems(env: Record<string, string>): string[] {
  try {
    loadEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('Temporal over TLS: configuration checked at start', () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });
  after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

  it('names each mistake: missing half of the pair, a file that is not there or not PEM, a key of another certificate', () => {
    assert.deepEqual(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert }), ['TEMPORAL_TLS_CLIENT_KEY_PATH is required with TEMPORAL_TLS_CLIENT_CERT_PATH (the private key of the client certificate)']);
    assert.deepEqual(problems({ TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey }), ['TEMPORAL_TLS_CLIENT_CERT_PATH is required with TEMPORAL_TLS_CLIENT_KEY_PATH (the client certificate of that key)']);
    const missing = path.join(pki.dir, 'nope.pem');
    assert.deepEqual(problems({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing }), [`TEMPORAL_TLS_SERVER_CA_CERT_PATH ${missing} does not exist`]);
    assert.deepEqual(problems({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.clientKey }), [`TEMPORAL_TLS_SERVER_CA_CERT_PATH ${pki.clientKey} is not a PEM X.509 certificate`]);
    assert.deepEqual(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.caCert }), [`TEMPORAL_TLS_CLIENT_KEY_PATH ${pki.caCert} is not a PEM private key (unencrypted)`]);
    assert.deepEqual(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.strangerKey }), [`TEMPORAL_TLS_CLIENT_KEY_PATH ${pki.strangerKey} is not the private key of the certificate in ${pki.clientCert}`]);
    assert.deepEqual(problems({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert }), ['TEMPORAL_TLS is false but TEMPORAL_TLS_* certificate settings are given: remove them or set TEMPORAL_TLS=true']);
    assert.deepEqual(problems({ TEMPORAL_TLS: 'yes' }), ['TEMPORAL_TLS must be true or false']);
  });

  it('builds the SDK options: plain text by default, TLS from any certificate setting or an API key, and off only when asked', () => {
    assert.deepEqual(temporalConnectionOptions(loadEnv({})), { address: 'localhost:7233' });
    const full = temporalConnectionOptions(loadEnv({
      TEMPORAL_ADDRESS: 'temporal.test:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert, TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey, TEMPORAL_TLS_SERVER_NAME: 'temporal.test', TEMPORAL_API_KEY: API_KEY,
    }));
    assert.equal(full.address, 'temporal.test:7233');
    assert.equal(full.apiKey, API_KEY);
    assert.equal(full.tls?.serverNameOverride, 'temporal.test');
    assert.deepEqual(full.tls?.serverRootCACertificate, fs.readFileSync(pki.caCert));
    assert.deepEqual(full.tls?.clientCertPair, { crt: fs.readFileSync(pki.clientCert), key: fs.readFileSync(pki.clientKey) });
    assert.equal(describeTemporalSecurity(full), 'TLS, client certificate, API key');
    // Temporal Cloud with an API key: TLS against the system's CAs, no files.
    assert.deepEqual(temporalConnectionOptions(loadEnv({ TEMPORAL_API_KEY: API_KEY })), { address: 'localhost:7233', tls: {}, apiKey: API_KEY });
    assert.deepEqual(temporalConnectionOptions(loadEnv({ TEMPORAL_API_KEY: API_KEY, TEMPORAL_TLS: 'false' })), { address: 'localhost:7233', apiKey: API_KEY });
    assert.deepEqual(temporalConnectionOptions(loadEnv({ TEMPORAL_TLS: 'true' })), { address: 'localhost:7233', tls: {} });
  });
});

describe('Temporal over mTLS with an API key: the worker and the CLI sync a mailbox', () => {
  let s: Stack;
  let pki: TestPki;
  let proxy: TlsProxy;
  let env: Env;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const closers: (() => Promise<unknown>)[] = [];

  before(async () => {
    pki = makeTestPki();
    s = await startStack({ startWorker: false });
    proxy = await startTlsProxy({ pki, upstream: s.temporalAddress, apiKey: API_KEY });
    const port = proxy.address.split(':')[1];
    env = loadEnv({
      // The certificate names temporal.test; the connection goes to 127.0.0.1 with that name for SNI and checks.
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default', TEMPORAL_TASK_QUEUE: s.taskQueue,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey, TEMPORAL_API_KEY: API_KEY,
    });
    await s.addUser(ANNA, 'Anna Schmidt');
  });
  after(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await proxy?.close();
    await s?.teardown();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  it('runs a worker and an enrolment through the secured frontend', async () => {
    const created = await createWorker({
      db: s.db,
      graph: emulatorGraphSettings(s.emulator),
      graphCaPem: s.emulator.caCertPem,
      temporal: { ...temporalConnectionOptions(env), namespace: 'default', taskQueue: s.taskQueue },
      settings: { intervalSeconds: 3600, batchSize: 100 },
    });
    worker = created.worker;
    closers.push(() => created.connection.close());
    running = worker.run();

    const { client, connection } = await connectTemporal(env);
    closers.push(() => connection.close());
    s.emulator.admin.ensureMailbox(ANNA);
    s.emulator.admin.createContact(ANNA, 'VContacts', { givenName: 'Lukas', surname: 'Weber', emailAddresses: [{ address: 'lukas@fabrikam.de' }] });
    const op = new Operator(client, s.db, s.taskQueue);
    await op.enroll(ANNA);
    const st = await op.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    assert.equal(st?.lastCycle?.types.contact?.crm.created, 1);
    assert.ok(proxy.counts.forwarded > 10, `calls through the proxy: ${proxy.counts.forwarded}`);
    assert.equal(proxy.counts.refused, 0);
  });

  it('refuses a client without the API key, without a client certificate, with another CA\'s certificate, or in plain text', async () => {
    const attempt = (over: Record<string, string | undefined>) => {
      const raw: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...env, ...over })) if (typeof v === 'string') raw[k] = v;
      else if (typeof v === 'number') raw[k] = String(v);
      return connectTemporal(loadEnv(raw)).then(async ({ client, connection }) => {
        try {
          // Connecting may succeed at the TLS level; the first call must be refused.
          await client.workflowService.getSystemInfo({});
        } finally {
          await connection.close();
        }
      });
    };
    const before = proxy.counts.refused;
    await assert.rejects(attempt({ TEMPORAL_API_KEY: 'wrong-key-0123456789' }), /refused cxsync's credentials \(unauthenticated\): check TEMPORAL_API_KEY/);
    assert.equal(proxy.counts.refused, before + 1, 'the wrong key reached the frontend and was refused there');
    // The worker's connection (the SDK's Rust core) is refused the same way, and says so in the same words.
    const workerErr = await NativeConnection.connect({ ...temporalConnectionOptions(env), apiKey: 'wrong-key-0123456789' }).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (err: unknown) => err,
    );
    assert.match(refusedCredentialsMessage(env.TEMPORAL_ADDRESS, workerErr) ?? String(workerErr), /refused cxsync's credentials/);
    const refused = /Temporal unreachable at 127\.0\.0\.1:\d+: /;
    await assert.rejects(attempt({ TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined }), refused);
    await assert.rejects(attempt({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.strangerCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.strangerKey }), refused);
    await assert.rejects(attempt({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_NAME: undefined, TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined }), refused);
    // The server's certificate must chain to the configured CA: another CA's certificate does not vouch for it.
    await assert.rejects(attempt({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.strangerCert }), refused);
    assert.equal(proxy.counts.refused, before + 2, 'none of these reached the frontend');
  });
});
