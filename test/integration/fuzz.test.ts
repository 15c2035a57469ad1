/**
 * The API under generated input, over HTTP against the local stack (the same handler API Gateway invokes):
 * malformed paths and %-escapes, hostile query parameters, random and job-shaped JSON bodies near and over
 * every limit, and multipart uploads cut anywhere. Invariants: never a 5xx, the process lives on, and a
 * write answered with a 4xx stores nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useTestStack } from './support/stack.ts';

const stack = useTestStack({ agents: [] });

interface Reply {
  status: number;
  text: string;
}

async function send(
  method: string,
  path: string,
  body?: string,
  headers?: Record<string, string>,
): Promise<Reply> {
  const res = await fetch(`${stack.url}${path}`, { method, body, headers });
  return { status: res.status, text: await res.text() };
}

const noServerError = (what: string, r: Reply) => {
  expect(r.status, `${what} → ${r.status} ${r.text.slice(0, 300)}`).toBeLessThan(500);
};

let counter = 0;
const freshName = () => `fz-${process.pid}-${counter++}`;

const scalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 190, maxLength: 2100 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    '-1h',
    '0s',
    '999999h',
    '@every 1s',
    '@every 0s',
    'web:0',
    'web:1001',
    'x:10000000',
    '%ZZ',
    '__proto__',
  ),
);
const jsonValue = fc.oneof(
  scalar,
  fc.array(scalar, { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 30 }), scalar, { maxKeys: 5 }),
);
const jobFields = fc.record(
  {
    displayname: scalar,
    schedule: fc.oneof(
      scalar,
      fc.constantFrom('@every 1h', '0 0 * * * *', '@manually', '@at 2099-01-01T00:00:00Z'),
    ),
    timezone: fc.oneof(scalar, fc.constant('Europe/Berlin')),
    tags: fc.oneof(
      jsonValue,
      fc.dictionary(fc.string({ maxLength: 200 }), fc.oneof(scalar, fc.constant('web:3')), { maxKeys: 40 }),
    ),
    metadata: jsonValue,
    retries: scalar,
    retry_backoff: scalar,
    parent_job: fc.oneof(scalar, fc.constant('')),
    on_failure_job: scalar,
    concurrency: fc.oneof(scalar, fc.constantFrom('allow', 'forbid', 'replace')),
    executor: fc.oneof(scalar, fc.constantFrom('shell', 'http', 'lambda', 'sqs', 'eventbridge', 'custom')),
    executor_config: fc.oneof(
      jsonValue,
      fc.dictionary(
        fc.constantFrom('command', 'url', 'timeout', 'env', 'method', 'function_name', 'queue_url', 'body'),
        scalar,
      ),
    ),
    processors: jsonValue,
    catchup_window: scalar,
    catchup_max: scalar,
    success_exit_codes: jsonValue,
    starts_at: scalar,
    expires_at: scalar,
    ephemeral: scalar,
    disabled: scalar,
  },
  { requiredKeys: [] },
);

const segment = fc.oneof(
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom('%ZZ', '%', '%E0%A4%A', '..', '%2F', 'x'.repeat(3000), '__proto__', 'constructor', '%00'),
);

describe('the API under generated input', () => {
  it('answers every generated job write with 2xx or 4xx, and a 4xx stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(jobFields, fc.constantFrom('POST', 'PUT'), async (fields, method) => {
        const name = freshName();
        const body = JSON.stringify({ name, ...fields });
        const path = method === 'PUT' ? `/v1/jobs/${name}` : '/v1/jobs';
        const r = await send(method, path, body);
        noServerError(`${method} ${body.slice(0, 200)}`, r);
        const after = await send('GET', `/v1/jobs/${name}`);
        if (r.status >= 400) {
          expect(after.status, `${r.status} ${r.text.slice(0, 200)} yet stored`).toBe(404);
          expect(JSON.parse(r.text)).toMatchObject({ error: expect.any(String) });
        } else {
          expect(after.status).toBe(200);
          await send('DELETE', `/v1/jobs/${name}`);
        }
      }),
      { numRuns: 250 },
    );
  });

  it('answers generated paths, methods and query strings without a 5xx', async () => {
    await send(
      'POST',
      '/v1/jobs',
      JSON.stringify({
        name: 'fz-known',
        schedule: '@manually',
        executor: 'shell',
        executor_config: { command: 'true' },
      }),
    );
    const query = fc.dictionary(
      fc.constantFrom(
        '_sort',
        '_order',
        '_start',
        '_end',
        '_limit',
        'q',
        'status',
        'disabled',
        'output_size_limit',
        'planned',
        'metadata[__proto__]',
        'schedule',
        'count',
        'from',
        'timezone',
        'runoncreate',
        'name',
      ),
      fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.constantFrom(
          '__proto__',
          'valueOf',
          'hasOwnProperty',
          'constructor',
          '-1',
          '1e400',
          '99999999999999999999',
          'toString',
        ),
      ),
      { maxKeys: 4 },
    );
    const path = fc.oneof(
      fc.tuple(segment).map(([a]) => `/v1/jobs/${a}`),
      fc.tuple(segment).map(([a]) => `/v1/jobs/${a}/executions`),
      fc.tuple(segment, segment).map(([a, b]) => `/v1/jobs/${a}/executions/${b}`),
      fc.tuple(segment).map(([a]) => `/v1/jobs/fz-known/executions/${a}`),
      fc.tuple(segment).map(([a]) => `/v1/jobs/${a}/toggle`),
      fc.tuple(segment).map(([a]) => `/v1/jobs/${a}/run`),
      fc.tuple(segment).map(([a]) => `/v1/jobs/${a}/backfill`),
      fc.constantFrom(
        '/v1/jobs',
        '/v1/jobs/fz-known/executions',
        '/v1/members',
        '/v1/leader',
        '/v1/busy',
        '/v1/leave',
        '/v1/schedule/preview',
        '/v1/restore',
        '/v1',
        '/health',
      ),
      segment.map((a) => `/v1/${a}`),
    );
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE');
    const body = fc.option(
      fc.oneof(
        fc.string({ maxLength: 50 }),
        jsonValue.map((v) => JSON.stringify(v)),
      ),
      { nil: undefined },
    );
    await fc.assert(
      fc.asyncProperty(method, path, query, body, async (m, p, q, b) => {
        // Never delete or pause for real: the other cases of this property share the stack.
        if ((m === 'DELETE' && p === '/v1/jobs/fz-known') || p === '/v1/leave') return;
        const qs = new URLSearchParams(q).toString();
        const url = qs ? `${p}?${qs}` : p;
        const r = await send(m, url, m === 'GET' || m === 'DELETE' ? undefined : b);
        noServerError(`${m} ${url} ${b ?? ''}`.slice(0, 300), r);
      }),
      { numRuns: 400 },
    );
    const huge = await send('POST', '/v1/jobs', `{"name":"${'x'.repeat(11 * 1024 * 1024)}"}`);
    expect(huge.status).toBe(413); // API Gateway's 10 MB, before any of it is parsed
    expect((await send('GET', '/health')).status).toBe(200);
  });

  it('answers multipart uploads cut or garbled anywhere with a 4xx, and lives on', async () => {
    const data = new FormData();
    const jobs = [
      { name: 'fz-restored', schedule: '@every 1h', executor: 'shell', executor_config: { command: 'true' } },
    ];
    data.append('file', new Blob([JSON.stringify(jobs)], { type: 'application/json' }), 'jobs.json');
    const request = new Request('http://127.0.0.1/', { method: 'POST', body: data });
    const contentType = request.headers.get('content-type')!;
    const whole = await request.text();
    await fc.assert(
      fc.asyncProperty(
        fc.nat(whole.length - 1),
        fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
        async (cut, junk) => {
          const body = whole.slice(0, cut) + (junk ?? '');
          const r = await send('POST', '/v1/restore', body, { 'Content-Type': contentType });
          noServerError(`restore cut at ${cut}`, r);
          if (r.status === 200) {
            // Cut after the file part was complete (only the closing delimiter missing): the whole file.
            expect(body.slice(0, cut)).toContain(JSON.stringify(jobs));
            expect((await send('DELETE', '/v1/jobs/fz-restored')).status).toBe(200);
          } else {
            expect(r.status, r.text.slice(0, 200)).toBeGreaterThanOrEqual(400);
            expect((await send('GET', '/v1/jobs/fz-restored')).status).toBe(404);
          }
        },
      ),
      { numRuns: 150 },
    );
    for (const ct of [
      'multipart/form-data',
      'multipart/form-data; boundary=',
      'multipart/form-data; boundary="',
      `${contentType}x`,
    ]) {
      noServerError(ct, await send('POST', '/v1/restore', whole, { 'Content-Type': ct }));
    }
    expect((await send('GET', '/health')).status).toBe(200);
    expect((await send('GET', '/v1/jobs/fz-restored')).status).toBe(404);
  });
});
