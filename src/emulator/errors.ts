/** Graph-shaped failures: every error the emulator answers looks like the one real Graph would send. */

export class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (message = 'The specified object was not found in the store.') =>
  new GraphHttpError(404, 'ErrorItemNotFound', message);
export const badRequest = (code: string, message: string) => new GraphHttpError(400, code, message);

export function errorBody(err: GraphHttpError, requestId: string, clientRequestId: string): Record<string, unknown> {
  return {
    error: {
      code: err.code,
      message: err.message,
      innerError: { date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), 'request-id': requestId, 'client-request-id': clientRequestId },
    },
  };
}

/** Status → the code real Graph uses for injected transient faults. */
export function faultCode(status: number): string {
  switch (status) {
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'GatewayTimeout';
    case 500:
      return 'InternalServerError';
    case 401:
      return 'InvalidAuthenticationToken';
    case 403:
      return 'ErrorAccessDenied';
    case 404:
      return 'ErrorItemNotFound';
    case 410:
      return 'SyncStateNotFound';
    default:
      return status >= 500 ? 'InternalServerError' : 'BadRequest';
  }
}
