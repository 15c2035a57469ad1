/**
 * The local stack's metrics registry: the same record calls as EMF on AWS (metrics.ts), served by the
 * local HTTP server as `GET /metrics` in the Prometheus text format (version 0.0.4), with the names of
 * METRICS. Counters are sums per label set; summaries keep count and sum and compute their quantiles
 * (0.5, 0.9, 0.99) over the newest 1,024 observations.
 */
import type { MetricDef, MetricsSink } from './metrics.ts';

const QUANTILES = [0.5, 0.9, 0.99] as const;
const WINDOW = 1024;

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  count: number;
  sum: number;
  recent: number[];
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class PrometheusRegistry implements MetricsSink {
  private readonly metrics = new Map<string, { def: MetricDef; series: Map<string, Series> }>();

  /** Metrics to show (at 0) before anything was recorded: a scraper sees every name from the start. */
  constructor(declared: readonly MetricDef[] = []) {
    for (const def of declared) this.entry(def);
  }

  add(def: MetricDef, value: number, labels: Readonly<Record<string, string>> = {}): void {
    const m = this.entry(def);
    const key = JSON.stringify(Object.entries(labels).sort());
    let s = m.series.get(key);
    if (!s) {
      s = { labels, count: 0, sum: 0, recent: [] };
      m.series.set(key, s);
    }
    s.count++;
    s.sum += value;
    if (def.kind === 'summary') {
      s.recent.push(value);
      if (s.recent.length > WINDOW) s.recent.shift();
    }
  }

  /** The Prometheus text exposition of everything recorded. */
  render(): string {
    const lines: string[] = [];
    for (const { def, series } of this.metrics.values()) {
      lines.push(`# HELP ${def.prometheus} ${def.help} (CloudWatch: ${def.name})`);
      lines.push(`# TYPE ${def.prometheus} ${def.kind}`);
      for (const s of series.values()) {
        if (def.kind === 'counter') {
          lines.push(`${def.prometheus}${labelText(s.labels)} ${s.sum}`);
          continue;
        }
        const sorted = [...s.recent].sort((a, b) => a - b);
        for (const q of QUANTILES) {
          const v = sorted.length
            ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
            : NaN;
          lines.push(`${def.prometheus}${labelText({ ...s.labels, quantile: String(q) })} ${v ?? 'NaN'}`);
        }
        lines.push(`${def.prometheus}_sum${labelText(s.labels)} ${s.sum}`);
        lines.push(`${def.prometheus}_count${labelText(s.labels)} ${s.count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  private entry(def: MetricDef) {
    let m = this.metrics.get(def.prometheus);
    if (!m) {
      m = { def, series: new Map() };
      // Unlabelled metrics show 0 from the start; labelled ones appear with their first label set.
      if (!def.label) m.series.set('[]', { labels: {}, count: 0, sum: 0, recent: [] });
      this.metrics.set(def.prometheus, m);
    }
    return m;
  }
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}
