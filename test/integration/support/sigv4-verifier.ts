/**
 * A stand-in for API Gateway's IAM authorization in front of an API: each request's SigV4 signature is
 * recomputed from the request as received, with the secret of the key it names, and compared; a request
 * that fails is answered 403 as API Gateway answers it and goes no further.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../../../agent/sigv4.ts';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  verdict: 'ok' | string;
}

const fromAmzDate = (d: string) =>
  new Date(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`,
  );

/** Why this request's signature is not valid for these keys, or 'ok'. */
export async function checkSignature(
  r: Omit<Received, 'verdict'>,
  keys: Record<string, string>,
  region: string,
): Promise<string> {
  const auth = r.headers.authorization;
  if (!auth) return 'Missing Authentication Token';
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]+)$/.exec(
      auth,
    );
  if (!m) return 'Authorization header malformed';
  const [, keyId, , keyRegion, service, signedNames] = m;
  const secret = keys[keyId!];
  if (secret === undefined) return 'The security token included in the request is invalid.';
  if (keyRegion !== region || service !== 'execute-api')
    return 'Credential should be scoped to a valid region/service';
  const amzDate = String(r.headers['x-amz-date'] ?? '');
  const at = fromAmzDate(amzDate);
  if (Number.isNaN(at.getTime()) || Math.abs(Date.now() - at.getTime()) > 5 * 60_000)
    return 'Signature expired';
  const headers: Record<string, string> = {};
  for (const name of signedNames!.split(';')) headers[name] = String(r.headers[name] ?? '');
  const url = new URL(r.url, 'http://placeholder');
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: { accessKeyId: keyId!, secretAccessKey: secret },
    sha256: Sha256,
  });
  const expected = await signer.sign(
    {
      method: r.method,
      protocol: 'http:',
      hostname: String(r.headers.host).split(':')[0]!,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: r.body || undefined,
    },
    { signingDate: at },
  );
  return auth === expected.headers.authorization
    ? 'ok'
    : 'The request signature we calculated does not match the signature you provided.';
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
      const verdict = await checkSignature(r, options.keys, options.region);
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
