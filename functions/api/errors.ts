/** The one table from domain errors to HTTP. Anything not listed is a 500 without internals. */
import { storeUnavailable } from '../../shared/aws/unavailable.ts';
import {
  ConflictError,
  type CronplaneError,
  DependentJobsError,
  LeaseLostError,
  NotFoundError,
  ParentNotFoundError,
  PausedError,
  ValidationError,
} from '../../shared/errors.ts';

const STATUS = new Map<new (...args: never[]) => CronplaneError, number>([
  [ValidationError, 400],
  [NotFoundError, 404],
  [DependentJobsError, 404],
  [ConflictError, 409],
  [PausedError, 503],
  [LeaseLostError, 503],
]);

export interface ErrorResponse {
  statusCode: number;
  body: { error: string; field?: string; rule?: string };
}

export function errorResponse(error: unknown): ErrorResponse {
  for (const [type, statusCode] of STATUS) {
    if (error instanceof type) {
      const body: ErrorResponse['body'] = { error: error.message };
      if (error instanceof ValidationError || error instanceof ParentNotFoundError) {
        body.field = error.field;
        body.rule = error.rule;
      }
      return { statusCode, body };
    }
  }
  // middy's HttpError (e.g. from a middleware) carries its own status; only exposed 4xx keep their message.
  if (error instanceof Error) {
    const { statusCode, expose } = error as Error & { statusCode?: unknown; expose?: unknown };
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 && expose === true) {
      return { statusCode, body: { error: error.message } };
    }
  }
  // A store stall or outage is the service being unavailable (503, retry), not a defect of ours (500): with
  // API Gateway's 29 s in front, an answer within the clients' time-outs says which it is.
  if (storeUnavailable(error)) {
    return { statusCode: 503, body: { error: 'the store is not answering (timed out or throttled); retry' } };
  }
  return { statusCode: 500, body: { error: 'internal error' } };
}
