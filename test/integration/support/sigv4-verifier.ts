/**
 * A stand-in for API Gateway's IAM authorization in front of an API (local/sigv4-verify.ts): a request
 * whose signature fails is answered 403 as API Gateway answers it and goes no further.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkSignature } from '../../../local/sigv4-verify.ts';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  verdict: 'ok' | string;
}

/**
 * Serves `<url>/prod/...`: a verified request goes on to `upstream` (the local stack) without the stage,
 * as API Gateway's proxy integration passes it; its answer comes back with the API's CORS headers.
 */
export async function startVerifyingFront(options: {
  upstream: string;
  keys: Record<string, string>;
  region: string;
}): Promise<{ url: string; received: Received[]; server: Server; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const r = {
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      const verdict = await checkSignature(r, options);
      received.push({ ...r, verdict });
      if (verdict !== 'ok') {
        res.writeHead(403, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: verdict }));
        return;
      }
      const answer = await fetch(`${options.upstream}${req.url!.replace(/^\/prod/, '')}`, {
        method: r.method,
        headers: req.headers['content-type'] ? { 'content-type': req.headers['content-type'] } : {},
        body: r.body || undefined,
      });
      const headers: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') headers[k] = v;
      });
      res.writeHead(answer.status, headers).end(await answer.text());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
