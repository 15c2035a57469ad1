/**
 * The one place that recognises a store that did not answer in time (shared/aws/clients.ts's time-outs),
 * throttled, or failed on its side: the API answers 503 for it (functions/api/errors.ts), the tick tries
 * a chunk again whole instead of halving it (shared/scheduler/tick.ts).
 */

/** What the SDK's clients throw when a store does not answer in time or throttles. */
const UNAVAILABLE_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'InternalServerError',
]);
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/** A stall, an outage or throttling of the store (retry later), not a defect of the request or of ours. */
export function storeUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, $metadata } = error as Error & { code?: unknown; $metadata?: { httpStatusCode?: number } };
  return (
    UNAVAILABLE_NAMES.has(error.name) ||
    (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) ||
    ($metadata?.httpStatusCode !== undefined && $metadata.httpStatusCode >= 500)
  );
}
