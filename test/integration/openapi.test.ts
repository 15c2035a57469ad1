/**
 * The OpenAPI 3.1 document at GET /v1/openapi.json, and Schemathesis (PyPI, in .venv) fuzzing the local
 * stack from it: generated valid and invalid paths, queries and bodies, examples, and stateful sequences
 * along the document's links (create a job, then get, toggle, run, list, backfill, delete it). The run
 * fails on any 5xx, any status or body the document does not describe, any schema-violating request
 * accepted, and any 4xx that changed a job or the pause state (test/integration/schemathesis_hooks.py).
 *
 * Bounded: CRONPLANE_FUZZ_EXAMPLES cases per operation and phase (default 25) with a fixed seed, so a
 * CI run is repeatable; CRONPLANE_FUZZ_SEED=random draws a new one (printed) to search further.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { routeTable } from '../../functions/api/routes.ts';
import { useTestStack } from './support/stack.ts';

const stack = useTestStack({ agents: [{ agentId: 'fuzz-agent' }] });

type Doc = {
  openapi: string;
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, unknown>>;
};

describe('GET /v1/openapi.json', () => {
  it('is OpenAPI 3.1 and documents every route the API answers, with the job body from the zod schema', async () => {
    const res = await stack.api('GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body as Doc & { components: { schemas: Record<string, { properties: object }> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers).toEqual([{ url: '/' }]);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x') })),
    );
    for (const { method, pattern } of routeTable()) {
      const covered = documented.some((d) => d.method === method && pattern.test(d.path));
      expect(covered, `${method} ${pattern.source} is not in the document`).toBe(true);
    }
    // The job body is jobInputSchema's: its limits and enums, with null allowed where Dkron writes null.
    const input = doc.components.schemas.JobInput as unknown as {
      required: string[];
      properties: Record<string, { anyOf?: Array<Record<string, unknown>>; maxLength?: number }>;
    };
    expect(input.required).toEqual(['name']);
    expect(input.properties.name?.maxLength).toBe(200);
    expect(input.properties.concurrency?.anyOf?.[0]).toMatchObject({ enum: ['allow', 'forbid', 'replace'] });
    expect(input.properties.concurrency?.anyOf?.[1]).toEqual({ type: 'null' });
  });

  it('names the stage a request came through as its server (API Gateway)', async () => {
    const { createApiHandler } = await import('../../functions/api/app.ts');
    const handler = createApiHandler(stack.ctx);
    const out = await handler(
      {
        httpMethod: 'GET',
        path: '/v1/openapi.json',
        headers: { Accept: 'application/json' },
        requestContext: { path: '/prod/v1/openapi.json' },
      } as never,
      {} as never,
    );
    expect(JSON.parse(out.body).servers).toEqual([{ url: '/prod' }]);
  });
});

describe('Schemathesis against the local stack', () => {
  it('finds no 5xx, no undocumented answer, no accepted invalid request and no change on a 4xx', async () => {
    const seed =
      process.env.CRONPLANE_FUZZ_SEED === 'random'
        ? String(Math.floor(Math.random() * 2 ** 31))
        : (process.env.CRONPLANE_FUZZ_SEED ?? '20261205');
    const examples = process.env.CRONPLANE_FUZZ_EXAMPLES ?? '25';
    const cwd = await mkdtemp(join(tmpdir(), 'schemathesis-')); // its .hypothesis and reports stay out of the repo
    try {
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          join(REPO_ROOT, '.venv/bin/schemathesis'),
          [
            'run',
            `${stack.url}/v1/openapi.json`,
            '--url',
            stack.url,
            '--checks',
            [
              'not_a_server_error',
              'status_code_conformance',
              'content_type_conformance',
              'response_schema_conformance',
              'negative_data_rejection',
              'no_state_change_on_4xx',
            ].join(','),
            '--max-examples',
            examples,
            '--seed',
            seed,
            '--workers',
            '1', // the state check compares before and after each write: nothing may write in between
            '--generation-database',
            'none',
            '--no-color',
          ],
          {
            cwd,
            timeout: 600_000,
            maxBuffer: 64 * 1024 * 1024,
            env: {
              ...process.env,
              CRONPLANE_URL: stack.url,
              PYTHONPATH: join(REPO_ROOT, 'test/integration'),
              SCHEMATHESIS_HOOKS: 'schemathesis_hooks',
            },
          },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
            resolve({ code, output: `${stdout}\n${stderr}` });
          },
        );
      });
      const summary = /Test cases:\s*\n\s*(.+)/.exec(result.output)?.[1] ?? '';
      console.log(`schemathesis (seed ${seed}, ${examples} examples): ${summary}`);
      expect(result.code, result.output.slice(-20_000)).toBe(0);
      // It really ran: thousands of cases over every operation, all four phases.
      expect(Number(/(\d+) generated/.exec(summary)?.[1])).toBeGreaterThan(1000);
      expect(result.output).toMatch(/Selected: (\d+)\/\1/);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  }, 660_000);
});
