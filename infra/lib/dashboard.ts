import { Aws, Duration } from 'aws-cdk-lib';
import {
  Dashboard as CloudWatchDashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FINAL_STATUSES, METRICS, NAMESPACE, SERVICES } from '../../shared/metrics/metrics.ts';

export interface DashboardProps {
  readonly tick: IFunction;
  readonly events: IFunction;
  readonly worker: IFunction;
  readonly api: IFunction;
  /** The default dispatch queue (polled by every agent). */
  readonly defaultQueue: IQueue;
  /** The agentless worker's queue. */
  readonly workerQueue: IQueue;
  readonly deadLetterQueue: IQueue;
}

const PERIOD = Duration.minutes(1);

/**
 * One CloudWatch dashboard, `<stack>-cronplane`: the scheduler (ticks, jobs planned, launches, tick
 * duration), the runs (executions by final status, lost, retries, launch lateness p50/p99), the queues
 * (age of the oldest launch, tag-set queues included; dead letters) and the functions' errors. The
 * Cronplane metrics are the functions' EMF lines (shared/metrics/metrics.ts: namespace `Cronplane`,
 * dimensions `service` and `stack`); the queues' and functions' are AWS's own.
 */
export class Dashboard extends Construct {
  readonly dashboard: CloudWatchDashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const cronplane = (
      name: string,
      service: string,
      statistic: string,
      label: string,
      extra: Record<string, string> = {},
    ) =>
      new Metric({
        namespace: NAMESPACE,
        metricName: name,
        dimensionsMap: { service, stack: Aws.STACK_NAME, ...extra },
        statistic,
        period: PERIOD,
        label,
      });
    const tick = (name: string, statistic: string, label: string) =>
      cronplane(name, SERVICES.tick, statistic, label);
    const finishes = (name: string, statistic: string, label: string, extra?: Record<string, string>) =>
      cronplane(name, SERVICES.events, statistic, label, extra);
    const graph = (title: string, left: IMetric[], options: { stacked?: boolean; unit?: string } = {}) =>
      new GraphWidget({
        title,
        left,
        width: 8,
        height: 6,
        stacked: options.stacked ?? false,
        leftYAxis: options.unit ? { label: options.unit, showUnits: false } : undefined,
      });

    // Tag-set queues are created at run time (`<stack>-tags-<hash>`): a search finds them all.
    const tagQueuesAge = new MathExpression({
      expression: `SEARCH('{AWS/SQS,QueueName} MetricName="ApproximateAgeOfOldestMessage" "${Aws.STACK_NAME}-tags-"', 'Maximum', 60)`,
      usingMetrics: {},
      label: 'tag-set queues',
      period: PERIOD,
    });
    const lambdaErrors = (fn: IFunction, label: string) =>
      fn.metricErrors({ statistic: Stats.SUM, period: PERIOD, label });

    this.dashboard = new CloudWatchDashboard(this, 'Dashboard', {
      dashboardName: `${Aws.STACK_NAME}-cronplane`,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown:
              "**Cronplane**: the scheduler, the runs, the queues. Metrics: namespace `Cronplane`, from the functions' EMF log lines (see shared/metrics/metrics.ts); locally the same names as `GET /metrics`.",
            width: 24,
            height: 2,
          }),
        ],
        [
          graph('Launches and jobs planned (per minute)', [
            tick(METRICS.launches.name, Stats.SUM, 'launches sent'),
            tick(METRICS.jobsPlanned.name, Stats.SUM, 'jobs planned'),
            // Every pass, idle ones included: Lambda's own (free) metric, not a custom one.
            props.tick.metricInvocations({ statistic: Stats.SUM, period: PERIOD, label: 'ticks' }),
          ]),
          graph(
            'Launch lateness (start − fire time)',
            [
              finishes(METRICS.launchLateness.name, Stats.p(50), 'p50'),
              finishes(METRICS.launchLateness.name, Stats.p(99), 'p99'),
            ],
            { unit: 'ms' },
          ),
          graph(
            'Tick duration',
            [
              props.tick.metricDuration({ statistic: Stats.AVERAGE, period: PERIOD, label: 'average' }),
              props.tick.metricDuration({ statistic: Stats.MAXIMUM, period: PERIOD, label: 'maximum' }),
            ],
            { unit: 'ms' },
          ),
        ],
        [
          graph(
            'Executions by final status',
            FINAL_STATUSES.map((status) => finishes(METRICS.executions.name, Stats.SUM, status, { status })),
            { stacked: true },
          ),
          graph('Lost executions and retries', [
            finishes(METRICS.executions.name, Stats.SUM, 'lost', { status: 'lost' }),
            finishes(METRICS.retries.name, Stats.SUM, 'retries scheduled'),
          ]),
          graph('Lambda errors', [
            lambdaErrors(props.tick, 'tick'),
            lambdaErrors(props.events, 'events'),
            lambdaErrors(props.worker, 'worker'),
            lambdaErrors(props.api, 'api'),
          ]),
        ],
        [
          graph(
            'Queue age (oldest launch waiting)',
            [
              props.defaultQueue.metricApproximateAgeOfOldestMessage({
                statistic: Stats.MAXIMUM,
                period: PERIOD,
                label: 'default queue',
              }),
              props.workerQueue.metricApproximateAgeOfOldestMessage({
                statistic: Stats.MAXIMUM,
                period: PERIOD,
                label: 'worker queue',
              }),
              tagQueuesAge,
            ],
            { unit: 's' },
          ),
          graph('Dead-letter queue depth', [
            props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              statistic: Stats.MAXIMUM,
              period: PERIOD,
              label: 'launches in the DLQ',
            }),
          ]),
        ],
      ],
    });
  }
}
