import { Aws, Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import { TERMINAL } from '../../shared/executions/execution.ts';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface EventsProps {
  /** The Executions table; its stream (NEW_AND_OLD_IMAGES) feeds the `events` function. */
  readonly executions: ITable;
  /** Default: `<stackName>-events`. */
  readonly eventBusName?: string;
}

/**
 * Reactions to results: the `events` function on the Executions table's stream (counters, retries,
 * dependent jobs, retention) and the EventBridge bus it publishes `Execution Finished` events to.
 *
 * Built in two steps, because every function's environment names the bus: the constructor creates the
 * bus, `addHandler` the function (once the RuntimeBindings exist).
 */
export class Events extends Construct {
  readonly bus: EventBus;
  private readonly props: EventsProps;
  private fn: NodejsFunction | undefined;

  constructor(scope: Construct, id: string, props: EventsProps) {
    super(scope, id);
    this.props = props;
    this.bus = new EventBus(this, 'EventBus', {
      eventBusName: props.eventBusName ?? `${Aws.STACK_NAME}-events`,
      description: 'Cronplane: Execution Finished events',
    });
  }

  /** Creates the events function (once), bound like every other function and fed by the stream. */
  addHandler(bindings: RuntimeBindings): NodejsFunction {
    if (this.fn) throw new Error(`${this.node.path}: the events function exists already`);
    const fn = new HandlerFunction(this, 'Handler', {
      entry: 'functions/events/handler.ts',
      bindings,
      role: 'events',
      description: 'Cronplane events: reacts to finished executions (Executions table stream)',
      timeout: Duration.seconds(60),
    }).function;
    const finished = [...TERMINAL];
    fn.addEventSource(
      new DynamoEventSource(this.props.executions, {
        startingPosition: StartingPosition.LATEST,
        batchSize: 100,
        bisectBatchOnError: true,
        retryAttempts: 10,
        reportBatchItemFailures: true,
        // Only finishes (shared/events/stream.ts: a non-terminal status, or none, becoming terminal)
        // invoke the function; scheduled/running writes, bookkeeping on finished items and deletions
        // (retention, TTL) do not.
        filters: [
          FilterCriteria.filter({
            eventName: ['INSERT'],
            dynamodb: { NewImage: { status: { S: finished } } },
          }),
          FilterCriteria.filter({
            eventName: ['MODIFY'],
            dynamodb: {
              NewImage: { status: { S: finished } },
              OldImage: { status: { S: [{ 'anything-but': finished }] } },
            },
          }),
        ],
      }),
    );
    this.fn = fn;
    return fn;
  }

  /** The events function; `addHandler` must have run. */
  get handler(): NodejsFunction {
    if (!this.fn) throw new Error(`${this.node.path}: addHandler() has not run yet`);
    return this.fn;
  }
}
