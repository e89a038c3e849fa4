/**
 * classifyCredentialError: MSAL's ServerError (as acquireTokenByClientCredential throws it) and the Graph client's
 * GraphError wrapping it (status -1), with the AADSTS codes of Microsoft Entra's error code reference; and the
 * one-line console rendering of a failed activity (src/worker/log-format.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServerError } from '@azure/msal-node';
import { ApplicationFailure } from '@temporalio/common';
import type { LogEntry } from '@temporalio/worker';
import { classifyCredentialError } from '../../src/activities/exchange/errors';
import { compactLine } from '../../src/worker/log-format';
import { MAILBOX_NEEDS_ATTENTION } from '../../src/domain/status';

/** The error MSAL raises for an identity platform answer, as captured from the emulator (auth.ts). */
function msal(error: string, aadsts: string, text: string): ServerError {
  const n = aadsts.slice(6);
  return new ServerError(error, 'c', `Error(s): ${n} - Timestamp: 2026-01-01 - Description: ${aadsts}: ${text} Trace ID: t Correlation ID: c`, '', n, 401);
}

describe('classifyCredentialError', () => {
  it('names each documented credential failure with what to change', () => {
    const cases: [ServerError, string, RegExp][] = [
      [msal('invalid_client', 'AADSTS7000215', 'Invalid client secret provided.'), 'secret-invalid', /GRAPH_CLIENT_SECRET/],
      [msal('invalid_client', 'AADSTS7000222', 'The provided client secret keys are expired.'), 'secret-expired', /new client secret/],
      [msal('invalid_client', 'AADSTS700027', 'Client assertion failed signature validation.'), 'certificate', /GRAPH_CERT_THUMBPRINT/],
      [msal('unauthorized_client', 'AADSTS7000112', 'Application is disabled.'), 'app-disabled', /Enterprise applications/],
      [msal('unauthorized_client', 'AADSTS700016', "Application with identifier 'x' was not found in the directory."), 'app-not-found', /GRAPH_CLIENT_ID/],
      [msal('invalid_request', 'AADSTS90002', "Tenant 'x' not found."), 'tenant-not-found', /GRAPH_TENANT_ID/],
      [msal('invalid_client', 'AADSTS7000218', "The request body must contain 'client_assertion' or 'client_secret'."), 'credential-missing', /GRAPH_CERT_PATH/],
      [msal('invalid_client', 'AADSTS9999999', 'Something new.'), 'credentials', /login\.microsoftonline\.com\/error\?code=9999999/],
    ];
    for (const [err, kind, fix] of cases) {
      const p = classifyCredentialError(err);
      assert.equal(p?.kind, kind, err.message);
      assert.match(p!.fix, fix);
      // The same error as the sync sees it: wrapped by the Graph client with status -1 and code 'ServerError'.
      const wrapped = Object.assign(new Error(err.message), { statusCode: -1, code: 'ServerError', body: `ServerError: ${err.message}` });
      assert.equal(classifyCredentialError(wrapped)?.kind, kind, `wrapped: ${err.message}`);
    }
  });

  it('leaves transient and network failures alone (they heal by themselves)', () => {
    assert.equal(classifyCredentialError(msal('temporarily_unavailable', 'AADSTS90006', 'The service is temporarily unavailable.')), undefined);
    assert.equal(classifyCredentialError(Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } })), undefined);
    assert.equal(classifyCredentialError(undefined), undefined);
  });
});

describe('console line of a failed activity', () => {
  const entry = (error: unknown, attempt = 1): LogEntry => ({
    level: 'WARN',
    message: 'Activity failed',
    timestampNanos: 1_764_000_000_000_000_000n,
    meta: { activityType: 'pullExchange', attempt, workflowId: 'cxsync/mailbox/anna@contoso.com', error },
  });

  it('a needs-attention failure is one line: mailbox, reason, what to run', () => {
    const err = ApplicationFailure.create({ type: MAILBOX_NEEDS_ATTENTION, nonRetryable: true, message: 'resolving the contact container: Graph 404 ErrorInvalidUser: check the address' });
    const line = compactLine(entry(err))!;
    assert.equal(line, '2025-11-24T16:00:00.000Z [WARN] mailbox anna@contoso.com needs attention: resolving the contact container: Graph 404 ErrorInvalidUser: check the address (cxsync status anna@contoso.com; once fixed: cxsync resume anna@contoso.com)');
    assert.doesNotMatch(line, /\n|\s+at /);
  });

  it('a retried failure is one line with the attempt; other entries keep the SDK format', () => {
    assert.equal(compactLine(entry(ApplicationFailure.create({ type: 'Graph503', message: 'pulling contacts: Graph 503 ServiceUnavailable\n  at x' }), 3)), '2025-11-24T16:00:00.000Z [WARN] mailbox anna@contoso.com: pullExchange failed, attempt 3, Temporal retries it: pulling contacts: Graph 503 ServiceUnavailable');
    assert.equal(compactLine({ level: 'WARN', message: 'Worker state changed', timestampNanos: 0n, meta: { state: 'STOPPING' } }), undefined);
  });
});
