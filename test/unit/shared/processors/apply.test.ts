/**
 * The rules of applying processors (order, forward, failures, timeouts, placement), with processors that
 * record what they are given; the processors themselves are tested against real servers in
 * test/integration/processors.test.ts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClients } from '../../../../shared/aws/clients.ts';
import type { Execution } from '../../../../shared/executions/execution.ts';
import { parseWorkerAllowList, type WorkerAllowList } from '../../../../shared/executors/targets.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';
import { applyProcessors, withTimeout } from '../../../../shared/processors/apply.ts';
import { cloudWatchMessages, MAX_EVENT_OUTPUT_BYTES } from '../../../../shared/processors/cloudwatch.ts';
import type { ProcessorConfig } from '../../../../shared/processors/config.ts';
import { executionFileName, FilesProcessor } from '../../../../shared/processors/files.ts';
import { eventTimeBytes } from '../../../../shared/processors/fluent.ts';
import type { Processor, ProcessorHost, ProcessorRun } from '../../../../shared/processors/processor.ts';
import { splitUtf8 } from '../../../../shared/processors/processor.ts';
import { createProcessorHost } from '../../../../shared/processors/registry.ts';
import { MAX_OUTPUT_BYTES, syslogMessages } from '../../../../shared/processors/syslog.ts';

const started = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const execution: Execution = {
  jobName: 'report',
  executionId: '0001767323045678.0.1',
  group: '0001767323045678',
  slot: 0,
  attempt: 1,
  trigger: 'manual',
  status: 'succeeded',
  scheduledAt: started,
  jobVersion: 1,
  queueUrl: '',
  claimedAt: started,
  startedAt: started,
  finishedAt: started + 1500,
  heartbeatAt: started,
  agentId: 'web-1',
  nodeName: 'web-1',
  exitCode: 0,
  success: true,
  output: 'the report\n',
  outputTruncated: false,
  outputUrl: null,
  reason: null,
  processorErrors: null,
  outputBytes: null,
};

function job(processors: Record<string, Record<string, string>>, extra: Record<string, unknown> = {}) {
  return validateJob({
    name: 'report',
    schedule: '@manually',
    executor_config: { command: 'report' },
    processors,
    ...extra,
  });
}

/** A host whose processors answer `<name>(<output they got>)`, fail, or hang, and record the order. */
function recordingHost(place: 'agent' | 'worker' = 'agent') {
  const calls: string[] = [];
  const log: Array<Record<string, unknown>> = [];
  const behaving = (name: string): Processor => ({
    async process(run: ProcessorRun) {
      calls.push(`${name}:${run.execution.output}`);
      if (name === 'broken') throw new Error('no route to host');
      if (name === 'hanging') return new Promise<string>(() => {});
      return `${name}(${run.execution.output})`;
    },
  });
  const host: ProcessorHost = {
    place,
    log: (e) => log.push(e),
    processorFor(config: ProcessorConfig) {
      const name = config.kind === 'custom' ? config.name : config.kind;
      return name === 'absent' ? { unavailable: 'no custom processor absent' } : behaving(name);
    },
  };
  return { host, calls, log };
}

describe('applying processors', () => {
  it('runs them in the order given; without forward the result replaces the output for the next', async () => {
    const { host, calls } = recordingHost();
    const out = await applyProcessors(
      host,
      job({ log: { forward: 'true' }, files: { log_dir: '/tmp' }, second: {}, third: { forward: 'true' } }),
      execution,
      undefined,
    );
    expect(calls).toEqual([
      'log:the report\n',
      'files:the report\n',
      'second:files(the report\n)',
      'third:second(files(the report\n))',
    ]);
    expect(out).toEqual({ output: 'second(files(the report\n))', outputTruncated: false, errors: null });
  });

  it('never loses the output: failures, absent processors and timeouts are recorded and logged', async () => {
    const { host, calls, log } = recordingHost();
    const begun = Date.now();
    const out = await applyProcessors(
      host,
      job({ broken: {}, absent: {}, hanging: { timeout: '0.1' }, after: {} }),
      execution,
      undefined,
    );
    expect(Date.now() - begun).toBeLessThan(2_000);
    expect(calls).toEqual(['broken:the report\n', 'hanging:the report\n', 'after:the report\n']);
    expect(out).toEqual({
      output: 'after(the report\n)',
      outputTruncated: false,
      errors: {
        broken: 'no route to host',
        absent: 'no custom processor absent',
        hanging: 'timed out after 100ms',
      },
    });
    expect(log.filter((l) => l.msg === 'processor failed').map((l) => [l.processor, l.id])).toEqual([
      ['broken', execution.executionId],
      ['absent', execution.executionId],
      ['hanging', execution.executionId],
    ]);
  });

  it('checks configs and placement again when it runs them (a job stored before a rule)', async () => {
    const { host, calls } = recordingHost('worker');
    const def = job({});
    def.processors = { files: {}, log: { forward: 'maybe' }, s3: {} };
    const out = await applyProcessors(host, def, execution, undefined);
    expect(calls).toEqual(['s3:the report\n']);
    expect(out.errors).toEqual({
      files: expect.stringMatching(
        /^processors\.files: writes to the disk of an agent, but this job runs in the worker/,
      ),
      log: 'processors.log.forward: must be true or false (got "maybe")',
    });
  });

  it("refuses, in the worker, a server outside the worker's allow-list (a job stored before the list)", async () => {
    const log: Array<Record<string, unknown>> = [];
    const host = createProcessorHost({
      place: 'worker',
      clients: createClients({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }),
      outputBucket: undefined,
      log: (e) => log.push(e),
      workerAllow: parseWorkerAllowList(
        JSON.stringify({ fluent: ['fluent.internal:24224'] }),
      ) as WorkerAllowList,
    });
    const out = await applyProcessors(
      host,
      job({ fluent: { fluent_host: '10.1.2.3' } }),
      execution,
      undefined,
    );
    expect(out).toMatchObject({ output: 'the report\n' });
    expect(out.errors?.fluent).toBe(
      "processors.fluent.fluent_host: '10.1.2.3:24224' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW fluent: fluent.internal:24224)",
    );
    // Nor does the worker run custom processors.
    const def = job({});
    def.processors = { archive: {} };
    const custom = await applyProcessors(host, def, execution, undefined);
    expect(custom.errors?.archive).toMatch(/^processors\.archive: custom processors run on agents/);
  });

  it('hands processors the whole output while it is still the original', async () => {
    const seen: Array<string | undefined> = [];
    const host: ProcessorHost = {
      place: 'agent',
      log: () => {},
      processorFor: () => ({
        async process(run) {
          seen.push(run.fullOutputPath);
          return 'replaced';
        },
      }),
    };
    const truncated = { ...execution, outputTruncated: true };
    const out = await applyProcessors(
      host,
      job({ a: { forward: 'true' }, b: {}, c: {} }),
      truncated,
      '/tmp/full',
    );
    expect(seen).toEqual(['/tmp/full', '/tmp/full', undefined]);
    expect(out.outputTruncated).toBe(false);
  });

  it('withTimeout gives up on work that ignores its signal', async () => {
    let aborted: unknown;
    await expect(
      withTimeout(50, (signal) => {
        signal.addEventListener('abort', () => {
          aborted = signal.reason;
        });
        return new Promise(() => {});
      }),
    ).rejects.toThrow('timed out after 50ms');
    expect(String(aborted)).toMatch(/timed out/);
    await expect(withTimeout(1000, async () => 'quick')).resolves.toBe('quick');
  });
});

describe('what the built-ins write', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cronplane-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("files: Dkron's name, never overwriting an execution that started in the same millisecond", async () => {
    expect(executionFileName(started, 'web-1')).toBe(`${BigInt(started) * 1_000_000n}-web-1.log`);
    expect(executionFileName(started, '../etc/passwd')).toBe(
      `${BigInt(started) * 1_000_000n}-__etc_passwd.log`,
    );
    const files = new FilesProcessor();
    const config = {
      kind: 'files',
      forward: false,
      timeoutMs: 1000,
      logDir: join(dir, 'new', 'dir'),
    } as const;
    const run = (output: string) =>
      files.process(
        {
          job: job({}),
          execution: { ...execution, output },
          fullOutputPath: undefined,
          signal: new AbortController().signal,
        },
        config,
      );
    const [first, second] = [await run('one'), await run('two')];
    expect(first).toBe(join(config.logDir, `${BigInt(started) * 1_000_000n}-web-1.log`));
    expect(second).toBe(join(config.logDir, `${BigInt(started) * 1_000_000n + 1n}-web-1.log`));
    expect(readdirSync(config.logDir).sort()).toHaveLength(2);
    expect([readFileSync(first, 'utf8'), readFileSync(second, 'utf8')]).toEqual(['one', 'two']);
  });

  it('syslog: RFC 5424 with the ids in structured data, long outputs in parts', () => {
    const config = {
      kind: 'syslog',
      forward: false,
      timeoutMs: 1000,
      target: { transport: 'udp', host: '127.0.0.1', port: 514 },
      facility: 9,
      tag: 'cronplane',
    } as const;
    const [one, ...rest] = syslogMessages({ ...execution, jobName: 'a"b]c\\d' }, config, 42);
    expect(rest).toEqual([]);
    expect(one?.toString('utf8')).toBe(
      `<78>1 2026-01-02T03:04:07.178Z web-1 cronplane 42 execution [execution@32473 job="a\\"b\\]c\\\\d" id="${execution.executionId}" group="${execution.group}" attempt="1" status="succeeded" exit_code="0"] \uFEFFthe report\n`,
    );
    const failed = syslogMessages(
      { ...execution, status: 'timeout', exitCode: null, output: '' },
      config,
      42,
    );
    expect(failed.map((m) => m.toString('utf8'))).toEqual([
      `<75>1 2026-01-02T03:04:07.178Z web-1 cronplane 42 execution [execution@32473 job="report" id="${execution.executionId}" group="${execution.group}" attempt="1" status="timeout"]`,
    ]);
    const long = 'é'.repeat(MAX_OUTPUT_BYTES); // two bytes each: two full parts
    const parts = syslogMessages({ ...execution, output: long }, config, 42).map((m) => m.toString('utf8'));
    expect(parts).toHaveLength(2);
    expect(parts.map((p) => /part="(\d\/\d)"/.exec(p)?.[1])).toEqual(['1/2', '2/2']);
    expect(parts.map((p) => p.slice(p.indexOf('\uFEFF') + 1)).join('')).toBe(long);
  });

  it('splitUtf8 cuts between characters', () => {
    expect(splitUtf8('abc', 10)).toEqual(['abc']);
    const text = 'a€b€c€'; // € is three bytes
    const parts = splitUtf8(text, 4);
    expect(parts.join('')).toBe(text);
    for (const p of parts) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(4);
  });

  it('fluent: EventTime is seconds and nanoseconds, big-endian', () => {
    const bytes = eventTimeBytes(started);
    const view = new DataView(bytes.buffer);
    expect([view.getUint32(0), view.getUint32(4)]).toEqual([Math.floor(started / 1000), 678_000_000]);
  });

  it('cloudwatch: one JSON event, or parts of at most MAX_EVENT_OUTPUT_BYTES of output', () => {
    const [event] = cloudWatchMessages({ execution });
    expect(JSON.parse(event ?? '')).toMatchObject({
      id: execution.executionId,
      status: 'succeeded',
      output: 'the report\n',
    });
    const long = cloudWatchMessages({
      execution: { ...execution, output: 'x'.repeat(MAX_EVENT_OUTPUT_BYTES * 2 + 1) },
    });
    expect(long.map((m) => JSON.parse(m)).map((m) => [m.part, m.parts, m.output.length])).toEqual([
      [1, 3, MAX_EVENT_OUTPUT_BYTES],
      [2, 3, MAX_EVENT_OUTPUT_BYTES],
      [3, 3, 1],
    ]);
  });
});
