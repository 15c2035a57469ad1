/** A 500's cause goes to the handler's logger (the Powertools Logger on Lambda), never to the client. */
import type { APIGatewayProxyEvent, Context as LambdaContext } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../functions/api/app.ts';
import type { Context } from '../../../shared/context.ts';

describe('the API handler', () => {
  it('hands the cause of a 500 to logError and answers "internal error"', async () => {
    const defect = new TypeError('the store is a proxy that throws');
    const ctx = new Proxy({} as Context, {
      get() {
        throw defect;
      },
    });
    const logged: unknown[] = [];
    const handler = createApiHandler(ctx, { logError: (error) => logged.push(error) });
    const event = {
      httpMethod: 'GET',
      path: '/v1/jobs',
      headers: { accept: 'application/json' },
      queryStringParameters: null,
      body: null,
      isBase64Encoded: false,
      requestContext: {},
    } as unknown as APIGatewayProxyEvent;
    const res = await handler(event, { awsRequestId: 'r' } as LambdaContext);
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body)).toEqual({ error: 'internal error' });
    expect(logged).toEqual([defect]);
  });
});
