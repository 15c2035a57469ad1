/**
 * A small Node HTTP server that turns requests into API Gateway proxy events and hands them to the very
 * same API handler the Lambda runs. Also serves the web UI under /ui (agent/ui-assets.ts).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context as LambdaContext } from 'aws-lambda';
import { serveUi } from '../agent/ui-assets.ts';
import { CORS_HEADERS } from '../functions/api/cors.ts';
import { PROMETHEUS_CONTENT_TYPE, type PrometheusRegistry } from '../shared/metrics/prometheus.ts';
import { checkSignature, type IamAuth } from './sigv4-verify.ts';

type ProxyHandler = (event: APIGatewayProxyEvent, context: LambdaContext) => Promise<APIGatewayProxyResult>;

/** API Gateway's own limit on a request body; past it API Gateway answers 413 without calling the function. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Media types API Gateway delivers base64-encoded (`isBase64Encoded: true`), byte for byte: the deployed
 * REST API's `binaryMediaTypes` (infra/lib/api.ts). Every other body arrives as UTF-8 text.
 */
export const BINARY_MEDIA_TYPES = ['multipart/form-data'];

function isBinary(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return BINARY_MEDIA_TYPES.includes(type);
}

export function toProxyEvent(req: IncomingMessage, raw: Buffer | string): APIGatewayProxyEvent {
  const binary = typeof raw !== 'string' && isBinary(req.headers['content-type']);
  const body = typeof raw === 'string' ? raw : raw.toString(binary ? 'base64' : 'utf8');
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const query: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    query[k] = v;
    multi[k] = [...(multi[k] ?? []), v];
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
  return {
    httpMethod: req.method ?? 'GET',
    path: url.pathname,
    resource: '/{proxy+}',
    headers,
    multiValueHeaders: {},
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: Object.keys(multi).length ? multi : null,
    pathParameters: { proxy: url.pathname.slice(1) },
    stageVariables: null,
    body: body === '' ? null : body,
    isBase64Encoded: binary,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
  };
}

export async function startHttpServer(options: {
  handler: ProxyHandler;
  port: number;
  host?: string;
  uiDir?: string;
  /** Take only SigV4-signed calls, checked as API Gateway's IAM authorization checks them. */
  iamAuth?: IamAuth;
  /**
   * `GET /metrics` in Prometheus text, as Dkron serves it (local only: see shared/metrics/metrics.ts).
   * Unsigned even with `iamAuth`, as a scraper calls it; it tells counts and times, nothing of the jobs.
   */
  metrics?: PrometheusRegistry;
}): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer(async (req, res) => {
    try {
      const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      if (options.metrics && path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
        res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(options.metrics.render());
        return;
      }
      if (options.uiDir && (await serveUi(path, res, options.uiDir))) return;
      const raw = await readBody(req);
      if (options.iamAuth) {
        const verdict = await checkSignature(
          { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: raw },
          options.iamAuth,
        );
        if (verdict !== 'ok') {
          // API Gateway's answer, CORS headers and all (its default 4XX gateway response has none; ours
          // keeps them so that a browser shows the 403 instead of a CORS failure).
          res
            .writeHead(403, { ...CORS_HEADERS, 'Content-Type': 'application/json' })
            .end(JSON.stringify({ message: verdict }));
          return;
        }
      }
      const event = toProxyEvent(req, raw);
      const out = await options.handler(event, { awsRequestId: `local-${Date.now()}` } as LambdaContext);
      res.writeHead(out.statusCode, out.headers as Record<string, string>).end(out.body);
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        res
          .writeHead(413, { ...CORS_HEADERS, 'Content-Type': 'application/json', Connection: 'close' })
          .end(JSON.stringify({ error: `body: must be at most ${MAX_BODY_BYTES} bytes`, field: 'body' }));
        return;
      }
      console.error(error);
      res
        .writeHead(500, { ...CORS_HEADERS, 'Content-Type': 'application/json' })
        .end('{"error":"internal error"}');
    }
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
