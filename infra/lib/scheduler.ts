import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface SchedulerProps {
  /** How often EventBridge invokes the tick. Default: 1 minute (the tick plans a look-ahead window). */
  readonly interval?: Duration;
  /**
   * The due shards (`-c dueShards`, default 1). With one, the shard-tick queue gets no event source mapping
   * and the tick is not told its URL: an idle mapping long-polls its empty queue all month (~$0.26 of SQS
   * requests), and with one shard there is nothing to fan out. Shards left over from a larger count (they
   * are ticked until empty, coordinator.ts) are then ticked inside the coordinator's invocation.
   */
  readonly dueShards?: number;
}

const TICK_TIMEOUT = Duration.seconds(55);

/**
 * The clock: an EventBridge rule that invokes the `tick` function every minute, which ticks due shard 0
 * and sends one message per other due shard to the shard-tick queue; the queue invokes the same function
 * once per message (shared/scheduler/coordinator.ts). Every shard is planned under its own lease, so
 * shard ticks run side by side, in as many invocations as there are shards. With one due shard the queue
 * is left unmapped (see `SchedulerProps.dueShards`).
 *
 * Built in two steps like the worker, because every function's role names the queue: the constructor
 * creates the queue, `addHandler` the function.
 */
export class Scheduler extends Construct {
  readonly shardTicks: Queue;
  private readonly props: SchedulerProps;
  private fn: NodejsFunction | undefined;
  private clock: Rule | undefined;

  constructor(scope: Construct, id: string, props: SchedulerProps = {}) {
    super(scope, id);
    this.props = props;
    // A shard tick is worth one period: no redrive (a stale message is dropped by the function, the next
    // round sends a fresh one) and a short retention.
    this.shardTicks = new Queue(this, 'ShardTicks', {
      visibilityTimeout: TICK_TIMEOUT.plus(Duration.seconds(5)),
      retentionPeriod: Duration.minutes(5),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
  }

  addHandler(bindings: RuntimeBindings): NodejsFunction {
    if (this.fn) throw new Error(`${this.node.path}: the tick function exists already`);
    const fanOut = (this.props.dueShards ?? 1) > 1;
    const fn = new HandlerFunction(this, 'Tick', {
      entry: 'functions/tick/handler.ts',
      bindings,
      role: 'tick',
      description: 'Cronplane tick: plans due executions for the next window and dispatches them',
      timeout: TICK_TIMEOUT,
      environment: fanOut ? { CRONPLANE_SHARD_TICK_QUEUE_URL: this.shardTicks.queueUrl } : {},
    }).function;
    // One shard per invocation; a failed shard tick is not retried (the handler reports no failures).
    if (fanOut) fn.addEventSource(new SqsEventSource(this.shardTicks, { batchSize: 1 }));
    this.clock = new Rule(this, 'Clock', {
      description: 'Cronplane scheduler clock',
      schedule: Schedule.rate(this.props.interval ?? Duration.minutes(1)),
    });
    // A missed tick is caught up by the next one (the cursor lives in the Control table): no retries.
    this.clock.addTarget(new LambdaFunction(fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }));
    this.fn = fn;
    return fn;
  }

  /** The tick function; `addHandler` must have run. */
  get tick(): NodejsFunction {
    if (!this.fn) throw new Error(`${this.node.path}: addHandler() has not run yet`);
    return this.fn;
  }

  get rule(): Rule {
    if (!this.clock) throw new Error(`${this.node.path}: addHandler() has not run yet`);
    return this.clock;
  }
}
