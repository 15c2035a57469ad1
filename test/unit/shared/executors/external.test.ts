import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Execution } from '../../../../shared/executions/execution.ts';
import {
  buildExternalRequest,
  discoverExternalExecutors,
  ExternalExecutor,
  parseExternalResponse,
} from '../../../../shared/executors/external.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';

describe('parseExternalResponse', () => {
  it('reads the result object', () => {
    expect(parseExternalResponse(' {"success":true,"output":"hi"}\n')).toEqual({
      success: true,
      output: 'hi',
    });
    expect(parseExternalResponse('{"success":false,"output":"","exit_code":3,"error":"boom"}')).toEqual({
      success: false,
      output: '',
      exit_code: 3,
      error: 'boom',
    });
    expect(parseExternalResponse('{"success":true}')).toEqual({ success: true, output: '' });
  });

  it.each([
    ['', /printed nothing/],
    ['hello', /stdout is not JSON: "hello"/],
    ['[1]', /must be a JSON object/],
    ['{"output":"x"}', /"success" must be true or false/],
    ['{"success":"yes"}', /"success" must be true or false/],
    ['{"success":true,"output":1}', /"output" must be a string/],
    ['{"success":true,"exit_code":1.5}', /"exit_code" must be an integer/],
    ['{"success":true}{"success":true}', /not JSON/],
  ])('rejects %j', (stdout, message) => {
    expect(() => parseExternalResponse(stdout)).toThrow(message);
  });
});

describe('buildExternalRequest', () => {
  it('sends the job, the execution and the config', () => {
    const job = validateJob({
      name: 'j',
      schedule: '@manually',
      executor: 'http',
      executor_config: { url: 'http://x', a: 1 },
    });
    const execution = {
      executionId: '0000000000001.0.2',
      scheduledAt: Date.UTC(2026, 0, 2, 3, 4, 5),
      attempt: 2,
    } as Execution;
    const req = buildExternalRequest(job, execution);
    expect(req.execution).toEqual({
      id: '0000000000001.0.2',
      job_name: 'j',
      scheduled_at: '2026-01-02T03:04:05.000Z',
      attempt: 2,
    });
    expect(req.config).toEqual({ url: 'http://x', a: '1' });
    expect(req.job.name).toBe('j');
  });
});

describe('discoverExternalExecutors', () => {
  const root = mkdtempSync(join(tmpdir(), 'cronplane-ext-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('finds executables named cronplane-executor-<name>; the first directory wins', () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    mkdirSync(a);
    mkdirSync(b);
    const put = (dir: string, name: string, mode: number) => {
      writeFileSync(join(dir, name), '#!/bin/sh\n');
      chmodSync(join(dir, name), mode);
    };
    put(a, 'cronplane-executor-kafka', 0o755);
    put(b, 'cronplane-executor-kafka', 0o755);
    put(b, 'cronplane-executor-nats', 0o755);
    put(a, 'cronplane-executor-noexec', 0o644);
    put(a, 'cronplane-executor-Bad', 0o755);
    put(a, 'other-tool', 0o755);
    mkdirSync(join(a, 'cronplane-executor-dir'));
    const found = discoverExternalExecutors([join(root, 'missing'), a, b]);
    expect(Object.keys(found).sort()).toEqual(['kafka', 'nats']);
    expect((found.kafka as ExternalExecutor).path).toBe(join(a, 'cronplane-executor-kafka'));
    expect((found.nats as ExternalExecutor).path).toBe(join(b, 'cronplane-executor-nats'));
  });
});

describe('ExternalExecutor environment and process group', () => {
  const root = mkdtempSync(join(tmpdir(), 'cronplane-ext-env-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("starts the executor without the agent's credentials or settings, in a group the reaper knows", async () => {
    const path = join(root, 'cronplane-executor-envdump');
    // Prints its environment (one variable a line) as the result's output, and its pid (= its group).
    writeFileSync(
      path,
      `#!/bin/sh\ncat >/dev/null\nout=$(env | sort | sed 's/"/_/g' | tr '\\n' '|')\nprintf '{"success":true,"output":"%s","exit_code":%d}' "$out" $$\n`,
    );
    chmodSync(path, 0o755);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'agent-secret');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAAGENT');
    vi.stubEnv('CRONPLANE_EXECUTIONS_TABLE', 'Executions');
    vi.stubEnv('SOME_AGENT_SECRET', 'hunter2');
    const events: string[] = [];
    const executor = new ExternalExecutor('envdump', path, {
      groups: {
        add: (g, registered) => {
          events.push(`+${g}`);
          registered?.();
        },
        remove: (g) => events.push(`-${g}`),
      },
    });
    const job = validateJob({ name: 'j', schedule: '@manually', executor: 'envdump', executor_config: {} });
    const r = await executor.run(
      job,
      { executionId: '0000000000001.0.1', scheduledAt: 1, attempt: 1 } as Execution,
      new AbortController().signal,
    );
    expect(r.status, r.reason ?? '').toBe('succeeded');
    const vars = r.output.split('|').filter(Boolean);
    const names = vars.map((v) => v.slice(0, v.indexOf('=')));
    expect(r.output).not.toMatch(/agent-secret|AKIAAGENT|hunter2/);
    expect(names.filter((n) => /^AWS_/.test(n))).toEqual([]);
    expect(names.filter((n) => /^CRONPLANE_/.test(n)).sort()).toEqual([
      'CRONPLANE_EXECUTION_ID',
      'CRONPLANE_EXECUTOR',
      'CRONPLANE_JOB_NAME',
      'CRONPLANE_SCHEDULED_AT',
    ]);
    expect(vars).toContain(`PATH=${process.env.PATH}`);
    expect(vars).toContain('ENV_JOB_NAME=j');
    expect(events).toEqual([`+${r.exitCode}`, `-${r.exitCode}`]);
  });
});
