/**
 * The API's one middleware chain: CORS (preflights answered here) → header normalizer → multipart form
 * (restore only) → JSON body → route → domain-error mapping.
 * Used by the Lambda entry point and, in-process, by the local HTTP server.
 */
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Context } from '../../shared/context.ts';
import { ParentNotFoundError, ValidationError } from '../../shared/errors.ts';
import { asCaller, callerOf } from '../../shared/jobs/caller.ts';
import { cors } from './cors.ts';
import { errorResponse } from './errors.ts';
import { MultipartForm, multipartBodyOn } from './multipart.ts';
import { RESTORE_PATH } from './restore.ts';
import { route } from './routes.ts';

// CORS headers are added to every answer by ./cors.ts.
const JSON_HEADERS = { 'Content-Type': 'application/json' };

/**
 * Parses any non-empty body as JSON whatever its Content-Type: Dkron's users send jobs with plain
 * `curl -d`, which says application/x-www-form-urlencoded.
 */
function parseBody(event: APIGatewayProxyEvent): unknown {
  if ((event.body as unknown) instanceof MultipartForm) return event.body; // parsed by multipartBodyOn
  if (!event.body) return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError('body', `must be valid JSON (${(error as Error).message})`);
  }
}

const TEXT_HEADERS = { 'Content-Type': 'text/plain; charset=utf-8' };

/**
 * Error bodies are JSON (`error`, and `field`/`rule` for bad input) for every client that accepts JSON, as
 * browsers, curl, fetch and Python's requests all say they do (`Accept` of any type, or JSON). A
 * client that sends no `Accept` at all — Go's net/http, which Dkron's own clients and tests use — gets
 * Dkron's plain-text body instead, word for word where Dkron has one.
 */
function wantsDkronText(event: APIGatewayProxyEvent | undefined): boolean {
  return !event?.headers?.accept;
}

function dkronText(error: unknown, message: string): string {
  if (error instanceof ParentNotFoundError) return error.message; // "specified parent job not found"
  if (error instanceof ValidationError) return `Job contains invalid value: ${message}.`;
  return message;
}

export interface ApiHandlerOptions {
  /** Where a 5XX's cause goes (on Lambda the Powertools Logger; locally stderr). */
  readonly logError?: (error: unknown) => void;
}

export function createApiHandler(shared: Context, options: ApiHandlerOptions = {}) {
  // A client waits on the API: a new agentless job's first minute goes out at once, not at the phase of
  // the second that shortens the worker's holds (shared/dispatch/dispatch.ts). Made at the first request,
  // inside the handler: a context that fails is a 500 there, not a handler that cannot be built.
  let own: Context | undefined;
  const contextOf = () => {
    own ??= { ...shared, dispatch: shared.dispatch.withoutPhaseWait() };
    return own;
  };
  const logError = options.logError ?? ((error: unknown) => console.error(error));
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(cors())
    .use(httpHeaderNormalizer())
    .use({
      onError: async (request) => {
        const { statusCode, body } = errorResponse(request.error);
        if (statusCode >= 500) logError(request.error);
        request.response = wantsDkronText(request.event)
          ? { statusCode, headers: TEXT_HEADERS, body: dkronText(request.error, body.error) }
          : { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
      },
    })
    .use(multipartBodyOn(RESTORE_PATH))
    .handler(async (event) => {
      const query: Record<string, string> = {};
      for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) {
        if (typeof v === 'string') query[k] = v;
      }
      // The IAM identity API Gateway verified: recorded on every job change (shared/jobs/caller.ts).
      const caller = callerOf(event.requestContext?.identity);
      const res = await asCaller(caller, () =>
        route(contextOf(), event.httpMethod.toUpperCase(), event.path, {
          query,
          body: parseBody(event),
          basePath: basePath(event),
        }),
      );
      const headers: Record<string, string> = { ...JSON_HEADERS, ...res.headers };
      if (headers.Location?.startsWith('/')) headers.Location = `${basePath(event)}${headers.Location}`;
      return { statusCode: res.status, headers, body: JSON.stringify(res.body) };
    });
}

/**
 * What stands before the API's own paths in the URL the client called: the stage (`/prod`) on an
 * execute-api host, a base path mapping on a custom domain, nothing locally. API Gateway gives the full
 * path in `requestContext.path` and the API's own in `path`.
 */
export function basePath(event: APIGatewayProxyEvent): string {
  const full = event.requestContext?.path;
  return full && full !== event.path && full.endsWith(event.path) ? full.slice(0, -event.path.length) : '';
}
