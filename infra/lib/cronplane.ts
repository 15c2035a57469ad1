import type { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AgentGroup, Agents, type AgentTrust } from './agents.ts';
import { Alarms } from './alarms.ts';
import { Api } from './api.ts';
import { RuntimeBindings } from './bindings.ts';
import { Dashboard } from './dashboard.ts';
import { Dispatch } from './dispatch.ts';
import { Events } from './events.ts';
import { Notifications, type NotifyOn } from './notifications.ts';
import type { WorkerTargets } from './roles.ts';
import { Scheduler } from './scheduler.ts';
import { Storage, type StorageBilling } from './storage.ts';
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
  /**
   * Which finishes are published on the bus as `Execution Finished`: `failures` (every status but
   * `succeeded`) or `all`. Default: `all` with notifyOn `all`, else `failures` — EventBridge bills $1 per
   * million events, and with one per run that was the largest cost after DynamoDB's writes.
   */
  readonly publishFinished?: 'all' | 'failures';
  /** Removal policy of the tables. Default: RETAIN. */
  readonly tableRemovalPolicy?: RemovalPolicy;
  /** SSM path under which `{{ssm:…}}` secrets may be read. Default: `/cronplane/`. */
  readonly secretsPath?: string;
  /** Customer managed KMS keys of SecureString secrets (kms:Decrypt via SSM only). */
  readonly secretsKmsKeys?: readonly string[];
  /** What the worker may call; nothing of a kind that is absent. */
  readonly workerTargets?: WorkerTargets;
  /** Who besides EC2 may assume the agent roles. */
  readonly agentTrust?: AgentTrust;
  /** Agent groups by tag set: one role and instance profile each (see AgentGroup). */
  readonly agentGroups?: readonly { readonly name: string; readonly tags: Record<string, string> }[];
  /** API Gateway execution logging level. Default: off (it needs the account's API Gateway CloudWatch role). */
  readonly apiExecutionLogging?: 'ERROR' | 'INFO';
  /**
   * Due shards the jobs are spread over (1–64), each planned by its own tick invocation. Changeable on a
   * live stack: no fire time is lost (shared/scheduler/coordinator.ts). Default: 1.
   */
  readonly dueShards?: number;
  /**
   * Billing of the tables: on demand (the default: nothing to pay while idle), or provisioned capacity
   * auto scaled between `min` and `max` units at 70 % utilization, cheaper per write at steady high
   * volume (see Storage).
   */
  readonly billing?: StorageBilling;
  /**
   * Memory of the agentless worker function in MB (128–10,240). Default: 512. Its invocations are billed
   * mostly for holding launches to their fire time, which takes no CPU: 256 halves that price, at the cost
   * of half the CPU for each start (README, Cost).
   */
  readonly workerMemory?: number;
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
  /** the hosts' side: role, instance profile and environment for untagged `cronplane agent`s */
  readonly agents: Agents;
  /** roles of the agent groups by tag set (`agentGroups`), by name */
  readonly agentGroups: Record<string, AgentGroup>;
  /** job notifications: an SNS topic fed by a rule on the Execution Finished events */
  readonly notifications: Notifications;
  /** CloudWatch alarms and the SNS topic they notify */
  readonly alarms: Alarms;
  /** the CloudWatch dashboard: launches, lateness, executions by status, queues, errors */
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: CronplaneProps = {}) {
    super(scope, id);
    // Everything the functions' environment names comes first ...
    this.storage = new Storage(this, 'Storage', {
      removalPolicy: props.tableRemovalPolicy,
      billing: props.billing,
    });
    this.dispatch = new Dispatch(this, 'Dispatch');
    this.worker = new Worker(this, 'Worker', {
      deadLetterQueue: this.dispatch.deadLetterQueue,
      memorySize: props.workerMemory,
    });
    this.events = new Events(this, 'Events', { executions: this.storage.executions });
    this.scheduler = new Scheduler(this, 'Scheduler', { dueShards: props.dueShards });
    if (props.notifyOn === 'all' && props.publishFinished === 'failures') {
      throw new Error('notifyOn all needs every finish on the bus: publishFinished must be all (or unset)');
    }
    this.bindings = new RuntimeBindings({
      publishFinished: props.publishFinished ?? (props.notifyOn === 'all' ? 'all' : 'failures'),
      storage: this.storage,
      dispatch: this.dispatch,
      workerQueue: this.worker.queue,
      shardTickQueue: this.scheduler.shardTicks,
      dueShards: props.dueShards,
      eventBus: this.events.bus,
      secretsPath: props.secretsPath,
      secretsKmsKeys: props.secretsKmsKeys,
      workerTargets: props.workerTargets,
    });
    // ... then the functions, each with its own role (infra/lib/permissions.ts).
    this.worker.addHandler(this.bindings);
    this.events.addHandler(this.bindings);
    this.scheduler.addHandler(this.bindings);
    this.api = new Api(this, 'Api', {
      bindings: this.bindings,
      iamAuth: props.iamAuth,
      stageName: props.stageName,
      executionLogging: props.apiExecutionLogging,
    });
    this.agents = new Agents(this, 'Agents', { bindings: this.bindings, trust: props.agentTrust });
    this.agentGroups = {};
    for (const group of props.agentGroups ?? []) {
      if (!/^[A-Za-z0-9]+$/.test(group.name) || this.agentGroups[group.name]) {
        throw new Error(`context agentGroups: names must be unique and alphanumeric, got "${group.name}"`);
      }
      this.agentGroups[group.name] = new AgentGroup(this, `AgentGroup${group.name}`, {
        bindings: this.bindings,
        tags: group.tags,
        trust: props.agentTrust,
      });
    }
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
    this.dashboard = new Dashboard(this, 'Dashboard', {
      tick: this.scheduler.tick,
      events: this.events.handler,
      worker: this.worker.handler,
      api: this.api.handler,
      defaultQueue: this.dispatch.defaultQueue,
      workerQueue: this.worker.queue,
      deadLetterQueue: this.dispatch.deadLetterQueue,
    });
  }
}
