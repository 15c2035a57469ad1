import type { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Api } from './api.ts';
import { RuntimeBindings } from './bindings.ts';
import { Dispatch } from './dispatch.ts';
import { Scheduler } from './scheduler.ts';
import { Storage } from './storage.ts';

export interface CronplaneProps {
  /** Require IAM (SigV4) signed API requests. Default: true. */
  readonly iamAuth?: boolean;
  /** API Gateway stage. Default: 'prod'. */
  readonly stageName?: string;
  /** Removal policy of the tables. Default: RETAIN. */
  readonly tableRemovalPolicy?: RemovalPolicy;
}

/** The whole Cronplane control plane: tables, dispatch queues, the scheduler clock and the API. */
export class Cronplane extends Construct {
  readonly storage: Storage;
  readonly dispatch: Dispatch;
  /** environment variables and grants for any further function (worker, events, ...) */
  readonly bindings: RuntimeBindings;
  readonly scheduler: Scheduler;
  readonly api: Api;

  constructor(scope: Construct, id: string, props: CronplaneProps = {}) {
    super(scope, id);
    this.storage = new Storage(this, 'Storage', { removalPolicy: props.tableRemovalPolicy });
    this.dispatch = new Dispatch(this, 'Dispatch');
    this.bindings = new RuntimeBindings(this.storage, this.dispatch);
    this.scheduler = new Scheduler(this, 'Scheduler', { bindings: this.bindings });
    this.api = new Api(this, 'Api', {
      bindings: this.bindings,
      iamAuth: props.iamAuth,
      stageName: props.stageName,
    });
  }
}
