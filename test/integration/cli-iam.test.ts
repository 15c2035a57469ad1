/**
 * The CLI against an API that takes IAM-signed calls (the deployed stack's default): with `--iam`, or by
 * itself for an API Gateway URL, it signs each request with SigV4 for `execute-api`. A local server stands
 * in for API Gateway and checks each signature the way API Gateway does: recomputed from the request it
 * received, with the caller's key.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionOf, wantsSigning } from '../../agent/sigv4.ts';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { checkSignature } from '../../local/sigv4-verify.ts';

const run = promisify(execFile);
const KEY = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> =
  [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += String(d);
    });
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(body || '[]');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`;
});
afterAll(() => {
  server.close();
});

const cli = (...args: string[]) =>
  run('node', [join(REPO_ROOT, 'bin', 'cronplane.js'), '--api', base, ...args], {
    cwd: REPO_ROOT,
    // Only these credentials: no profile or SSO of the machine running the tests.
    env: {
      PATH: process.env.PATH,
      HOME: mkdtempSync(join(tmpdir(), 'home-')),
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: KEY.accessKeyId,
      AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey,
    },
  });

/** API Gateway's check (local/sigv4-verify.ts): the signature recomputed from the request as received. */
async function verify(r: (typeof received)[number]): Promise<string> {
  const keys = { [KEY.accessKeyId]: KEY.secretAccessKey };
  expect(await checkSignature(r, { keys, region: 'eu-west-1' })).toBe('ok');
  // A body other than the one signed is refused.
  if (r.body)
    expect(await checkSignature({ ...r, body: `${r.body} ` }, { keys, region: 'eu-west-1' })).not.toBe('ok');
  return String(r.headers.authorization);
}

describe('CLI with IAM auth', () => {
  it('signs a GET and a POST with a body for execute-api in the region, as API Gateway verifies', async () => {
    received.length = 0;
    await cli('--iam', 'jobs', 'ls');
    const file = join(mkdtempSync(join(tmpdir(), 'job-')), 'job.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'signed', schedule: '@daily', executor_config: { command: 'true' } }),
    );
    await cli('--iam', 'jobs', 'apply', '-f', file);

    expect(received.map((r) => [r.method, r.url])).toEqual([
      ['GET', '/prod/v1/jobs'],
      ['POST', '/prod/v1/jobs'],
    ]);
    for (const r of received) {
      const auth = await verify(r);
      expect(auth).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, /,
      );
    }
    // The body is part of what is signed.
    expect(/SignedHeaders=([^,]+)/.exec(String(received[1]!.headers.authorization))![1]).toContain(
      'content-type',
    );
    expect(JSON.parse(received[1]!.body)).toMatchObject({ name: 'signed' });
  });

  it('sends nothing signed to a URL that is not API Gateway unless asked (the local stack)', async () => {
    received.length = 0;
    await cli('jobs', 'ls');
    expect(received).toHaveLength(1);
    expect(received[0]!.headers.authorization).toBeUndefined();
  });

  it('signs by itself for an API Gateway URL, in that URL’s region', () => {
    const url = new URL('https://abc123.execute-api.ap-southeast-2.amazonaws.com/prod/v1/jobs');
    expect(wantsSigning(url, false)).toBe(true);
    expect(regionOf(url, {})).toBe('ap-southeast-2');
    expect(wantsSigning(new URL('http://127.0.0.1:8080/v1/jobs'), false)).toBe(false);
    expect(() => regionOf(new URL('http://127.0.0.1:8080/'), {})).toThrow(/AWS_REGION/);
  });
});
