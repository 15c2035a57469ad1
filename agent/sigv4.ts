/**
 * SigV4-signed requests to the deployed API: API Gateway takes IAM-signed calls by default
 * (infra/lib/api.ts), signed for the service `execute-api` with the caller's usual AWS credentials
 * (environment, profile, SSO, instance role: the SDK's default chain).
 */
import { createHash, createHmac } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Env } from '../shared/aws/clients.ts';
import { agentEnv } from './config.ts';

/** SHA-256, or HMAC-SHA-256 with a secret: the hash interface the signer takes. */
type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data) =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? new Uint8Array(d)
      : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

export class Sha256 {
  private readonly hash;
  constructor(secret?: Data) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Data): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/** `abc123.execute-api.eu-west-1.amazonaws.com` → eu-west-1; else the environment's region. */
export function regionOf(url: URL, env: Env = agentEnv()): string {
  const m = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname);
  const region = m?.[1] ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error(`no AWS region for ${url.host}: set AWS_REGION`);
  return region;
}

/** API Gateway hosts want signed calls; anything else (the local stack) only with --iam. */
export function wantsSigning(url: URL, forced: boolean): boolean {
  return forced || /\.execute-api\.[a-z0-9-]+\.amazonaws\.com$/.test(url.hostname);
}

/**
 * The headers to send for this request, `authorization` and `x-amz-date` included. `credentials`: the SDK's
 * default chain unless given (`cronplane ui` passes one memoized provider for all its requests).
 */
export async function signedHeaders(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  credentials: ReturnType<typeof defaultProvider> = defaultProvider(),
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: 'execute-api',
    region: regionOf(url),
    credentials,
    sha256: Sha256,
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query,
    headers: { ...headers, host: url.host },
    body,
  });
  const out: Record<string, string> = {};
  // fetch sets Host itself, from the URL.
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') out[k] = String(v);
  return out;
}
