/**
 * API Gateway's IAM authorization, for the local stack run with IAM auth on: a request's SigV4 signature
 * is recomputed from the request as received (method, path, query, the headers it says it signed, the
 * body), with the secret of the key it names, and compared. The answers are API Gateway's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../agent/sigv4.ts';

export interface SignedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string | Uint8Array;
}

export interface IamAuth {
  /** Access key id → secret access key. */
  keys: Readonly<Record<string, string>>;
  region: string;
}

/** How far a request's date may be from now (API Gateway: 5 minutes). */
const MAX_SKEW_MS = 5 * 60_000;

const fromAmzDate = (d: string) =>
  new Date(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`,
  );

/** Why this request's signature is not valid for these keys, or 'ok'. */
export async function checkSignature(r: SignedRequest, { keys, region }: IamAuth): Promise<string> {
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
  if (Number.isNaN(at.getTime()) || Math.abs(Date.now() - at.getTime()) > MAX_SKEW_MS)
    return 'Signature expired';
  const names = signedNames!.split(';');
  if (!names.includes('host')) return "'Host' must be a signed header";
  // The signer may send the body's hash as a header, which the signature then covers instead of the body:
  // it must be the hash of the body that came, or a body changed on the way would pass.
  const claimed = r.headers['x-amz-content-sha256'];
  if (claimed !== undefined && claimed !== createHash('sha256').update(r.body).digest('hex')) {
    return 'The request signature we calculated does not match the signature you provided.';
  }
  const headers: Record<string, string> = {};
  for (const name of names) headers[name] = String(r.headers[name] ?? '');
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
      body: r.body.length ? r.body : undefined,
    },
    { signingDate: at },
  );
  const want = Buffer.from(String(expected.headers.authorization));
  const got = Buffer.from(auth);
  return want.length === got.length && timingSafeEqual(want, got)
    ? 'ok'
    : 'The request signature we calculated does not match the signature you provided.';
}
