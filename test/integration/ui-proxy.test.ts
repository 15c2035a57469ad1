/**
 * `cronplane ui --api <ApiUrl>` against an API that takes only IAM-signed calls, end to end in Chromium:
 * the CLI's proxy serves the UI on 127.0.0.1 and signs each of its API calls with the user's AWS key; a
 * stand-in for API Gateway verifies every signature before the real local stack sees the request. The
 * browser never holds a key. With a wrong key the verifier refuses, and the UI shows it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { launchChromium, screenshot } from './support/browser.ts';
import { startVerifyingFront } from './support/sigv4-verifier.ts';
import { startTestStack, type TestStack } from './support/stack.ts';

const KEY = { id: 'AKIDEXAMPLE', secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
let stack: TestStack;
type Front = Awaited<ReturnType<typeof startVerifyingFront>>;
/** One verifying front per proxy, so that what each records is its own proxy's calls only (a page of one
 * test refreshing by itself cannot land in the next test's count). */
let front: Front;
let wrongKeyFront: Front;
let browser: Browser;
const children: ChildProcess[] = [];

/** Starts `cronplane ui` with only this key in its environment; resolves with the URL it prints. */
async function startProxy(to: Front, secret: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'cronplane.js'), '--api', `${to.url}/prod`, 'ui', '--port', '0'],
    {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: mkdtempSync(join(tmpdir(), 'home-')),
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: KEY.id,
        AWS_SECRET_ACCESS_KEY: secret,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /Cronplane UI: (http:\/\/127\.0\.0\.1:\d+)\/ui\//.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`cronplane ui exited ${code}: ${out}`)));
  });
}

/** A raw request, so that Host, Origin and Sec-Fetch-Site can be anything a hostile page could make them. */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves once the front has received nothing for half a second: a call the page had in flight when it
 * left may still be on its way through the proxy. */
async function quiet(f: Front): Promise<void> {
  for (let seen = -1; seen !== f.received.length; ) {
    seen = f.received.length;
    await new Promise((r) => setTimeout(r, 500));
  }
}

let proxyUrl: string;
let wrongKeyUrl: string;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  stack = await startTestStack({ agents: [] });
  const verifying = { upstream: stack.url, keys: { [KEY.id]: KEY.secret }, region: 'eu-west-1' };
  [front, wrongKeyFront] = await Promise.all([
    startVerifyingFront(verifying),
    startVerifyingFront(verifying),
  ]);
  [proxyUrl, wrongKeyUrl, browser] = await Promise.all([
    startProxy(front, KEY.secret),
    startProxy(wrongKeyFront, 'not-the-secret-of-AKIDEXAMPLE'),
    launchChromium(),
  ]);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await browser?.close();
  await front?.close();
  await wrongKeyFront?.close();
  await stack?.stop();
});

describe('cronplane ui: the UI against an IAM-authenticated API', () => {
  it('refuses unsigned calls at the verifier: without the proxy the API is closed', async () => {
    const res = await fetch(`${front.url}/prod/v1/jobs`);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ message: 'Missing Authentication Token' });
  });

  it('shows the job list and creates a job through the signing proxy', async () => {
    expect(proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await stack.api('POST', '/v1/jobs', {
      name: 'existing',
      schedule: '@daily',
      executor_config: { command: 'true' },
    });
    front.received.length = 0;

    await page.goto(`${proxyUrl}/`);
    expect(page.url()).toBe(`${proxyUrl}/ui/`);
    const existing = page.locator('tbody tr', { has: page.getByRole('link', { name: 'existing' }) });
    await existing.waitFor();
    expect(await existing.locator('code').textContent()).toBe('@daily');
    await screenshot(page, 'proxy-job-list');

    await page.getByRole('link', { name: 'New job' }).first().click();
    await page.getByLabel('Name', { exact: true }).fill('signed-job');
    await page.getByLabel('Schedule', { exact: true }).fill('@every 1h');
    await page.locator('.preview li').nth(4).waitFor();
    await page.getByLabel('Executor config value').first().fill('echo signed');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/signed-job$/);
    await page.getByRole('heading', { name: 'signed-job' }).waitFor();
    await screenshot(page, 'proxy-created-job');

    const stored = await stack.api('GET', '/v1/jobs/signed-job');
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ schedule: '@every 1h', executor_config: { command: 'echo signed' } });

    // Every call reached the API signed with the user's key, checked as API Gateway checks it…
    const calls = front.received.map((r) => `${r.method} ${r.url.split('?')[0]}`);
    expect(calls).toEqual(
      expect.arrayContaining(['GET /prod/v1/jobs', 'POST /prod/v1/jobs', 'GET /prod/v1/schedule/preview']),
    );
    for (const r of front.received) {
      expect(r.verdict).toBe('ok');
      expect(String(r.headers.authorization)).toMatch(
        /Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\//,
      );
      // …and nothing of the browser's went along.
      expect(r.headers.origin).toBeUndefined();
      expect(r.headers.cookie).toBeUndefined();
      expect(r.headers['sec-fetch-site']).toBeUndefined();
    }
    expect(pageErrors).toEqual([]);
  });

  it('with a wrong key, the verifier refuses every call and the UI shows the refusal', async () => {
    const other = await browser.newPage();
    await other.goto(`${wrongKeyUrl}/ui/#/jobs`);
    const alert = other.locator('.results [role=alert]');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('403');
    expect(await alert.textContent()).toContain('signature we calculated does not match');
    await screenshot(other, 'proxy-wrong-key');
    await other.close();
    expect(wrongKeyFront.received.length).toBeGreaterThan(0);
    for (const r of wrongKeyFront.received)
      expect(r.verdict).toMatch(/signature we calculated does not match/);
  });

  it('answers only its own loopback Host (DNS rebinding) and writes only from its own origin (CSRF)', async () => {
    // The UI page of the tests above refreshes by itself: off it goes, so only these requests count.
    await page.goto('about:blank');
    await quiet(front);
    const host = new URL(proxyUrl).host;
    front.received.length = 0;
    const job = JSON.stringify({ name: 'csrf', schedule: '@daily', executor_config: { command: 'true' } });
    const json = { 'content-type': 'application/json' };

    const rebound = await raw(`${proxyUrl}/v1/jobs`, 'GET', {
      host: `evil.example:${new URL(proxyUrl).port}`,
    });
    expect(rebound.status).toBe(403);
    const rebindUi = await raw(`${proxyUrl}/ui/`, 'GET', { host: 'evil.example' });
    expect(rebindUi.status).toBe(403);

    const crossSite = await raw(
      `${proxyUrl}/v1/jobs`,
      'POST',
      { ...json, host, origin: 'http://evil.example' },
      job,
    );
    expect(crossSite.status).toBe(403);
    const noOrigin = await raw(`${proxyUrl}/v1/jobs`, 'POST', { ...json, host }, job);
    expect(noOrigin.status).toBe(403);
    const crossSiteGet = await raw(`${proxyUrl}/v1/jobs`, 'GET', { host, 'sec-fetch-site': 'cross-site' });
    expect(crossSiteGet.status).toBe(403);
    const preflight = await raw(`${proxyUrl}/v1/jobs`, 'OPTIONS', { host, origin: 'http://evil.example' });
    expect(preflight.status).toBe(403);
    // Nothing refused was signed or sent on.
    expect(front.received).toEqual([]);
    expect((await stack.api('GET', '/v1/jobs/csrf')).status).toBe(404);

    // Its own page's read goes through, without the API's `Access-Control-Allow-Origin: *`.
    const own = await raw(`${proxyUrl}/v1/jobs?q=existing`, 'GET', { host, 'sec-fetch-site': 'same-origin' });
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body).map((j: { name: string }) => j.name)).toEqual(['existing']);
    expect(own.headers['access-control-allow-origin']).toBeUndefined();
    expect(own.headers['x-total-count']).toBe('1');
    // (which the API does send: the proxy drops it)
    expect((await fetch(`${stack.url}/v1/jobs`)).headers.get('access-control-allow-origin')).toBe('*');
  });
});
