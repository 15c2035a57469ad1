import middy from '@middy/core';
import type { Context as LambdaContext } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createObservability, logTo } from '../../../../functions/observability.ts';
import { METRICS, recordFinish, recordTick } from '../../../../shared/metrics/metrics.ts';

/** What the functions print: the EMF and log lines, parsed. */
let lines: Record<string, unknown>[];
let restore: () => void;

beforeEach(() => {
  lines = [];
  // Powertools writes through its own Console on stdout (warnings and errors on stderr), not console.log.
  const capture = (chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  restore = () => {
    for (const s of spies) s.mockRestore();
  };
});
afterEach(() => restore());

interface Emf {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}
const emfLines = () => lines.filter((l): l is Emf => '_aws' in l);
/** The EMF line that defines `name`, and the metric's definition in it. */
function emfOf(name: string, filter: (l: Emf) => boolean = () => true) {
  const line = emfLines().find(
    (l) => filter(l) && l._aws.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === name),
  );
  if (!line) throw new Error(`no EMF line for ${name} in ${JSON.stringify(lines)}`);
  const directive = line._aws.CloudWatchMetrics[0];
  return { line, directive, def: directive?.Metrics.find((m) => m.Name === name) };
}

const lambda = { awsRequestId: 'req-1', functionName: 'f' } as LambdaContext;

describe('EMF metrics of the functions', () => {
  it('a tick invocation flushes ticks, duration, jobs planned and launches as one EMF line', async () => {
    const { sink, middlewares } = createObservability('cronplane-tick', { stackName: 'Prod' });
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        recordTick(sink, { leader: true, jobs: 7, planned: 12, resent: 3 }, 41.6);
        recordTick(sink, { leader: false, jobs: 0, planned: 0, resent: 0 }, 3);
      });
    await handler({}, lambda);
    const { line, directive, def } = emfOf('Launches');
    expect(directive?.Namespace).toBe('Cronplane');
    expect(directive?.Dimensions).toEqual([['service', 'stack']]);
    expect(line).toMatchObject({ service: 'cronplane-tick', stack: 'Prod' });
    expect(def).toEqual({ Name: 'Launches', Unit: 'Count' });
    // The follower's pass recorded nothing.
    expect(line).toMatchObject({ Ticks: 1, TickDuration: 42, JobsPlanned: 7, Launches: 15 });
    expect(directive?.Metrics).toContainEqual({ Name: 'TickDuration', Unit: 'Milliseconds' });
  });

  it('an idle tick publishes nothing: no custom metric-month for zeros', async () => {
    const { sink, middlewares } = createObservability('cronplane-tick', { stackName: 'Prod' });
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        recordTick(sink, { leader: true, jobs: 0, planned: 0, resent: 0 }, 5);
      });
    await handler({}, lambda);
    expect(emfLines().flatMap((l) => l._aws.CloudWatchMetrics[0]?.Metrics.map((m) => m.Name) ?? [])).toEqual(
      [],
    );
  });

  it('a tick that only re-sent launches publishes ticks, duration and launches', async () => {
    const { sink, middlewares } = createObservability('cronplane-tick', { stackName: 'Prod' });
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        recordTick(sink, { leader: true, jobs: 0, planned: 0, resent: 2 }, 5);
      });
    await handler({}, lambda);
    const { line, directive } = emfOf('Ticks');
    expect(line).toMatchObject({ Ticks: 1, TickDuration: 5, Launches: 2 });
    expect(line).not.toHaveProperty('JobsPlanned');
    expect(directive?.Metrics.map((m) => m.Name).sort()).toEqual(['Launches', 'TickDuration', 'Ticks']);
  });

  it('finishes: Executions by status (a dimension), Retries, LaunchLateness values for the percentiles', async () => {
    const { sink, middlewares } = createObservability('cronplane-events', { stackName: 'Prod' });
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        recordFinish(sink, { status: 'succeeded', scheduledAt: 1_000, startedAt: 1_040 }, false);
        recordFinish(sink, { status: 'failed', scheduledAt: 2_000, startedAt: 2_300 }, true);
        recordFinish(sink, { status: 'skipped', scheduledAt: 3_000, startedAt: null }, false);
        recordFinish(sink, { status: 'succeeded', scheduledAt: 4_000, startedAt: 4_010 }, false);
      });
    await handler({}, lambda);
    // A line per status, with the invocation's count (not a line per finish: log volume is billed).
    const byStatus = emfLines().filter((l) => l._aws.CloudWatchMetrics[0]?.Metrics[0]?.Name === 'Executions');
    expect(byStatus.map((l) => [l.status, l.Executions])).toEqual([
      ['succeeded', 2],
      ['failed', 1],
      ['skipped', 1],
    ]);
    for (const l of byStatus) {
      expect(l._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service', 'stack', 'status']]);
      expect(l).toMatchObject({ service: 'cronplane-events', stack: 'Prod' });
    }
    const { line, def } = emfOf('LaunchLateness');
    expect(def).toEqual({ Name: 'LaunchLateness', Unit: 'Milliseconds' });
    // Every value, not an aggregate: CloudWatch computes p50/p99 from them.
    expect(line.LaunchLateness).toEqual([40, 300, 10]);
    expect(line.Retries).toBe(1);
  });

  it('an invocation with nothing to count prints nothing (no EMF line, no warning)', async () => {
    const { middlewares } = createObservability('cronplane-events', { stackName: 'Prod' });
    await middy()
      .use(middlewares)
      .handler(async () => {})({}, lambda);
    expect(lines).toEqual([]);
  });

  it('the names are the ones the dashboard and GET /metrics use', () => {
    expect(Object.values(METRICS).map((m) => [m.name, m.prometheus])).toEqual([
      ['Ticks', 'cronplane_ticks_total'],
      ['TickDuration', 'cronplane_tick_duration_ms'],
      ['JobsPlanned', 'cronplane_jobs_planned_total'],
      ['Launches', 'cronplane_launches_total'],
      ['Executions', 'cronplane_executions_total'],
      ['Retries', 'cronplane_retries_total'],
      ['LaunchLateness', 'cronplane_launch_lateness_ms'],
    ]);
  });

  it('log lines are structured, with the execution id as correlation id', async () => {
    const { logger, middlewares } = createObservability('cronplane-worker', { stackName: undefined });
    const handler = middy()
      .use(middlewares)
      .handler(async () => {
        logTo(logger, '1700000000000.0.1')({ msg: 'execution failed', job: 'backup', error: 'exit 1' });
        logTo(logger)({ msg: 'retry scheduled', level: 'warn', execution: '17.0.2', attempt: 2 });
      });
    await handler({}, lambda);
    const logs = lines.filter((l) => 'message' in l);
    // The worker records no metrics, and says nothing about it either.
    expect(emfLines()).toEqual([]);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatchObject({
      level: 'INFO',
      message: 'execution failed',
      service: 'cronplane-worker',
      correlation_id: '1700000000000.0.1',
      job: 'backup',
      function_request_id: 'req-1',
    });
    expect(logs[1]).toMatchObject({ level: 'WARN', message: 'retry scheduled', correlation_id: '17.0.2' });
  });
});
