/**
 * Cronplane's metrics: one table of names, the port the domain records through, and the record calls
 * of the tick and of the reactions to finished executions.
 *
 * Decisions:
 * - On AWS the functions print them as CloudWatch Embedded Metric Format lines (Powertools Metrics,
 *   shared/metrics/emf.ts): namespace `Cronplane`, dimensions `service` (the function:
 *   `cronplane-tick`, `cronplane-events`) and `stack` (the CloudFormation stack), plus `status` on
 *   `Executions`. EMF is a log line, so it needs no `cloudwatch:PutMetricData` grant; CloudWatch
 *   computes percentiles (p50/p99 lateness) from the raw values the lines carry.
 * - Locally the same record calls feed an in-process registry that the local stack serves as
 *   `GET /metrics` in Prometheus text (shared/metrics/prometheus.ts). Only locally: on AWS a Lambda
 *   would only know its own container's counts, and CloudWatch already has them all.
 * - The agents' results reach the metrics through the Executions stream: every finish, whoever ran it,
 *   is counted once by the events function (after its `reactedAt` mark, so a redelivered record is
 *   not counted again). Lost executions are `Executions` with `status=lost` (marked by an agent or by
 *   the tick's sweep), not a metric of their own.
 * - Queue age and depth are SQS's own metrics (`ApproximateAgeOfOldestMessage`,
 *   `ApproximateNumberOfMessagesVisible`): the dashboard graphs them directly.
 *
 * Names: each metric has its CloudWatch name and its Prometheus name (`cronplane_` + snake case;
 * counters end in `_total`, times carry their unit `_ms`), listed in METRICS.
 */
import type { Execution } from '../executions/execution.ts';

export const NAMESPACE = 'Cronplane';

/** The `service` dimension (and the logs' `service`) of each function. */
export const SERVICES = {
  tick: 'cronplane-tick',
  events: 'cronplane-events',
  worker: 'cronplane-worker',
  api: 'cronplane-api',
} as const;

/** The final statuses `Executions` is counted by (TERMINAL in shared/executions/execution.ts). */
export const FINAL_STATUSES = ['succeeded', 'failed', 'timeout', 'lost', 'cancelled', 'skipped'] as const;

export type MetricKind = 'counter' | 'summary';

export interface MetricDef {
  /** CloudWatch (EMF) metric name. */
  readonly name: string;
  /** Prometheus name served by the local `GET /metrics`. */
  readonly prometheus: string;
  readonly unit: 'Count' | 'Milliseconds';
  /** counter: a sum; summary: a distribution (quantiles locally, percentiles in CloudWatch). */
  readonly kind: MetricKind;
  readonly help: string;
  /** The dimension (Prometheus label) it carries, if any. */
  readonly label?: 'status';
}

export const METRICS = {
  ticks: {
    name: 'Ticks',
    prometheus: 'cronplane_ticks_total',
    unit: 'Count',
    kind: 'counter',
    help: 'Scheduler passes that held the lease and planned or re-sent launches',
  },
  tickDuration: {
    name: 'TickDuration',
    prometheus: 'cronplane_tick_duration_ms',
    unit: 'Milliseconds',
    kind: 'summary',
    help: 'Time one scheduler pass that planned or re-sent launches took, lease to release',
  },
  jobsPlanned: {
    name: 'JobsPlanned',
    prometheus: 'cronplane_jobs_planned_total',
    unit: 'Count',
    kind: 'counter',
    help: 'Due jobs a scheduler pass planned',
  },
  launches: {
    name: 'Launches',
    prometheus: 'cronplane_launches_total',
    unit: 'Count',
    kind: 'counter',
    help: 'Launch messages sent by the scheduler (new and re-sent)',
  },
  executions: {
    name: 'Executions',
    prometheus: 'cronplane_executions_total',
    unit: 'Count',
    kind: 'counter',
    help: 'Finished executions by final status',
    label: 'status',
  },
  retries: {
    name: 'Retries',
    prometheus: 'cronplane_retries_total',
    unit: 'Count',
    kind: 'counter',
    help: 'Retries scheduled after a failed attempt',
  },
  launchLateness: {
    name: 'LaunchLateness',
    prometheus: 'cronplane_launch_lateness_ms',
    unit: 'Milliseconds',
    kind: 'summary',
    help: 'Start time minus fire time of finished executions that started',
  },
} as const satisfies Record<string, MetricDef>;

/** Where the domain records metrics (EMF on AWS, the Prometheus registry locally, nothing in tests). */
export interface MetricsSink {
  add(metric: MetricDef, value: number, labels?: Readonly<Record<string, string>>): void;
}

export const noMetrics: MetricsSink = { add: () => {} };

/**
 * One scheduler pass; passes that did not get the lease record nothing, nor do passes that planned and
 * re-sent nothing. CloudWatch bills a custom metric ($0.30 a month) for every hour it is published in: an
 * idle stack that published `JobsPlanned` and `Launches` zeros every minute paid $0.60 a month for two flat
 * lines, and `Ticks` and `TickDuration` every minute another $0.60 (bench figure `cost`, variant idle). That
 * the tick runs, and how long it takes, are Lambda's own free metrics of the tick function (`Invocations`,
 * `Duration`: the dashboard graphs those); `Ticks` and `TickDuration` count the passes that had work.
 */
export function recordTick(
  sink: MetricsSink,
  report: {
    readonly leader: boolean;
    readonly jobs: number;
    readonly planned: number;
    readonly resent: number;
  },
  durationMs: number,
): void {
  if (!report.leader) return;
  const launches = report.planned + report.resent;
  if (report.jobs === 0 && launches === 0) return;
  sink.add(METRICS.ticks, 1);
  sink.add(METRICS.tickDuration, Math.round(durationMs));
  if (report.jobs > 0) sink.add(METRICS.jobsPlanned, report.jobs);
  if (launches > 0) sink.add(METRICS.launches, launches);
}

/** One finished execution, once its reactions are done. */
export function recordFinish(
  sink: MetricsSink,
  e: Pick<Execution, 'status' | 'scheduledAt' | 'startedAt'>,
  retryScheduled: boolean,
): void {
  sink.add(METRICS.executions, 1, { status: e.status });
  if (retryScheduled) sink.add(METRICS.retries, 1);
  if (e.startedAt !== null) sink.add(METRICS.launchLateness, Math.max(0, e.startedAt - e.scheduledAt));
}
