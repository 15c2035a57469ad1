/**
 * `cronplane ui --api <ApiUrl>`: the web UI for an API that takes IAM-signed calls (the deployed stack),
 * the `kubectl proxy` model. A server on 127.0.0.1 serves the UI and forwards its /v1 and /health calls to
 * the API, signing each with SigV4 for `execute-api` with the user's own AWS credentials (the SDK's default
 * chain: environment, profile, SSO, instance role). The browser never sees a credential; the proxy is only
 * as strong as who can reach it, hence:
 *   - it listens on 127.0.0.1 only;
 *   - it answers only requests whose Host is its own loopback address (a DNS-rebinding page from another
 *     site reaches 127.0.0.1 under its own host name, and is refused);
 *   - a write (anything but GET/HEAD) must come from the UI's own origin: `Origin` equal to the proxy's, or
 *     `Sec-Fetch-Site: same-origin`. A form or fetch from another site is refused before anything is
 *     signed (CSRF). No request is signed for a cross-site `Sec-Fetch-Site` either;
 *   - it never sends CORS headers (the API's `Access-Control-Allow-Origin: *` is dropped), so no other
 *     origin can read an answer, and answers preflights with 403.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { regionOf, signedHeaders } from './sigv4.ts';
import { serveUi } from './ui-assets.ts';

/** Request headers passed on to the API; everything else (cookies, Origin, Referer…) stays here. */
const FORWARD_REQUEST = ['content-type', 'accept'];
/** Answer headers passed back to the browser; the API's CORS headers are not among them. */
const FORWARD_RESPONSE = ['content-type', 'x-total-count', 'location', 'x-cronplane-group'];
const MAX_BODY = 10 * 1024 * 1024;

export interface UiProxyOptions {
  /** The API's base URL, stage included: https://abc.execute-api.eu-west-1.amazonaws.com/prod */
  api: string;
  port?: number;
  /** Where the built UI goes (tests); web/dist by default. */
  uiDir?: string;
  credentials?: ReturnType<typeof defaultProvider>;
  log?: (line: string) => void;
}

export interface UiProxy {
  url: string;
  server: Server;
  close: () => Promise<void>;
}

/** RFC 3986 encoding, as SigV4 canonicalizes: what is sent is exactly what was signed (`+`, `[`, `]`…). */
const rfc3986 = (v: string) =>
  encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function refuse(res: ServerResponse, status: number, error: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error }));
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new RangeError('body too large');
    chunks.push(c as Buffer);
  }
  return size ? Buffer.concat(chunks) : undefined;
}

/** Why this request may not be forwarded, or undefined when it may. Exported for unit tests. */
export function refusal(
  method: string,
  headers: IncomingMessage['headers'],
  allowedHosts: ReadonlySet<string>,
): string | undefined {
  const host = (headers.host ?? '').toLowerCase();
  if (!allowedHosts.has(host)) return `host ${host || '(none)'} is not this proxy (DNS rebinding?)`;
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return 'cross-site request refused';
  if (method === 'GET' || method === 'HEAD') return undefined;
  const origin = headers.origin;
  if (origin !== undefined) {
    return allowedHosts.has(origin.replace(/^http:\/\//, '').toLowerCase()) && origin.startsWith('http://')
      ? undefined
      : `origin ${origin} refused: writes only from the UI's own page`;
  }
  return site === 'same-origin' ? undefined : 'a write needs the Origin of the UI (CSRF protection)';
}

export async function startUiProxy(options: UiProxyOptions): Promise<UiProxy> {
  const base = new URL(options.api.replace(/\/+$/, ''));
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new Error(`--api: not an http(s) URL`);
  regionOf(base); // fails now, not at the first request, when no region is known
  const credentials = options.credentials ?? defaultProvider();
  const allowedHosts = new Set<string>();

  const server = createServer(async (req, res) => {
    try {
      const method = req.method ?? 'GET';
      const why = refusal(method, req.headers, allowedHosts);
      if (why) return refuse(res, 403, why);
      const incoming = new URL(req.url ?? '/', 'http://proxy.invalid');
      const path = incoming.pathname;
      if (method === 'OPTIONS') return refuse(res, 403, 'no cross-origin access');
      if (path !== '/health' && path !== '/v1' && !path.startsWith('/v1/')) {
        if (method === 'GET' && (await serveUi(path, res, options.uiDir))) return;
        return refuse(res, 404, 'not found');
      }
      const body = await readBody(req);
      const query = [...incoming.searchParams].map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
      const target = new URL(`${base.href.replace(/\/$/, '')}${path}${query ? `?${query}` : ''}`);
      const headers: Record<string, string> = {};
      for (const name of FORWARD_REQUEST) {
        const v = req.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
      const signed = await signedHeaders(target, method, headers, body, credentials);
      const answer = await fetch(target, {
        method,
        headers: signed,
        body: body && new Uint8Array(body),
        redirect: 'manual',
        // API Gateway gives up on an integration after 29 s.
        signal: AbortSignal.timeout(35_000),
      });
      const out: Record<string, string> = { 'Cache-Control': 'no-store' };
      for (const name of FORWARD_RESPONSE) {
        const v = answer.headers.get(name);
        if (v !== null) out[name] = v;
      }
      res.writeHead(answer.status, out).end(Buffer.from(await answer.arrayBuffer()));
      options.log?.(`${method} ${path} → ${answer.status}`);
    } catch (error) {
      // fetch's own message is "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND, a timeout).
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = [(error as Error).message, cause?.code ?? cause?.message].filter(Boolean).join(': ');
      options.log?.(`proxy error: ${why}`);
      if (!res.headersSent) refuse(res, 502, `proxy: ${why}`);
      else res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8001, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  for (const h of [`127.0.0.1:${port}`, `localhost:${port}`]) allowedHosts.add(h);
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
