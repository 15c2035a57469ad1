import { Duration } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import type { RuntimeBindings } from './bindings.ts';
import { HandlerFunction } from './function.ts';

export interface SchedulerProps {
  readonly bindings: RuntimeBindings;
  /** How often EventBridge invokes the tick. Default: 1 minute (the tick plans a look-ahead window). */
  readonly interval?: Duration;
}

/** The clock: an EventBridge rule that invokes the `tick` function every minute. */
export class Scheduler extends Construct {
  readonly tick: NodejsFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: SchedulerProps) {
    super(scope, id);
    this.tick = new HandlerFunction(this, 'Tick', {
      entry: 'functions/tick/handler.ts',
      bindings: props.bindings,
      role: 'tick',
      description: 'Cronplane tick: plans due executions for the next window and dispatches them',
      timeout: Duration.seconds(55),
    }).function;
    this.rule = new Rule(this, 'Clock', {
      description: 'Cronplane scheduler clock',
      schedule: Schedule.rate(props.interval ?? Duration.minutes(1)),
    });
    // A missed tick is caught up by the next one (the cursor lives in the Control table): no retries.
    this.rule.addTarget(
      new LambdaFunction(this.tick, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
    );
  }
}
