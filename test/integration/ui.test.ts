/**
 * The web UI as the local stack serves it: `/` redirects to `/ui/`, the page loads its module script and
 * stylesheet from the same origin (no external URLs), and the script is valid JavaScript, bundled from the
 * TypeScript in web/src when missing or older than its source.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { useTestStack } from './support/stack.ts';

const run = promisify(execFile);
const stack = useTestStack({ agents: [] });

describe('web UI', () => {
  it('redirects / to /ui/', async () => {
    const res = await fetch(`${stack.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/ui/');
  });

  it('serves the page with its module script and stylesheet, all from the same origin', async () => {
    const res = await fetch(`${stack.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<script type="module" src="\/ui\/app\.js"><\/script>/);
    expect(html).toContain('href="/ui/style.css"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);

    const css = await fetch(`${stack.url}/ui/style.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('serves app.js as JavaScript that parses, talks only to the same-origin API and never uses innerHTML', async () => {
    const res = await fetch(`${stack.url}/ui/app.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    const js = await res.text();
    expect(js).toMatch(/["']\/v1\/jobs["']/);
    // The one URL in it is SVG's namespace name, which is never fetched.
    expect(js.replaceAll(/["']http:\/\/www\.w3\.org\/2000\/svg["']/g, '')).not.toMatch(/https?:\/\//);
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    // .js under a "type": "module" package.json: node checks it as an ES module.
    await expect(
      run(process.execPath, ['--check', join(REPO_ROOT, 'web', 'dist', 'app.js')]),
    ).resolves.toBeDefined();
  });

  it('serves the page for unknown paths under /ui/ (the app routes by hash)', async () => {
    const res = await fetch(`${stack.url}/ui/jobs/whatever`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('/ui/app.js');
  });

  it('the API calls the UI makes answer as the UI expects', async () => {
    expect((await stack.api('GET', '/v1/pause')).body).toEqual({ paused: false });
    expect((await stack.api('GET', '/v1/members')).status).toBe(200);
    const leader = await stack.api('GET', '/v1/leader');
    expect([200, 404]).toContain(leader.status);
    const preview = await stack.api('GET', '/v1/schedule/preview?schedule=%40every%205s&timezone=&count=5');
    expect(preview.status).toBe(200);
    expect(preview.body.times).toHaveLength(5);
    const bad = await stack.api('GET', '/v1/schedule/preview?schedule=nope&timezone=&count=5');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual(expect.any(String));
  });
});
