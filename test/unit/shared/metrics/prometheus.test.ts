import { describe, expect, it } from 'vitest';
import { TERMINAL } from '../../../../shared/executions/execution.ts';
import { FINAL_STATUSES, METRICS, recordFinish, recordTick } from '../../../../shared/metrics/metrics.ts';
import { PrometheusRegistry } from '../../../../shared/metrics/prometheus.ts';

describe('the local registry (GET /metrics)', () => {
  it('shows unlabelled metrics at 0 before anything is recorded', () => {
    const text = new PrometheusRegistry(Object.values(METRICS)).render();
    expect(text).toContain('# TYPE cronplane_ticks_total counter\ncronplane_ticks_total 0\n');
    expect(text).toContain('cronplane_launch_lateness_ms{quantile="0.99"} NaN');
    expect(text).toContain('cronplane_launch_lateness_ms_count 0');
    // Labelled ones appear with their first label set.
    expect(text).not.toContain('cronplane_executions_total{');
  });

  it('sums counters per label set and gives quantiles, sum and count of a summary', () => {
    const r = new PrometheusRegistry(Object.values(METRICS));
    recordTick(r, { leader: true, jobs: 2, planned: 3, resent: 1 }, 12);
    for (let i = 1; i <= 100; i++) {
      recordFinish(
        r,
        { status: i % 10 === 0 ? 'failed' : 'succeeded', scheduledAt: 0, startedAt: i },
        i % 10 === 0,
      );
    }
    const text = r.render();
    expect(text).toContain('cronplane_executions_total{status="succeeded"} 90\n');
    expect(text).toContain('cronplane_executions_total{status="failed"} 10\n');
    expect(text).toContain('cronplane_retries_total 10\n');
    expect(text).toContain('cronplane_launches_total 4\n');
    expect(text).toContain('cronplane_launch_lateness_ms{quantile="0.5"} 50\n');
    expect(text).toContain('cronplane_launch_lateness_ms{quantile="0.99"} 99\n');
    expect(text).toContain('cronplane_launch_lateness_ms_sum 5050\n');
    expect(text).toContain('cronplane_launch_lateness_ms_count 100\n');
  });

  it('escapes label values', () => {
    const r = new PrometheusRegistry();
    r.add(METRICS.executions, 1, { status: 'a"b\\c\nd' });
    expect(r.render()).toContain('cronplane_executions_total{status="a\\"b\\\\c\\nd"} 1');
  });

  it('the dashboard graphs every final status', () => {
    expect(new Set(FINAL_STATUSES)).toEqual(new Set(TERMINAL));
  });
});
