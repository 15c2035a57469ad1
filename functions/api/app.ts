/**
 * The API's one middleware chain: header normalizer → multipart form (restore only) → JSON body → route →
 * domain-error mapping.
 * Used by the Lambda entry point and, in-process, by the local HTTP server.
 */
import middy from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { Context } from '../../shared/context.ts';
import { ValidationError } from '../../shared/errors.ts';
import { asCaller, callerOf } from '../../shared/jobs/caller.ts';
import { errorResponse } from './errors.ts';
import { MultipartForm, multipartBodyOn } from './multipart.ts';
import { RESTORE_PATH } from './restore.ts';
import { route } from './routes.ts';

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' };

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

export function createApiHandler(ctx: Context) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
    .use(httpHeaderNormalizer())
    .use({
      onError: async (request) => {
        const { statusCode, body } = errorResponse(request.error);
        if (statusCode >= 500) console.error(request.error);
        request.response = { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
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
        route(ctx, event.httpMethod.toUpperCase(), event.path, { query, body: parseBody(event) }),
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
