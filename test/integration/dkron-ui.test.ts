/**
 * Dkron's own web UI against Cronplane, the way it calls the API: from a page of ANOTHER origin (the UI
 * served apart, `window.DKRON_API_URL` pointing at our /v1), in Debian's Chromium, so that CORS applies as
 * it does to the real UI — preflights before PUT, DELETE and any request with a JSON body or a token, and
 * only exposed headers readable.
 *
 * Dkron's UI (ui/ in distribworks/dkron, v4) is react-admin with ra-data-json-server, its `getManyReference`
 * replaced to add `output_size_limit`, and Run/Toggle buttons that POST through the same HTTP client. The
 * page below makes the same requests with fetch, built the same way (query keys sorted as query-string
 * does, `Accept: application/json`, `Content-Type: application/json` only with a body, `Bearer` token
 * when the UI has one), and reads what the UI reads: `X-Total-Count` (ra-data-json-server throws without
 * it), an `id` on every record (react-admin refuses a response without it), executions' output and
 * `finished_at`, members' Name/Addr/Port/statusText/Tags.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './support/browser.ts';
import { startTestStack, type TestStack, waitFor } from './support/stack.ts';

/** Dkron's value of `finished_at` while an execution runs; its UI shows "running" for it. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The UI's data layer, in the page: ra-data-json-server's requests (`getList`, `getOne`, `create`,
 * `update`, `delete`), Dkron's `getManyReference` for executions, and its Run, Toggle and "load full
 * output" buttons. Each checks what react-admin checks, and throws as it would.
 */
const CLIENT = `
const apiUrl = window.DKRON_API_URL;
const requests = [];
// query-string's stringify, as ra-data-json-server and Dkron's dataProvider call it: keys sorted, undefined left out.
function stringify(query) {
  return Object.keys(query).sort().filter((k) => query[k] !== undefined)
    .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(query[k])).join('&');
}
// ra-core's fetchJson behind Dkron's httpClient.
async function httpClient(url, options = {}) {
  const headers = new Headers(options.headers || { Accept: 'application/json' });
  const isGet = !options.method || options.method === 'GET';
  if (options.body && !headers.has('Content-Type') && !isGet) headers.set('Content-Type', 'application/json');
  const token = localStorage.getItem('token');
  if (token) headers.set('Authorization', 'Bearer ' + token);
  requests.push((options.method || 'GET') + ' ' + url.slice(apiUrl.length));
  const res = await fetch(url, { ...options, headers });
  const body = await res.text();
  let json;
  try { json = JSON.parse(body); } catch {}
  if (res.status < 200 || res.status >= 300) throw new Error('HTTP ' + res.status + ': ' + ((json && json.error) || res.statusText));
  return { status: res.status, headers: res.headers, json };
}
function total(headers) {
  if (!headers.has('x-total-count')) throw new Error('The X-Total-Count header is missing in the HTTP Response.');
  return parseInt(headers.get('x-total-count').split('/').pop(), 10);
}
// react-admin's validateResponseFormat.
function records(type, data) {
  if (!Array.isArray(data)) throw new Error(type + ': data is not an array');
  if (data.length > 0 && !Object.hasOwn(data[0], 'id')) throw new Error(type + ': the received data items do not have an id key');
  return data;
}
function record(type, data) {
  if (!data || !Object.hasOwn(data, 'id')) throw new Error(type + ': the received data does not have an id key');
  return data;
}
window.dkron = {
  requests,
  setToken(token) { localStorage.setItem('token', token); },
  clearToken() { localStorage.removeItem('token'); },
  async getList(resource, { page = 1, perPage = 10, field = 'id', order = 'ASC', filter = {} } = {}) {
    const query = { ...filter, _sort: field, _order: order, _start: (page - 1) * perPage, _end: page * perPage };
    const { headers, json } = await httpClient(apiUrl + '/' + resource + '?' + stringify(query));
    return { data: records('getList', json), total: total(headers) };
  },
  async getOne(resource, id) {
    const { json } = await httpClient(apiUrl + '/' + resource + '/' + id);
    return { data: record('getOne', json) };
  },
  // Dkron's own, for <ReferenceManyField reference="executions" target="jobs"> (25 a page, id DESC).
  async getManyReference(resource, { target, id, page = 1, perPage = 25, field = 'id', order = 'DESC', filter = {} }) {
    const query = { ...filter, [target]: id, _sort: field, _order: order, _start: (page - 1) * perPage, _end: page * perPage, output_size_limit: 200 };
    const { headers, json } = await httpClient(apiUrl + '/' + target + '/' + id + '/' + resource + '?' + stringify(query));
    return { data: records('getManyReference', json), total: total(headers) };
  },
  async create(resource, data) {
    const { json } = await httpClient(apiUrl + '/' + resource, { method: 'POST', body: JSON.stringify(data) });
    return { data: record('create', { ...data, ...json }) };
  },
  async update(resource, id, data) {
    const { json } = await httpClient(apiUrl + '/' + resource + '/' + id, { method: 'PUT', body: JSON.stringify(data) });
    return { data: record('update', json) };
  },
  async delete(resource, id) {
    const { json } = await httpClient(apiUrl + '/' + resource + '/' + id, { method: 'DELETE' });
    return { data: json };
  },
  async deleteMany(resource, ids) {
    const responses = await Promise.all(ids.map((id) => httpClient(apiUrl + '/' + resource + '/' + id, { method: 'DELETE' })));
    return { data: responses.map(({ json }) => json.id) };
  },
  // RunButton, ToggleButton and JobShow's "Load full output".
  async run(id) { return (await httpClient(apiUrl + '/jobs/' + id, { method: 'POST' })).status; },
  async toggle(id) { return (await httpClient(apiUrl + '/jobs/' + id + '/toggle', { method: 'POST' })).status; },
  async fullOutput(jobName, id) { return (await httpClient(apiUrl + '/jobs/' + jobName + '/executions/' + id)).json; },
};
`;

type Dkron = {
  requests: string[];
  setToken(token: string): void;
  clearToken(): void;
  getList(resource: string, params?: Record<string, unknown>): Promise<{ data: any[]; total: number }>;
  getOne(resource: string, id: string): Promise<{ data: any }>;
  getManyReference(
    resource: string,
    params: Record<string, unknown>,
  ): Promise<{ data: any[]; total: number }>;
  create(resource: string, data: unknown): Promise<{ data: any }>;
  update(resource: string, id: string, data: unknown): Promise<{ data: any }>;
  delete(resource: string, id: string): Promise<{ data: any }>;
  deleteMany(resource: string, ids: string[]): Promise<{ data: unknown[] }>;
  run(id: string): Promise<number>;
  toggle(id: string): Promise<number>;
  fullOutput(jobName: string, id: string): Promise<any>;
};

let stack: TestStack;
let ui: Server;
let uiUrl: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

/**
 * Calls `window.dkron[method](...args)` in the page. A rejection comes back as an error with the page's
 * message only: its stack names the page's URL, which vitest would try to read as a source file.
 */
async function call<K extends keyof Dkron>(
  method: K,
  ...args: Dkron[K] extends (...a: infer A) => unknown ? A : never
): Promise<Dkron[K] extends (...a: never[]) => infer R ? Awaited<R> : never> {
  try {
    return (await page.evaluate(
      ([m, a]) =>
        (globalThis as unknown as { dkron: Record<string, (...x: unknown[]) => unknown> }).dkron[m]!(...a),
      [method, args] as [string, unknown[]],
    )) as never;
  } catch (error) {
    throw new Error(`${method}: ${(error as Error).message.split('\n')[0]}`);
  }
}

const requestsSeen = () =>
  page.evaluate(() => (globalThis as unknown as { dkron: { requests: string[] } }).dkron.requests.slice());

const NAMES = Array.from({ length: 11 }, (_, i) => `dkron-ui-${String(i).padStart(2, '0')}`);

beforeAll(async () => {
  stack = await startTestStack({ agents: [{ agentId: 'dkron-ui-agent', tags: { role: 'web' } }] });
  const apiUrl = `${stack.url}/v1`;
  // The UI on its own origin: another port is another origin.
  ui = createServer((_req, res) => {
    res
      .writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      .end(
        `<!doctype html><html><head><title>Dkron</title><script>window.DKRON_API_URL = ${JSON.stringify(apiUrl)};</script>` +
          `<script>${CLIENT}</script></head><body>Dkron UI</body></html>`,
      );
  });
  await new Promise<void>((resolve) => ui.listen(0, '127.0.0.1', resolve));
  uiUrl = `http://127.0.0.1:${(ui.address() as AddressInfo).port}/`;
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(uiUrl);
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (ui ? ui.close(resolve) : resolve(undefined)));
  await stack?.stop();
});

describe("Dkron's web UI, from another origin", () => {
  it('is served from an origin other than the API', () => {
    expect(new URL(uiUrl).origin).not.toBe(new URL(stack.url).origin);
  });

  it('creates jobs as the UI does (POST with a JSON body: a preflighted request), each with its id', async () => {
    for (const name of NAMES) {
      const { data } = await call('create', 'jobs', {
        name,
        schedule: '@manually',
        executor: 'shell',
        executor_config: { command: `echo output-of-${name}` },
      });
      expect(data.id).toBe(name);
    }
  });

  it('lists jobs: _sort=id&_order=ASC&_start=0&_end=10, X-Total-Count read cross-origin, an id on each', async () => {
    const { data, total } = await call('getList', 'jobs');
    expect(total).toBe(NAMES.length);
    expect(data.map((j) => j.id)).toEqual(NAMES.slice(0, 10));
    for (const job of data) expect(job.id).toBe(job.name);
    const second = await call('getList', 'jobs', { page: 2 });
    expect(second.total).toBe(NAMES.length);
    expect(second.data.map((j) => j.id)).toEqual(NAMES.slice(10));
    // The list's search box and filters.
    const found = await call('getList', 'jobs', { filter: { q: 'dkron-ui-1' } });
    expect(found.data.map((j) => j.id)).toEqual(['dkron-ui-10']);
    const enabled = await call('getList', 'jobs', { filter: { disabled: false }, field: 'success_count' });
    expect(enabled.total).toBe(NAMES.length);
    expect(await requestsSeen()).toEqual(
      expect.arrayContaining([
        'GET /jobs?_end=10&_order=ASC&_sort=id&_start=0',
        'GET /jobs?_end=20&_order=ASC&_sort=id&_start=10',
        'GET /jobs?_end=10&_order=ASC&_sort=id&_start=0&q=dkron-ui-1',
        'GET /jobs?_end=10&_order=ASC&_sort=success_count&_start=0&disabled=false',
      ]),
    );
  });

  it('shows a job (getOne) and runs it; the executions tab shows its output', async () => {
    const job = NAMES[0]!;
    const { data } = await call('getOne', 'jobs', job);
    expect(data).toMatchObject({ id: job, name: job, disabled: false });

    expect(await call('run', job)).toBeLessThan(300);
    const executions = await waitFor(
      async () => {
        const list = await call('getManyReference', 'executions', { target: 'jobs', id: job });
        return list.data.some((e) => e.finished_at !== ZERO_TIME) ? list : undefined;
      },
      20_000,
      'the run to finish',
    );
    expect(executions.total).toBe(1);
    const [execution] = executions.data;
    expect(execution).toMatchObject({
      job_name: job,
      success: true,
      attempt: 1,
      node_name: 'dkron-ui-agent',
    });
    expect(typeof execution.id).toBe('string');
    expect(typeof execution.group).toBe('number');
    expect(execution.output).toBe(`output-of-${job}\n`);
    expect(execution.output_truncated).toBe(false);
    expect(Date.parse(execution.started_at)).toBeLessThanOrEqual(Date.parse(execution.finished_at));
    expect(await requestsSeen()).toContain(
      `GET /jobs/${job}/executions?_end=25&_order=DESC&_sort=id&_start=0&jobs=${job}&output_size_limit=200`,
    );

    const full = await call('fullOutput', job, execution.id);
    expect(full).toMatchObject({ id: execution.id, output: `output-of-${job}\n` });
    // The counters follow the finish through the stream's reaction, a moment later.
    const shown = await waitFor(
      async () => {
        const one = await call('getOne', 'jobs', job);
        return one.data.success_count === 1 ? one : undefined;
      },
      20_000,
      'the success to be counted',
    );
    expect(shown.data).toMatchObject({ success_count: 1, status: 'success' });
  });

  it('cuts long outputs to output_size_limit and marks them; "load full output" gets all of it', async () => {
    const { data } = await call('create', 'jobs', {
      name: 'dkron-ui-long',
      schedule: '@manually',
      executor: 'shell',
      executor_config: { command: 'seq 1 200', shell: 'true' },
    });
    await call('run', data.id);
    const [execution] = (
      await waitFor(
        async () => {
          const list = await call('getManyReference', 'executions', { target: 'jobs', id: data.id });
          return list.data.some((e) => e.finished_at !== ZERO_TIME) ? list : undefined;
        },
        20_000,
        'the long run to finish',
      )
    ).data;
    expect(execution.output_truncated).toBe(true);
    expect(execution.output.length).toBeLessThanOrEqual(200);
    const full = await call('fullOutput', data.id, execution.id);
    expect(full.output.split('\n').filter(Boolean)).toHaveLength(200);
    await call('delete', 'jobs', data.id);
  });

  it('shows a running execution as running (finished_at is the zero time), in the job and in busy', async () => {
    const { data } = await call('create', 'jobs', {
      name: 'dkron-ui-slow',
      schedule: '@manually',
      executor: 'shell',
      executor_config: { command: 'sleep 2' },
    });
    await call('run', data.id);
    const busy = await waitFor(
      async () => {
        const list = await call('getList', 'busy');
        return list.data.some((e) => e.job_name === data.id) ? list : undefined;
      },
      15_000,
      'the slow job in busy',
    );
    const running = busy.data.find((e) => e.job_name === data.id);
    expect(busy.total).toBe(busy.data.length);
    expect(running).toMatchObject({ node_name: 'dkron-ui-agent', finished_at: ZERO_TIME });
    expect(typeof running.id).toBe('string');
    const inJob = await call('getManyReference', 'executions', { target: 'jobs', id: data.id });
    expect(inJob.data[0]).toMatchObject({ id: running.id, finished_at: ZERO_TIME });
    await waitFor(
      async () => (await call('getList', 'busy')).data.every((e) => e.job_name !== data.id),
      15_000,
      'the slow job to finish',
    );
    await call('delete', 'jobs', data.id);
  });

  it('toggles a job (POST …/toggle) and the job page shows it disabled', async () => {
    const job = NAMES[1]!;
    expect(await call('toggle', job)).toBe(200);
    expect((await call('getOne', 'jobs', job)).data.disabled).toBe(true);
    const disabled = await call('getList', 'jobs', { filter: { disabled: true } });
    expect(disabled.data.map((j) => j.id)).toEqual([job]);
    expect(await call('toggle', job)).toBe(200);
    expect((await call('getOne', 'jobs', job)).data.disabled).toBe(false);
  });

  it('saves the edit form: PUT with the whole record as read, computed fields included', async () => {
    const job = NAMES[0]!;
    const { data: before } = await call('getOne', 'jobs', job);
    const { data } = await call('update', 'jobs', job, { ...before, displayname: 'Edited in the Dkron UI' });
    expect(data).toMatchObject({ id: job, displayname: 'Edited in the Dkron UI', success_count: 1 });
    expect((await call('getOne', 'jobs', job)).data.displayname).toBe('Edited in the Dkron UI');
  });

  it('deletes from the list (delete, and deleteMany for a selection), each answering the job with its id', async () => {
    const { data } = await call('delete', 'jobs', NAMES[10]!);
    expect(data.id).toBe(NAMES[10]);
    const many = await call('deleteMany', 'jobs', [NAMES[8]!, NAMES[9]!]);
    expect(many.data).toEqual([NAMES[8], NAMES[9]]);
    expect((await call('getList', 'jobs')).total).toBe(NAMES.length - 3);
  });

  it("shows the dashboard's nodes: members with id, Name, Addr, Port, statusText and Tags", async () => {
    const { data, total } = await call('getList', 'members');
    expect(total).toBe(data.length);
    const member = data.find((m) => m.Name === 'dkron-ui-agent');
    expect(member).toMatchObject({ id: 'dkron-ui-agent', statusText: 'alive', Status: 1 });
    expect(member.Tags).toMatchObject({ role: 'web' });
    expect(typeof member.Addr).toBe('string');
    expect(typeof member.Port).toBe('number');
  });

  it('works with a token (ACL on): Authorization makes every request preflighted, GETs included', async () => {
    await call('setToken', 'a-token');
    try {
      expect((await call('getList', 'jobs')).total).toBe(NAMES.length - 3);
      expect((await call('getOne', 'jobs', NAMES[0]!)).data.id).toBe(NAMES[0]);
      expect(await call('run', NAMES[2]!)).toBeLessThan(300);
      expect((await call('getList', 'members')).total).toBeGreaterThan(0);
    } finally {
      await call('clearToken');
    }
    expect(pageErrors).toEqual([]);
  });
});
