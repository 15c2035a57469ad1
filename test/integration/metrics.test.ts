/**
 * GET /metrics on the local stack: the same record calls as the functions' EMF on AWS (shared/metrics),
 * in Prometheus text with the names of METRICS, after a scheduled job ran and a failing one was retried.
 */
import { describe, expect, it } from 'vitest';
import { useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack();

/** `name{labels} value` lines of the text format, by series (name plus labels as written). */
async function scrape(): Promise<{ text: string; type: string | null; series: Map<string, number> }> {
  const res = await fetch(`${stack.url}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, type: res.headers.get('content-type'), series };
}

describe('GET /metrics', () => {
  it('serves every metric in Prometheus text from the start, at /metrics as Dkron does (not under /v1)', async () => {
    const { text, type, series } = await scrape();
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of ['cronplane_ticks_total', 'cronplane_launches_total', 'cronplane_retries_total']) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }
    expect(text).toContain('# TYPE cronplane_launch_lateness_ms summary');
    expect(text).toContain('# TYPE cronplane_executions_total counter');
    expect(series.has('cronplane_ticks_total')).toBe(true);
  });

  it('counts ticks, launches, executions by final status, retries and launch lateness', async () => {
    const shell = (command: string) => ({ executor: 'shell', executor_config: { command } });
    expect(
      (await stack.api('POST', '/v1/jobs', { name: 'often', schedule: '@every 1s', ...shell('true') }))
        .status,
    ).toBe(201);
    expect(
      (
        await stack.api('POST', '/v1/jobs', {
          name: 'fails',
          schedule: '@manually',
          retries: 1,
          retry_backoff: '1s',
          ...shell('false'),
        })
      ).status,
    ).toBe(201);
    expect((await stack.api('POST', '/v1/jobs/fails/run')).status).toBe(202);

    const { series } = await waitFor(
      async () => {
        const s = await scrape();
        const ok = (s.series.get('cronplane_executions_total{status="succeeded"}') ?? 0) >= 2;
        const failed = (s.series.get('cronplane_executions_total{status="failed"}') ?? 0) >= 2;
        return ok && failed ? s : null;
      },
      20_000,
      'two successes and a failure retried once, in /metrics',
    );
    expect(series.get('cronplane_ticks_total')).toBeGreaterThanOrEqual(1);
    expect(series.get('cronplane_jobs_planned_total')).toBeGreaterThanOrEqual(1);
    // The tick's launches only: a job written close to its first fire times has those planned by the API
    // (not counted), so on a loaded machine the tick may have sent just one of these.
    expect(series.get('cronplane_launches_total')).toBeGreaterThanOrEqual(1);
    expect(series.get('cronplane_tick_duration_ms_count')).toBe(series.get('cronplane_ticks_total'));
    // The first failure was retried, the second was the last attempt.
    expect(series.get('cronplane_retries_total')).toBe(1);
    // Every finish that started has a lateness: the successes and both failures at least.
    const lateness = series.get('cronplane_launch_lateness_ms_count') ?? 0;
    expect(lateness).toBeGreaterThanOrEqual(4);
    const p50 = series.get('cronplane_launch_lateness_ms{quantile="0.5"}') ?? Number.NaN;
    const p99 = series.get('cronplane_launch_lateness_ms{quantile="0.99"}') ?? Number.NaN;
    expect(p50).toBeGreaterThanOrEqual(0);
    expect(p99).toBeGreaterThanOrEqual(p50);
    // A local run starts within seconds of its fire time.
    expect(p99).toBeLessThan(10_000);
    // The registry behind it is the one the stack's tick and reactions record into.
    expect(stack.metrics.render()).toContain('cronplane_executions_total{status="succeeded"}');
  });
});
