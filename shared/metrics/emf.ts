/**
 * The metrics sink of the Lambda functions: Powertools Metrics, printed as CloudWatch Embedded Metric
 * Format lines when the handler's `logMetrics` middleware flushes them (see metrics.ts for the names).
 */
import type { GenericLogger } from '@aws-lambda-powertools/commons/types';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type MetricDef, type MetricsSink, NAMESPACE } from './metrics.ts';

/**
 * One function's Powertools Metrics: namespace `Cronplane`, dimensions `service` and (when known)
 * `stack`. Its own warnings go to `logger`, except "No application metrics to publish": an invocation
 * with nothing to count (a follower's tick, a stream batch with no finish) is normal here.
 */
export function createEmfMetrics(
  service: string,
  stack: string | undefined,
  logger: GenericLogger = console,
): Metrics {
  return new Metrics({
    namespace: NAMESPACE,
    serviceName: service,
    defaultDimensions: stack ? { stack } : {},
    logger: {
      debug: (...a) => logger.debug(...a),
      info: (...a) => logger.info(...a),
      error: (...a) => logger.error(...a),
      warn: (...a) => {
        if (!String(a[0]).startsWith('No application metrics to publish')) logger.warn(...a);
      },
    },
  });
}

/**
 * Buffers plain metrics in `metrics` (flushed per invocation). Labelled counts are summed per metric and
 * label set until the same flush, each set then one line with its own dimension: a stream batch's
 * `Executions` is a line per status, not a line per finish (~270 bytes of CloudWatch Logs each, most of
 * what an execution cost in logs). CloudWatch sums a count's values, so the sums are the same. Other
 * labelled metrics go out at once.
 */
export function emfSink(metrics: Metrics): MetricsSink {
  const counts = new Map<string, { name: string; labels: Readonly<Record<string, string>>; value: number }>();
  const publish = metrics.publishStoredMetrics.bind(metrics);
  metrics.publishStoredMetrics = () => {
    for (const { name, labels, value } of counts.values()) single(name, MetricUnit.Count, value, labels);
    counts.clear();
    return publish();
  };
  // A dimension of its own needs a metric of its own (Powertools' dimensions hold for a whole flush).
  const single = (
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    labels: Readonly<Record<string, string>>,
  ): void => {
    const one = metrics.singleMetric();
    for (const [k, v] of Object.entries(labels)) one.addDimension(k, v);
    one.addMetric(name, unit, value);
  };
  return {
    add(metric: MetricDef, value: number, labels?: Readonly<Record<string, string>>) {
      const unit = metric.unit === 'Milliseconds' ? MetricUnit.Milliseconds : MetricUnit.Count;
      if (!labels || Object.keys(labels).length === 0) {
        metrics.addMetric(metric.name, unit, value);
        return;
      }
      if (unit !== MetricUnit.Count) return single(metric.name, unit, value, labels);
      const key = JSON.stringify([metric.name, Object.entries(labels).sort()]);
      const sum = counts.get(key);
      if (sum) sum.value += value;
      else counts.set(key, { name: metric.name, labels: { ...labels }, value });
    },
  };
}
