import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CORS_HEADERS, cors, preflightResponse } from '../../../functions/api/cors.ts';

function event(method: string, headers: Record<string, string> = {}): APIGatewayProxyEvent {
  return { httpMethod: method, path: '/v1/jobs/x', headers } as unknown as APIGatewayProxyEvent;
}

const EXPOSED = 'X-Total-Count, Location, X-Cronplane-Group';

describe('preflightResponse', () => {
  it('allows what the browser asks for, and exposes the list total', () => {
    const res = preflightResponse(
      event('OPTIONS', {
        Origin: 'http://ui.example',
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'authorization,content-type',
      }),
    );
    expect(res.statusCode).toBe(204);
    expect(res.headers).toMatchObject({
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'authorization,content-type',
      'Access-Control-Expose-Headers': EXPOSED,
    });
    expect(String(res.headers?.['Access-Control-Allow-Methods'])).toContain('DELETE');
  });

  it('answers any requested list with a header-safe value: the list itself or the fixed one', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (requested) => {
        const allowed = String(
          preflightResponse(event('OPTIONS', { 'access-control-request-headers': requested })).headers?.[
            'Access-Control-Allow-Headers'
          ],
        );
        expect(allowed).toMatch(/^[!#$%&'*+.^_`|~0-9A-Za-z, \t-]+$/);
        if (allowed !== requested.trim()) expect(allowed).toContain('Authorization');
      }),
    );
  });
});

describe('cors middleware', () => {
  const handler = (answer: () => Promise<APIGatewayProxyResult>) =>
    middy<APIGatewayProxyEvent, APIGatewayProxyResult>()
      .use(cors())
      .use({
        onError: async (request) => {
          request.response = { statusCode: 500, headers: { 'Content-Type': 'application/json' }, body: '{}' };
        },
      })
      .handler(answer);

  it('answers OPTIONS before the handler', async () => {
    let called = false;
    const res = await handler(async () => {
      called = true;
      return { statusCode: 405, body: '' };
    })(event('OPTIONS'), {} as never);
    expect(res.statusCode).toBe(204);
    expect(called).toBe(false);
  });

  it('adds the CORS headers to answers and to mapped errors, keeping their own', async () => {
    const ok = await handler(async () => ({
      statusCode: 200,
      headers: { 'X-Total-Count': '3' },
      body: '[]',
    }))(event('GET'), {} as never);
    expect(ok.headers).toEqual({ ...CORS_HEADERS, 'X-Total-Count': '3' });
    const failed = await handler(async () => {
      throw new Error('boom');
    })(event('GET'), {} as never);
    expect(failed.headers).toEqual({ ...CORS_HEADERS, 'Content-Type': 'application/json' });
  });
});
