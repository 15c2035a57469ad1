import { Aws, Duration } from 'aws-cdk-lib';
import type { Stage } from 'aws-cdk-lib/aws-apigateway';
import { Alarm, ComparisonOperator, type IMetric, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface AlarmsProps {
  /** The tick function (EventBridge invokes it once a minute). */
  readonly tick: IFunction;
  /** The events function (Executions table stream). */
  readonly events: IFunction;
  /** The worker function (worker queue). */
  readonly worker: IFunction;
  /** The dispatch dead-letter queue (every dispatch queue, tag-set ones included, and the worker queue). */
  readonly deadLetterQueue: IQueue;
  /** The REST API's stage (5XX errors). */
  readonly apiStage: Stage;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * What an operator of the scheduler must know about, as CloudWatch alarms that notify one SNS topic (on
 * ALARM and back to OK): the clock stopped or failing, launches in the dead-letter queue, the reactions
 * (events function) failing or falling behind, the worker failing, and the API answering 5XX.
 */
export class Alarms extends Construct {
  /** Subscribe operators (e-mail, chat, paging) to this topic. */
  readonly topic: Topic;
  /** The tick stopped or keeps failing. */
  readonly tick: Alarm;
  readonly deadLetters: Alarm;
  readonly eventsErrors: Alarm;
  readonly eventsIteratorAge: Alarm;
  readonly workerErrors: Alarm;
  readonly api5xx: Alarm;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', { displayName: 'Cronplane alarms', enforceSSL: true });
    const action = new SnsAction(this.topic);
    const alarm = (
      alarmId: string,
      suffix: string,
      metric: IMetric,
      options: {
        threshold: number;
        comparison: ComparisonOperator;
        description: string;
        missing?: TreatMissingData;
        evaluationPeriods?: number;
        datapointsToAlarm?: number;
      },
    ): Alarm => {
      const created = new Alarm(this, alarmId, {
        alarmName: `${Aws.STACK_NAME}-${suffix}`,
        alarmDescription: options.description,
        metric,
        threshold: options.threshold,
        comparisonOperator: options.comparison,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        datapointsToAlarm: options.datapointsToAlarm,
        treatMissingData: options.missing ?? TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      return created;
    };
    const GTE = ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;

    // One alarm for the clock, stopped or failing. Lambda publishes `Errors` for every invocation (0 or 1),
    // so a minute without a datapoint is a minute without a tick: missing data breaches. A failed tick is
    // caught up by the next one (the cursor lives in the Control table), so one or two bad minutes heal
    // themselves: the alarm wants 3 of the last 5 minutes without a good tick (a stopped clock is seen
    // after 3 minutes; two alarms for the two cases, as before, cost twice as much idle).
    this.tick = alarm(
      'Tick',
      'tick',
      props.tick.metricErrors({ period: Duration.minutes(1), statistic: Stats.SUM }),
      {
        threshold: 1,
        comparison: GTE,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        missing: TreatMissingData.BREACHING,
        description:
          'The scheduler is not ticking: in 3 of the last 5 minutes the tick function was not invoked or ' +
          'failed, although EventBridge invokes it every minute; launches are late or missing meanwhile. ' +
          "Check the function's Invocations and Errors metrics: no invocations → the clock rule " +
          '(Scheduler/Clock) is disabled or no longer targets the function, or the function is throttled ' +
          '(reserved concurrency); errors → its logs, and the Jobs and Control tables (throttling, a job ' +
          'that cannot be planned).',
      },
    );
    this.deadLetters = alarm(
      'DeadLetters',
      'dead-letters',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: FIVE_MINUTES,
        statistic: Stats.MAXIMUM,
      }),
      {
        threshold: 1,
        comparison: GTE,
        description:
          'Launches in the dead-letter queue: messages no agent or worker could process after 5 receives ' +
          '(no agent for the tag set, a crashing agent, a failing worker). Read the messages, fix the ' +
          'cause, then redrive or purge the queue: the alarm stays on while it holds messages.',
      },
    );
    this.eventsErrors = alarm(
      'EventsErrors',
      'events-errors',
      props.events.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }),
      {
        threshold: 1,
        comparison: GTE,
        description:
          'The events function failed on the Executions stream: counters, retries, dependent jobs and ' +
          'Execution Finished events wait for it, and records are dropped after 10 retries. Look at the ' +
          "events function's logs.",
      },
    );
    this.eventsIteratorAge = alarm(
      'EventsIteratorAge',
      'events-behind',
      props.events.metric('IteratorAge', { period: FIVE_MINUTES, statistic: Stats.MAXIMUM }),
      {
        threshold: Duration.minutes(5).toMilliseconds(),
        comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
        description:
          'The events function is more than 5 minutes behind the Executions stream: retries, dependent ' +
          'jobs and counters are late (records expire from the stream after 24 hours). Look at its ' +
          'errors, duration and throttles.',
      },
    );
    // Job failures are execution results, not function errors: these are throws and timeouts.
    this.workerErrors = alarm(
      'WorkerErrors',
      'worker-errors',
      props.worker.metricErrors({ period: FIVE_MINUTES, statistic: Stats.SUM }),
      {
        threshold: 1,
        comparison: GTE,
        description:
          'The worker function failed (threw or timed out; failed jobs are not errors): agentless ' +
          "executions are retried and may end in the dead-letter queue. Look at the worker function's logs.",
      },
    );
    // 5XX covers the api function's errors (502), timeouts (504) and its own 500 answers alike.
    this.api5xx = alarm(
      'Api5xx',
      'api-5xx',
      props.apiStage.metricServerError({ period: FIVE_MINUTES, statistic: Stats.SUM }),
      {
        threshold: 5,
        comparison: GTE,
        description:
          'The REST API answered 5 or more 5XX errors in 5 minutes: clients (CLI, Dkron tooling) fail. ' +
          "Look at the api function's logs, errors and throttles.",
      },
    );
  }
}
