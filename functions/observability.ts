/**
 * What every Lambda entry point shares for logs and metrics: a Powertools Logger (structured JSON, the
 * function as `service`) and Powertools Metrics (EMF, shared/metrics/emf.ts) with the middy middleware
 * that attach them: `injectLambdaContext` adds the request id and cold start to every line; `logMetrics`
 * flushes the invocation's metrics as one EMF line when the handler returns or throws.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { Config } from '../shared/config.ts';
import { createEmfMetrics, emfSink } from '../shared/metrics/emf.ts';
import type { MetricsSink } from '../shared/metrics/metrics.ts';

export interface Observability {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** What the domain records through (Context.metrics). */
  readonly sink: MetricsSink;
  /** The middy middlewares, in order. */
  readonly middlewares: MiddlewareObj[];
}

/**
 * `service`: `cronplane-<function>`, the logs' and the metrics' service dimension. A function that
 * records no metrics (the worker: the agents' results are counted where they finish, by the events
 * function) leaves `withMetrics` off and gets the logger's middleware only.
 */
export function createObservability(
  service: string,
  config: Pick<Config, 'stackName'>,
  withMetrics = true,
): Observability {
  const logger = new Logger({ serviceName: service });
  const metrics = createEmfMetrics(service, config.stackName, logger);
  return {
    logger,
    metrics,
    sink: emfSink(metrics),
    middlewares: [
      injectLambdaContext(logger),
      ...(withMetrics ? [logMetrics(metrics)] : []),
    ] as MiddlewareObj[],
  };
}

/**
 * The domain's log records (`{msg, level?, execution?, ...}`) as Powertools log lines, with the execution
 * id as correlation id: the record's `execution`, else the one given (the launch being processed).
 */
export function logTo(logger: Logger, executionId?: string) {
  return (event: Record<string, unknown>) => {
    const { msg, level, execution, ...rest } = event;
    const id = execution ?? executionId;
    const extra = id === undefined ? rest : { ...rest, correlation_id: String(id) };
    const message = typeof msg === 'string' ? msg : 'event';
    if (level === 'warn') logger.warn(message, extra);
    else if (level === 'error') logger.error(message, extra);
    else logger.info(message, extra);
  };
}
