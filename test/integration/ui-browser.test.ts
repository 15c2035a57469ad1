/**
 * The web UI in a real browser (Debian's Chromium, driven by Playwright) against the local stack: create a
 * job from the form with its live preview, see a bad one refused with the field named and nothing stored,
 * run it and read its output, toggle, pause, members, delete — and API values shown as text, never as HTML.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot } from './support/browser.ts';
import { startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  stack = await startTestStack({ agents: [{ agentId: 'ui-agent' }] });
  browser = await launchChromium();
  page = await browser.newPage();
  page.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const errors: string[] = [];

describe('web UI in a browser', () => {
  it('loads the jobs list with no script errors', async () => {
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${stack.url}/`);
    expect(page.url()).toBe(`${stack.url}/ui/`);
    await page.locator('h1', { hasText: 'Jobs' }).waitFor();
    await page.getByText('No jobs yet.').waitFor();
    await page.locator('#pause-state', { hasText: 'running' }).waitFor();
    expect(errors).toEqual([]);
  });

  it('creates a job from the form: live preview, a refused name, then the job page', async () => {
    await page.getByRole('link', { name: 'New job' }).first().click();
    const textarea = page.getByLabel('Job JSON');
    // The example job's next five fire times.
    await page.locator('.preview li').nth(4).waitFor();
    expect(await page.locator('.preview li').count()).toBe(5);

    await textarea.fill(
      JSON.stringify({ name: 'Bad Name', schedule: '@manually', executor_config: { command: 'true' } }),
    );
    await page.getByText('Never fires.').waitFor();
    await page.getByRole('button', { name: 'Create job' }).click();
    const alert = page.locator('.result [role=alert]');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/^400: name: .*field: name/);
    expect((await stack.api('GET', '/v1/jobs')).body).toEqual([]);

    await textarea.fill(
      JSON.stringify({
        name: 'ui-job',
        displayname: '<img src=x id=injected onerror="document.title=1">',
        schedule: '@manually',
        executor_config: { command: 'echo from-ui' },
      }),
    );
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/ui-job$/);
    // The display name from the API is text on the page, not markup.
    await page.getByRole('heading', { name: '<img src=x id=injected onerror="document.title=1">' }).waitFor();
    expect(await page.locator('#injected').count()).toBe(0);
    expect((await stack.api('GET', '/v1/jobs/ui-job')).status).toBe(200);
  });

  it('runs the job and shows the execution with its output', async () => {
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.locator('#flash', { hasText: 'Run ui-job: done' }).waitFor();
    const row = page.locator('tbody tr', { has: page.locator('.badge', { hasText: 'succeeded' }) });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('td').nth(6).textContent()).toBe('ui-agent');
    await row.locator('summary').click();
    expect(await row.locator('pre').textContent()).toBe('from-ui\n');
  });

  it('toggles the job from the list', async () => {
    await page.getByRole('link', { name: '← Jobs' }).click();
    const row = page.locator('tbody tr', { has: page.getByRole('link', { name: 'ui-job' }) });
    await row.getByRole('button', { name: 'Toggle' }).click();
    await page.locator('tr.disabled', { has: page.getByRole('link', { name: 'ui-job' }) }).waitFor();
    expect((await stack.api('GET', '/v1/jobs/ui-job')).body.disabled).toBe(true);
  });

  it('pauses and unpauses the scheduler from the header', async () => {
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('#pause-state', { hasText: 'paused' }).waitFor();
    expect((await stack.api('GET', '/v1/pause')).body).toEqual({ paused: true });
    await page.getByRole('button', { name: 'Unpause' }).click();
    await page.locator('#pause-state', { hasText: 'running' }).waitFor();
    expect((await stack.api('GET', '/v1/pause')).body).toEqual({ paused: false });
  });

  it('lists the agent among the members', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    const row = page.locator('tbody tr', { hasText: 'ui-agent' });
    await row.waitFor();
    expect(await row.locator('.badge').textContent()).toBe('alive');
    // Running and capacity, as the agent reports them.
    expect(await row.locator('td').nth(4).textContent()).toBe('4');
    await screenshot(page, 'members');
  });

  it('deletes the job after the confirmation', async () => {
    await page.goto(`${stack.url}/ui/#/jobs/ui-job`);
    const dialogs: string[] = [];
    page.once('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/#\/jobs$/);
    expect(dialogs).toEqual(['Delete job "ui-job" and its executions?']);
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/ui-job')).status === 404,
      10_000,
      'the job gone',
    );
    await page.getByText('No jobs yet.').waitFor();
    expect(errors).toEqual([]);
  });
});
