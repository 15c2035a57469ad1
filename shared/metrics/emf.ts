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

/** Buffers plain metrics in `metrics` (flushed per invocation); labelled ones go out at once, each with its own dimension. */
export function emfSink(metrics: Metrics): MetricsSink {
  return {
    add(metric: MetricDef, value: number, labels?: Readonly<Record<string, string>>) {
      const unit = metric.unit === 'Milliseconds' ? MetricUnit.Milliseconds : MetricUnit.Count;
      if (!labels || Object.keys(labels).length === 0) {
        metrics.addMetric(metric.name, unit, value);
        return;
      }
      // A dimension of its own needs a metric of its own (Powertools' dimensions hold for a whole flush).
      const single = metrics.singleMetric();
      for (const [k, v] of Object.entries(labels)) single.addDimension(k, v);
      single.addMetric(metric.name, unit, value);
    },
  };
}
