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

/** How a request is sent: directly, or through a retry such as `retryUnavailable`. */
export type Attempt = <T>(call: () => Promise<T>) => Promise<T>;

/** Sends once: a failure is the caller's. */
export const once: Attempt = (call) => call();

/**
 * Sends, and while the store is unavailable (`storeUnavailable`: the SDK's own attempts used up) sends
 * again after a pause of `pauseMs`–2×`pauseMs`, at most `retries` more times. For reads whose failure
 * would cost more than the wait, e.g. a page in the middle of the tick's due read (shared/jobs).
 */
export function retryUnavailable(retries: number, pauseMs: number): Attempt {
  return async <T>(call: () => Promise<T>): Promise<T> => {
    for (let left = retries; ; left--) {
      try {
        return await call();
      } catch (error) {
        if (left <= 0 || !storeUnavailable(error)) throw error;
        await new Promise((r) => setTimeout(r, pauseMs * (1 + Math.random())));
      }
    }
  };
}
