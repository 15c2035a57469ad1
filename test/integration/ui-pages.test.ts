/**
 * The UI's pages in Chromium against the local stack with one agent: the jobs list with search, filters,
 * sort and paging; a job's run-history chart; the job form with a 400 shown at its field and the time zone
 * picker; the dashboard (runs by status in 24 h, fleet, leader, upcoming). Each test checks what the page
 * shows against the API, and saves a screenshot to test-results/screenshots/ (git-ignored).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshot } from './support/browser.ts';
import { startTestStack, type TestStack, waitFor } from './support/stack.ts';

let stack: TestStack;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

const pad = (n: number) => String(n).padStart(2, '0');

interface Exec {
  status: string;
  started_at: string;
  finished_at: string;
}

beforeAll(async () => {
  [stack, browser] = await Promise.all([
    startTestStack({ agents: [{ agentId: 'pages-agent', concurrency: 3 }] }),
    launchChromium(),
  ]);
  const create = (job: Record<string, unknown>) =>
    stack.api('POST', '/v1/jobs', { executor_config: { command: 'true' }, ...job });
  // Runs twice in three seconds, fails in the third, each success taking a little longer than the last.
  await create({
    name: 'flaky',
    schedule: '@every 1s',
    executor_config: {
      shell: 'true',
      command: 'n=$(( $(date +%s) % 3 )); [ "$n" -ne 0 ] || exit 3; sleep 0.$n',
    },
  });
  for (let i = 1; i <= 28; i++) {
    await create({
      name: `batch-${pad(i)}`,
      schedule: '@manually',
      disabled: i <= 5,
      metadata: { team: i % 2 ? 'a' : 'b' },
    });
  }
  await create({ name: 'bad-job', schedule: '@manually', executor_config: { command: 'false' } });
  await create({ name: 'hourly', schedule: '@hourly' });
  await create({ name: 'nightly', schedule: '0 0 3 * * *', timezone: 'Europe/Berlin' });
  await stack.api('POST', '/v1/jobs/bad-job/run');
  await stack.api('POST', '/v1/jobs/batch-10/run');
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const rowNames = (p: Page) => p.locator('.results tbody tr td:first-child a').allTextContents();

describe('UI pages', () => {
  it('jobs list: search, filters, sort and paging, kept in the URL', async () => {
    await page.goto(`${stack.url}/ui/#/jobs`);
    await page.locator('.page-info', { hasText: 'of 32' }).waitFor();
    expect(await page.locator('.page-info').textContent()).toBe('1–25 of 32');

    await page.getByLabel('Search').fill('batch');
    await page.getByLabel('Search').press('Enter');
    await page.locator('.page-info', { hasText: '1–25 of 28' }).waitFor();
    expect(page.url()).toContain('q=batch');
    await page.getByRole('button', { name: 'Next ›' }).click();
    await page.locator('.page-info', { hasText: '26–28 of 28' }).waitFor();
    expect(await rowNames(page)).toEqual(['batch-26', 'batch-27', 'batch-28']);

    await page.getByLabel('Order').selectOption('DESC');
    await page.locator('.page-info', { hasText: '1–25 of 28' }).waitFor();
    expect((await rowNames(page)).slice(0, 2)).toEqual(['batch-28', 'batch-27']);

    await page.getByLabel('Enabled').selectOption('true');
    await page.locator('.page-info', { hasText: 'of 5' }).waitFor();
    expect(await rowNames(page)).toEqual(['batch-05', 'batch-04', 'batch-03', 'batch-02', 'batch-01']);
    expect(await page.locator('.results tbody tr.disabled').count()).toBe(5);

    await page.getByLabel('Enabled').selectOption('');
    await page.getByLabel('Metadata').fill('team=b');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('.page-info', { hasText: '1–14 of 14' }).waitFor();
    expect((await rowNames(page)).every((n) => Number(n.slice(-2)) % 2 === 0)).toBe(true);
    await screenshot(page, 'jobs-list-filters');

    // Status: the last run failed.
    await waitFor(
      async () => (await stack.api('GET', '/v1/jobs/bad-job')).body.status === 'failed',
      20_000,
      'bad-job to fail',
    );
    await page.goto(`${stack.url}/ui/#/jobs?status=failed&q=-job`);
    await page.locator('.page-info', { hasText: '1–1 of 1' }).waitFor();
    expect(await rowNames(page)).toEqual(['bad-job']);
    expect(await page.getByLabel('Status').inputValue()).toBe('failed');

    // A search taken from the URL is a value in the box, never markup on the page.
    const markup = '<img src=x id=injected onerror="document.title=1">';
    await page.goto(`${stack.url}/ui/#/jobs?q=${encodeURIComponent(markup)}`);
    await page.getByText('No jobs match these filters.').waitFor();
    expect(await page.getByLabel('Search').inputValue()).toBe(markup);
    expect(await page.locator('#injected').count()).toBe(0);
  });

  it('job page: the run-history chart has one point per run, coloured by status', async () => {
    const runs = await waitFor(
      async () => {
        const list = (await stack.api<Exec[]>('GET', '/v1/jobs/flaky/executions')).body;
        const done = list.filter((e) => e.finished_at && e.finished_at !== '0001-01-01T00:00:00Z');
        return done.length >= 6 && done.some((e) => e.status === 'failed') && list;
      },
      30_000,
      'six runs of flaky, one failed',
    );
    await page.goto(`${stack.url}/ui/#/jobs/flaky`);
    const chart = page.locator('svg.history-chart');
    await chart.waitFor();
    const points = chart.locator('g.run');
    expect(await points.count()).toBeGreaterThanOrEqual(
      runs.filter((e) => Date.parse(e.started_at) > 0).length,
    );
    expect(await chart.locator('g.run-succeeded').count()).toBeGreaterThan(0);
    expect(await chart.locator('g.run-failed').count()).toBeGreaterThan(0);
    expect(await chart.locator('g.run-failed circle.started').first().getAttribute('fill')).toBe('#cf222e');
    expect(await chart.locator('g.run-succeeded circle.started').first().getAttribute('fill')).toBe(
      '#1a7f37',
    );
    // Each point's tooltip names its run, its status and its delay behind the fire time.
    const title = await points.first().locator('title').textContent();
    expect(title).toMatch(/^\d+\.\d+\.\d+ · (succeeded|failed|running) · .* after its fire time$/);
    // A longer run sits higher: the points of one status are not all on one line.
    const ys = await chart
      .locator('g.run-succeeded circle.started')
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute('cy'))));
    expect(new Set(ys.map((y) => Math.round(y))).size).toBeGreaterThan(1);
    expect(await page.locator('.legend').textContent()).toContain('failed');
    await screenshot(page, 'job-page-history-chart');
  });

  it("job page: a running job's output shows line by line before it ends", async () => {
    await stack.api('POST', '/v1/jobs', {
      name: 'live-ui',
      schedule: '@manually',
      executor_config: { shell: 'true', command: 'for i in $(seq 5); do echo $i; sleep 1; done' },
    });
    await stack.api('POST', '/v1/jobs/live-ui/run');
    await page.goto(`${stack.url}/ui/#/jobs/live-ui`);
    const running = page.locator('tr', { has: page.locator('.badge.status-running') });
    const pre = running.locator('td.output pre');
    await pre.filter({ hasText: /^1\n/ }).waitFor({ timeout: 15_000 });
    expect(await running.locator('.badge').textContent()).toBe('running');
    expect(await pre.textContent()).not.toContain('5');
    await screenshot(page, 'job-live-output');
    const done = page.locator('tr', { has: page.locator('.badge.status-succeeded') }).locator('td.output');
    await done
      .filter({ hasText: '5 chars' })
      .or(done.filter({ hasText: '10 chars' }))
      .first()
      .waitFor({ timeout: 15_000 });
  });

  it('job form: a 400 shown at its field, time zone picker, key/value rows, preview', async () => {
    await page.goto(`${stack.url}/ui/#/new`);
    await page.locator('.preview li').nth(4).waitFor();
    const zones = await page.getByLabel('Time zone').locator('option').allTextContents();
    expect(zones).toContain('Europe/Berlin');
    expect(zones.length).toBeGreaterThan(300);

    await page.getByLabel('Name', { exact: true }).fill('form-job');
    await page.getByLabel('Time zone').selectOption('Asia/Tokyo');
    await page.getByLabel('Schedule', { exact: true }).fill('0 0 9 * * *');
    // Nine in the morning in Tokyo is midnight UTC.
    await page
      .locator('.preview li code', { hasText: /T00:00:00\.000Z$/ })
      .first()
      .waitFor();
    await page.getByLabel('Tags key').fill('role');
    await page.getByLabel('Tags value').fill('web');
    await page.getByRole('button', { name: 'Add tags row' }).click();
    await page.getByLabel('Tags key').nth(1).fill('zone');
    await page.getByLabel('Tags value').nth(1).fill('b');
    await page.getByRole('button', { name: 'Remove Tags row' }).nth(1).click();
    await page.getByLabel('Retries').fill('2');
    await page.getByLabel('Concurrency').selectOption('forbid');
    await page.getByLabel('On-failure job').fill('bad-job');
    const json = JSON.parse(await page.getByLabel('Job JSON').inputValue());
    expect(json).toMatchObject({
      name: 'form-job',
      timezone: 'Asia/Tokyo',
      schedule: '0 0 9 * * *',
      tags: { role: 'web' },
      retries: 2,
      concurrency: 'forbid',
      on_failure_job: 'bad-job',
    });

    // A bad schedule: the API's 400 appears at the schedule field.
    await page.getByLabel('Schedule', { exact: true }).fill('every tuesday');
    await page.getByRole('button', { name: 'Create job' }).click();
    const field = page.locator('.field[data-field=schedule]');
    await field.locator('.field-error').waitFor({ state: 'visible' });
    expect(await field.getAttribute('class')).toContain('invalid');
    expect(await field.locator('.field-error').textContent()).toMatch(/^cron needs 5 fields/);
    expect(await field.locator('input').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.result [role=alert]').textContent()).toMatch(
      /^400: schedule: .*field: schedule/,
    );
    await screenshot(page, 'form-field-error');
    expect((await stack.api('GET', '/v1/jobs/form-job')).status).toBe(404);

    // An executor_config key's 400 is shown at the executor config rows.
    await page.getByLabel('Schedule', { exact: true }).fill('@hourly');
    await page.getByLabel('Executor', { exact: true }).fill('http');
    await page.getByLabel('Executor config key').first().fill('url');
    await page.getByLabel('Executor config value').first().fill('not a url');
    await page.getByRole('button', { name: 'Create job' }).click();
    const cfg = page.locator('.field[data-field=executor_config] .field-error');
    await cfg.waitFor({ state: 'visible' });
    expect(await page.locator('.field[data-field=schedule] .field-error').isVisible()).toBe(false);

    // Fixed in the JSON editor (the fields follow), then saved.
    const fixed = { ...JSON.parse(await page.getByLabel('Job JSON').inputValue()), executor: 'shell' };
    fixed.executor_config = { command: 'echo from-form' };
    await page.getByLabel('Job JSON').fill(JSON.stringify(fixed));
    expect(await page.getByLabel('Executor', { exact: true }).inputValue()).toBe('shell');
    await page.getByRole('button', { name: 'Create job' }).click();
    await page.waitForURL(/#\/jobs\/form-job$/);
    expect((await stack.api('GET', '/v1/jobs/form-job')).body).toMatchObject({
      timezone: 'Asia/Tokyo',
      tags: { role: 'web' },
      retries: 2,
      concurrency: 'forbid',
      on_failure_job: 'bad-job',
      executor_config: { command: 'echo from-form' },
    });

    // Edited: the fields come back filled, the name cannot change.
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.waitForURL(/#\/edit\/form-job$/);
    const nameBox = page.getByLabel('Name', { exact: true });
    await page.locator('.preview li').first().waitFor();
    expect(await nameBox.inputValue()).toBe('form-job');
    expect(await nameBox.getAttribute('readonly')).not.toBeNull();
    expect(await page.getByLabel('Time zone').inputValue()).toBe('Asia/Tokyo');
    expect(await page.getByLabel('Tags value').first().inputValue()).toBe('web');
    await page.getByLabel('Retries').fill('3');
    await page.getByRole('button', { name: 'Save job' }).click();
    await page.waitForURL(/#\/jobs\/form-job$/);
    expect((await stack.api('GET', '/v1/jobs/form-job')).body.retries).toBe(3);
  });

  it('dashboard: runs by status in the last 24 h, fleet, leader and what fires next', async () => {
    await stack.api('POST', '/v1/jobs/flaky/toggle');
    const names = (await stack.api<Array<{ name: string }>>('GET', '/v1/jobs')).body.map((j) => j.name);
    const count = async () => {
      const counts: Record<string, number> = {};
      for (const name of names) {
        for (const e of (await stack.api<Exec[]>('GET', `/v1/jobs/${name}/executions`)).body) {
          counts[e.status] = (counts[e.status] ?? 0) + 1;
        }
      }
      return counts;
    };
    // Settled: no run in flight, the same counts twice.
    const expected = await waitFor(
      async () => {
        const a = await count();
        await new Promise((r) => setTimeout(r, 1000));
        const b = await count();
        return !a.running && JSON.stringify(a) === JSON.stringify(b) && b;
      },
      20_000,
      'runs to settle',
    );
    await page.goto(`${stack.url}/ui/#/dashboard`);
    const bars = page.locator('#runs-24h svg g.bar');
    await bars.first().waitFor();
    for (const status of ['succeeded', 'failed']) {
      const shown = await page.locator(`#runs-24h g.bar[data-status=${status}] text.count`).textContent();
      expect(Number(shown)).toBe(expected[status] ?? 0);
    }
    expect(expected.succeeded).toBeGreaterThan(0);

    const member = (await stack.api('GET', '/v1/members')).body.find((m: any) => m.Name === 'pages-agent');
    const row = page.locator('#fleet tbody tr', { hasText: 'pages-agent' });
    await row.waitFor();
    expect(await row.locator('td').nth(2).textContent()).toContain(`/ ${member.capacity}`);
    expect(member.capacity).toBe(3);

    const leader = (await stack.api('GET', '/v1/leader')).body;
    expect(await page.locator('#leader-card strong').textContent()).toBe(leader.Name);

    const upcoming = await page.locator('#upcoming tbody tr td:nth-child(2)').allTextContents();
    const due = (
      await stack.api<Array<{ name: string; next: string | null; disabled: boolean }>>('GET', '/v1/jobs')
    ).body.filter((j) => j.next && !j.disabled);
    const nextOf = new Map(due.map((j) => [j.name, Date.parse(j.next!)]));
    const byNext = due.sort((a, b) => nextOf.get(a.name)! - nextOf.get(b.name)!).map((j) => j.name);
    // In fire-time order; jobs due at the same instant in either order (`@hourly` and 03:00 Berlin both
    // fire at 02:00 UTC: run between 01:00 and 02:00 UTC, this compared the tie's order and failed).
    const times = upcoming.map((name) => nextOf.get(name));
    expect(times).toEqual([...times].sort((a, b) => a! - b!));
    expect([...upcoming].sort()).toEqual(byNext.slice(0, 10).sort());
    expect(upcoming).toEqual(expect.arrayContaining(['hourly', 'nightly']));
    expect(upcoming).not.toContain('flaky');
    await screenshot(page, 'dashboard');
    expect(pageErrors).toEqual([]);
  });
});
