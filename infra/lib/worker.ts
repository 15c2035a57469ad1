import { Duration } from 'aws-cdk-lib';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { WORKER_BATCH_SIZE, WORKER_BATCH_WINDOW_SECONDS } from '../../shared/dispatch/dispatch.ts';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface WorkerProps {
  /** Where messages go after `maxReceiveCount` failed receives (the dispatch DLQ). */
  readonly deadLetterQueue: IQueue;
  /** Default: 5. */
  readonly maxReceiveCount?: number;
  /** Function timeout; the queue's visibility timeout is this plus one minute. Default: 900 s. */
  readonly timeout?: Duration;
  /** Default: 512 MB. */
  readonly memorySize?: number;
}

/**
 * Execution without hosts: the `worker` function runs the agentless executors (HTTP and the AWS-native
 * `lambda` invoke, `sqs` / `eventbridge` publish) for the messages of its own queue, up to ten an
 * invocation. Launches of one fire second become visible together and mostly arrive in one batch: the
 * invocation holds to their fire time once for all of them (Lambda bills the hold), and each record is
 * claimed, run and answered on its own (a failed or early one is a batch item failure).
 *
 * Built in two steps, because every function's environment names this queue: the constructor creates
 * the queue, `addHandler` the function (once the RuntimeBindings exist).
 */
export class Worker extends Construct {
  readonly queue: Queue;
  private readonly props: WorkerProps;
  private fn: NodejsFunction | undefined;

  constructor(scope: Construct, id: string, props: WorkerProps) {
    super(scope, id);
    this.props = props;
    const timeout = props.timeout ?? Duration.seconds(900);
    this.queue = new Queue(this, 'WorkerQueue', {
      // Longer than the function may run, so a message is not handed out again while it still runs.
      visibilityTimeout: timeout.plus(Duration.seconds(60)),
      retentionPeriod: Duration.days(4),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: props.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });
  }

  /** Creates the worker function (once), bound like every other function and fed by the queue. */
  addHandler(bindings: RuntimeBindings): NodejsFunction {
    if (this.fn) throw new Error(`${this.node.path}: the worker function exists already`);
    const fn = new HandlerFunction(this, 'Handler', {
      entry: 'functions/worker/handler.ts',
      bindings,
      role: 'worker',
      environment: bindings.workerEnvironment,
      description: 'Cronplane worker: runs agentless executions (http, lambda, sqs, eventbridge)',
      timeout: this.props.timeout ?? Duration.seconds(900),
      memorySize: this.props.memorySize ?? 512,
    }).function;
    // A batching window: launches made visible together are gathered into one invocation, which holds once
    // for all of them (without it a receive answers with the first visible launch: ~1 an invocation). The
    // planner makes the worker's launches visible the window and a start margin early, at a chosen phase of
    // the second (shared/dispatch/dispatch.ts: workerLeadMs, phaseWaitMs).
    fn.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: WORKER_BATCH_SIZE,
        maxBatchingWindow: Duration.seconds(WORKER_BATCH_WINDOW_SECONDS),
        reportBatchItemFailures: true,
      }),
    );
    // The targets the executors may call come from the `workerTargets` allow-list (permissions.ts).
    this.fn = fn;
    return fn;
  }

  /** The worker function; `addHandler` must have run. */
  get handler(): NodejsFunction {
    if (!this.fn) throw new Error(`${this.node.path}: addHandler() has not run yet`);
    return this.fn;
  }
}
