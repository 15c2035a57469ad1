/**
 * The local stack's API with IAM auth on (`CRONPLANE_IAM_AUTH=1 npm start`): only SigV4-signed calls with
 * the accepted key reach the handler, checked as API Gateway checks them; `cronplane ui`'s proxy and the
 * CLI's signer get through.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../agent/sigv4.ts';
import { startUiProxy, type UiProxy } from '../../agent/ui-proxy.ts';
import { startHttpServer } from '../../local/http-server.ts';

const KEY = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret-key' };
const REGION = 'eu-west-1';
const seen: APIGatewayProxyEvent[] = [];
let api: Awaited<ReturnType<typeof startHttpServer>>;
let proxy: UiProxy;
let savedRegion: string | undefined;

beforeAll(async () => {
  savedRegion = process.env.AWS_REGION;
  process.env.AWS_REGION = REGION;
  api = await startHttpServer({
    port: 0,
    iamAuth: { keys: { [KEY.accessKeyId]: KEY.secretAccessKey }, region: REGION },
    handler: async (event) => {
      seen.push(event);
      return { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: event.body ?? '[]' };
    },
  });
  proxy = await startUiProxy({ api: api.url, port: 0, credentials: async () => KEY });
});

afterAll(async () => {
  await proxy?.close();
  await api?.close();
  if (savedRegion === undefined) delete process.env.AWS_REGION;
  else process.env.AWS_REGION = savedRegion;
});

const sign = (url: URL, method: string, body: string | undefined, key = KEY) =>
  signedHeaders(url, method, { 'content-type': 'application/json' }, body, async () => key);

describe('local API with IAM auth', () => {
  it('refuses unsigned calls, a wrong secret, an unknown key and a body changed after signing', async () => {
    seen.length = 0;
    const url = new URL(`${api.url}/v1/jobs?q=a%20b`);
    const unsigned = await fetch(url);
    expect(unsigned.status).toBe(403);
    expect(await unsigned.json()).toEqual({ message: 'Missing Authentication Token' });

    const wrong = await fetch(url, {
      headers: await sign(url, 'GET', undefined, { ...KEY, secretAccessKey: 'x' }),
    });
    expect(wrong.status).toBe(403);
    expect((await wrong.json()).message).toMatch(/signature we calculated does not match/);

    const unknown = await fetch(url, {
      headers: await sign(url, 'GET', undefined, { accessKeyId: 'AKIDOTHER', secretAccessKey: 'x' }),
    });
    expect((await unknown.json()).message).toMatch(/security token included in the request is invalid/);

    const post = new URL(`${api.url}/v1/jobs`);
    const headers = await sign(post, 'POST', '{"name":"a"}');
    const tampered = await fetch(post, { method: 'POST', headers, body: '{"name":"b"}' });
    expect(tampered.status).toBe(403);
    expect(seen).toEqual([]);
  });

  it('lets signed calls through, query and body included', async () => {
    const url = new URL(`${api.url}/v1/jobs?q=a%20b&metadata%5Bteam%5D=x`);
    const ok = await fetch(url, { headers: await sign(url, 'GET', undefined) });
    expect(ok.status).toBe(200);
    const post = new URL(`${api.url}/v1/jobs`);
    const body = JSON.stringify({ name: 'signed', schedule: '@daily' });
    const created = await fetch(post, { method: 'POST', headers: await sign(post, 'POST', body), body });
    expect(await created.json()).toEqual({ name: 'signed', schedule: '@daily' });
  });

  it('is reachable through cronplane ui, which signs for the browser', async () => {
    seen.length = 0;
    const host = new URL(proxy.url).host;
    const list = await fetch(`${proxy.url}/v1/jobs?q=x+y&_sort=name`, {
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    expect(list.status).toBe(200);
    const body = JSON.stringify({ name: 'via-proxy' });
    const created = await fetch(`${proxy.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://${host}` },
      body,
    });
    expect(created.status).toBe(200);
    expect(seen.map((e) => [e.httpMethod, e.path, e.queryStringParameters, e.body])).toEqual([
      ['GET', '/v1/jobs', { q: 'x y', _sort: 'name' }, null],
      ['POST', '/v1/jobs', null, body],
    ]);
  });
});
