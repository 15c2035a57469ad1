import type { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Agents } from './agents.ts';
import { Alarms } from './alarms.ts';
import { Api } from './api.ts';
import { RuntimeBindings } from './bindings.ts';
import { Dispatch } from './dispatch.ts';
import { Events } from './events.ts';
import { Notifications, type NotifyOn } from './notifications.ts';
import { Scheduler } from './scheduler.ts';
import { Storage } from './storage.ts';
import { Worker } from './worker.ts';

export interface CronplaneProps {
  /** Require IAM (SigV4) signed API requests. Default: true. */
  readonly iamAuth?: boolean;
  /** API Gateway stage. Default: 'prod'. */
  readonly stageName?: string;
  /** Which finished runs the notification topic hears of. Default: 'failure' (final failures only). */
  readonly notifyOn?: NotifyOn;
  /** An e-mail address subscribed to the notification topic. */
  readonly notifyEmail?: string;
  /** Removal policy of the tables. Default: RETAIN. */
  readonly tableRemovalPolicy?: RemovalPolicy;
}

/**
 * The whole Cronplane control plane: tables, dispatch queues, the agentless worker, the reactions to
 * results with their event bus, the scheduler clock, the API and the alarms notifying an SNS topic.
 */
export class Cronplane extends Construct {
  readonly storage: Storage;
  readonly dispatch: Dispatch;
  readonly worker: Worker;
  readonly events: Events;
  /** environment variables and grants for any further function */
  readonly bindings: RuntimeBindings;
  readonly scheduler: Scheduler;
  readonly api: Api;
  /** the hosts' side: role, instance profile and environment for `cronplane agent` */
  readonly agents: Agents;
  /** job notifications: an SNS topic fed by a rule on the Execution Finished events */
  readonly notifications: Notifications;
  /** CloudWatch alarms and the SNS topic they notify */
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: CronplaneProps = {}) {
    super(scope, id);
    // Everything the functions' environment names comes first ...
    this.storage = new Storage(this, 'Storage', { removalPolicy: props.tableRemovalPolicy });
    this.dispatch = new Dispatch(this, 'Dispatch');
    this.worker = new Worker(this, 'Worker', { deadLetterQueue: this.dispatch.deadLetterQueue });
    this.events = new Events(this, 'Events', { executions: this.storage.executions });
    this.bindings = new RuntimeBindings({
      storage: this.storage,
      dispatch: this.dispatch,
      workerQueue: this.worker.queue,
      eventBus: this.events.bus,
    });
    // ... then the functions, all bound alike.
    this.worker.addHandler(this.bindings);
    this.events.addHandler(this.bindings);
    this.scheduler = new Scheduler(this, 'Scheduler', { bindings: this.bindings });
    this.api = new Api(this, 'Api', {
      bindings: this.bindings,
      iamAuth: props.iamAuth,
      stageName: props.stageName,
    });
    this.agents = new Agents(this, 'Agents', { bindings: this.bindings });
    this.notifications = new Notifications(this, 'Notifications', {
      bus: this.events.bus,
      on: props.notifyOn,
      email: props.notifyEmail,
    });
    this.alarms = new Alarms(this, 'Alarms', {
      tick: this.scheduler.tick,
      events: this.events.handler,
      worker: this.worker.handler,
      deadLetterQueue: this.dispatch.deadLetterQueue,
      apiStage: this.api.restApi.deploymentStage,
    });
  }
}
