/**
 * CORS for every answer of the API, so that a UI served from another origin can use it: Dkron's own web
 * UI (react-admin with ra-data-json-server, pointed at us through `window.DKRON_API_URL`) and our own.
 *
 * - Every response says `Access-Control-Allow-Origin: *` and exposes the headers clients read: a
 *   cross-origin script sees none but the CORS-safelisted ones otherwise, and ra-data-json-server throws
 *   "The X-Total-Count header is missing" on every list.
 * - `OPTIONS` on any path is a preflight and answers 204 before routing: the browser sends one before
 *   PUT and DELETE, before any request with a JSON body (`Content-Type: application/json`), and before
 *   any carrying `Authorization` (Dkron's UI with a token) or SigV4's `X-Amz-*` headers.
 *
 * No credentials are allowed (no cookies are used), which is what makes `*` safe: a page of any origin can
 * send only what it could send with curl.
 */
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

/** What a cross-origin script may read: the list total (Dkron's and react-admin's paging), where a created job is, the run group. */
export const EXPOSED_HEADERS = ['X-Total-Count', 'Location', 'X-Cronplane-Group'] as const;

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': EXPOSED_HEADERS.join(', '),
};

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';

/** Allowed when the preflight names none: JSON bodies, a bearer token, and SigV4 signing. */
const DEFAULT_ALLOWED_HEADERS = [
  'Accept',
  'Authorization',
  'Content-Type',
  'X-Amz-Content-Sha256',
  'X-Amz-Date',
  'X-Amz-Security-Token',
  'X-Amz-User-Agent',
  'X-Api-Key',
].join(', ');

/** A comma list of header names (RFC 9110 tokens), as browsers send in Access-Control-Request-Headers. */
const HEADER_NAMES = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
const MAX_REQUESTED_HEADERS = 2000;

/** Browsers keep a preflight this many seconds (Chromium at most 7,200). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

function header(event: APIGatewayProxyEvent, name: string): string | undefined {
  for (const [k, v] of Object.entries(event.headers ?? {})) {
    if (k.toLowerCase() === name && typeof v === 'string') return v;
  }
  return undefined;
}

/**
 * The answer to a preflight. The headers the browser asks for are allowed as asked (any name it may send
 * is one a non-browser client sends anyway; `*` would not cover `Authorization`); a malformed list gets
 * the fixed one.
 */
export function preflightResponse(event: APIGatewayProxyEvent): APIGatewayProxyResult {
  const requested = header(event, 'access-control-request-headers')?.trim();
  const allowHeaders =
    requested && requested.length <= MAX_REQUESTED_HEADERS && HEADER_NAMES.test(requested)
      ? requested
      : DEFAULT_ALLOWED_HEADERS;
  return {
    statusCode: 204,
    headers: {
      ...CORS_HEADERS,
      Allow: ALLOWED_METHODS,
      'Access-Control-Allow-Methods': ALLOWED_METHODS,
      'Access-Control-Allow-Headers': allowHeaders,
      'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_SECONDS),
      Vary: 'Access-Control-Request-Headers',
    },
    body: '',
  };
}

function withCorsHeaders(response: APIGatewayProxyResult | null | undefined): void {
  if (response && typeof response === 'object') response.headers = { ...CORS_HEADERS, ...response.headers };
}

/**
 * Used first in the chain: its `before` answers preflights before any parsing or routing, and its
 * `after`/`onError` run last, so that the error mapping's answer gets the headers too.
 */
export function cors(): MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> {
  return {
    before: async (request) => {
      if (request.event.httpMethod?.toUpperCase() === 'OPTIONS') return preflightResponse(request.event);
      return undefined;
    },
    after: async (request) => {
      withCorsHeaders(request.response);
    },
    onError: async (request) => {
      withCorsHeaders(request.response);
    },
  };
}
