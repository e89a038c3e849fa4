/** The production Graph client stack pointed at an emulator, and raw HTTPS for what the client library hides. */
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { GraphError } from '@microsoft/microsoft-graph-client';
import { Agent, fetch } from 'undici';
import { graphConnection, type GraphConnection } from '../../src/activities/exchange/graph-client';
import { EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET } from '../../src/config';
import type { GraphEmulator } from '../../src/emulator';

export function connect(emu: GraphEmulator, clientSecret = EMULATOR_CLIENT_SECRET): GraphConnection {
  return graphConnection(
    { baseUrl: emu.graphBaseUrl, authorityHost: emu.authorityHost, tenantId: emu.tenantId, clientId: EMULATOR_CLIENT_ID, clientSecret, usesEmulator: true },
    emu.caCertPem,
  );
}

/** Raw HTTPS with the connection's token: status, headers and exact bodies. A non-string body is sent as JSON. */
export async function raw(
  emu: GraphEmulator,
  conn: GraphConnection,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; headers: Headers; body: Record<string, any> | undefined }> {
  const dispatcher = new Agent({ connect: { ca: [...tls.rootCertificates, emu.caCertPem] } });
  try {
    const res = await fetch(url.startsWith('http') ? url : emu.graphBaseUrl + url, {
      method: init.method ?? 'GET',
      headers: { Authorization: `Bearer ${await conn.getToken()}`, 'Content-Type': 'application/json', ...init.headers },
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
      dispatcher,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers as unknown as Headers, body: text ? JSON.parse(text) : undefined };
  } finally {
    await dispatcher.close();
  }
}

/** The GraphError a request fails with; fails the test when it succeeds or fails otherwise. */
export async function graphError(p: Promise<unknown>): Promise<GraphError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GraphError, `expected a GraphError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to fail');
}
