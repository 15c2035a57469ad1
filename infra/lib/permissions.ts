/**
 * The permission table: per role (the four functions and the agents), the actions it may issue and on
 * what. It is derived from the code (every `new XxxCommand(` each deployable reaches, see
 * test/unit/infra/source-scan.ts) and checked against it by test/unit/infra/permissions.test.ts in both
 * directions: every request the code can make is granted here or listed under `notGranted` with the
 * reason, and every grant here is one the code needs or says why it is there. infra/lib/roles.ts turns
 * it into IAM statements; test/unit/infra/iam-simulation.test.ts evaluates those with a policy simulator.
 */

/** What a grant names; infra/lib/roles.ts resolves each to ARNs (per role where it says so). */
export type ResourceRef =
  | 'jobs'
  /** the `byDue` index */
  | 'jobs/index'
  | 'executions'
  /** the `byActive` index */
  | 'executions/index'
  | 'agents'
  | 'control'
  /** the queues a role sends to or consumes: see `RolePermissions.queues` */
  | 'dispatchQueues'
  /** queues created at run time, `<stack>-tags-<hash>` */
  | 'tagSetQueues'
  | 'workerQueue'
  /** the scheduler's queue of shard ticks (Scheduler) */
  | 'shardTickQueue'
  | 'eventBus'
  /** `executions/*` in the output bucket */
  | 'outputObjects'
  /** `output/*` in the output bucket: the `s3` processor's default place (shared/processors/s3.ts) */
  | 'processorObjects'
  /** log groups under `/cronplane/`: the `cloudwatch` processor's default group (shared/processors/cloudwatch.ts) */
  | 'processorLogs'
  /** SSM parameters under the `secretsPath` context (default `/cronplane/`) */
  | 'secrets'
  /** the allow-list of the `workerTargets` context */
  | 'workerTargets.lambda'
  | 'workerTargets.sqs'
  | 'workerTargets.events';

export type RoleName = 'api' | 'tick' | 'worker' | 'events' | 'agent';

export interface Grant {
  readonly sid: string;
  readonly actions: readonly string[];
  readonly resources: readonly ResourceRef[];
  /** IAM `Condition` block, verbatim */
  readonly conditions?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
  /** Why a grant exists that no `new XxxCommand(` of the role's code explains (e.g. an event source). */
  readonly why?: string;
}

export interface NotGranted {
  readonly action: string;
  readonly resource: ResourceRef;
  readonly why: string;
}

export interface RolePermissions {
  /** the deployable's entry files (the scan starts there) */
  readonly entries: readonly string[];
  /**
   * What `dispatchQueues` means for this role: `planning` = the default queue, the worker queue and the
   * tag-set queues (api, tick, events send launches); `worker` = the worker queue; `group` = the queues
   * of the tag sets the agent group satisfies (AgentGroup).
   */
  readonly queues: 'planning' | 'worker' | 'group' | 'none';
  readonly grants: readonly Grant[];
  /** requests the scan finds in the role's code that the role must NOT be granted, and why */
  readonly notGranted: readonly NotGranted[];
}

/** Agentless executors (shared/executors/aws.ts) and SSM secrets reached only through an import. */
const EXECUTORS_IMPORTED_ONLY = (deployable: string): NotGranted[] =>
  (
    [
      ['lambda:InvokeFunction', 'workerTargets.lambda'],
      ['sqs:SendMessage', 'workerTargets.sqs'],
      ['events:PutEvents', 'workerTargets.events'],
      ['ssm:GetParameter', 'secrets'],
    ] as const
  ).map(([action, resource]) => ({
    action,
    resource,
    why: `${deployable} imports shared/executors/registry.ts (dispatch's isAgentless) but never runs an executor: only the worker and the agents do`,
  }));

/**
 * The pause flag read in a batch: ControlStore.isPaused reads through a ReadBatch only when its caller gives
 * one (a runner's read after a claim, with the jobs); the API and the tick never do and read it with GetItem.
 */
const PAUSE_READ_ALONE = (deployable: string): NotGranted => ({
  action: 'dynamodb:BatchGetItem',
  resource: 'control',
  why: `${deployable} reads the pause flag alone (GetItem): only a runner reads it together with the jobs it claimed`,
});

/**
 * The attributes of an Executions item that an agent writes: the claim (`status`, `claimedAt`,
 * `heartbeatAt`, `agentId`, `nodeName`, and `activeShard` when its message was delivered before),
 * heartbeats and `startedAt` (each setting `activeShard` if not set: a run that lives on enters
 * `byActive`), the result (`finishedAt`, `exitCode`, `success`, `output`, `outputTruncated`, `outputUrl`,
 * `reason`, `expiresAt`, removing `activeShard`), a
 * `replace` job's cancel request (`cancelRequested`, `cancelReason`). IAM requires the table's and its
 * indexes' key attributes in the list (`jobName`, `executionId`, `activeShard`, `scheduledAt`). Not in
 * it: `jobVersion`, `queueUrl`, `trigger`, `attempt`, `group`, `slot`, `countedAt`, `reactedAt` — an
 * agent cannot retarget an execution at another job version nor fake the reactions' bookkeeping.
 * Read from shared/executions/executions-store.ts: claim, claimMany, heartbeat, markStarted, finish,
 * end, markLost, requestCancel (test/unit/infra/permissions.test.ts checks the list against their
 * update expressions).
 */
export const AGENT_EXECUTION_ATTRIBUTES = [
  'jobName',
  'executionId',
  'activeShard',
  'scheduledAt',
  'status',
  'claimedAt',
  'heartbeatAt',
  'agentId',
  'nodeName',
  'startedAt',
  'finishedAt',
  'exitCode',
  'success',
  'output',
  'outputTruncated',
  'outputUrl',
  'reason',
  'processorErrors',
  'outputBytes',
  'expiresAt',
  'cancelRequested',
  'cancelReason',
] as const;

/**
 * Control items an agent writes: its concurrency locks (`lock#<job>`) and fan-out slots (`slot#…`). The
 * keys are shared/control/control-keys.ts's (CONTROL_KEY); test/unit/infra/iam-simulation.test.ts checks them.
 */
export const AGENT_CONTROL_LOCK_KEYS = ['lock#*'] as const;
export const AGENT_CONTROL_SLOT_KEYS = ['slot#*'] as const;
/** Tag-set queue registry entries (control-keys.ts `CONTROL_KEY.queue`): read when a queue-created hint comes. */
export const AGENT_CONTROL_REGISTRY_KEYS = ['queue#*'] as const;
/** The pause flag's key (control-keys.ts `CONTROL_KEY.pause`): read after a claim lands. */
export const AGENT_CONTROL_READ_KEYS = ['pause'] as const;

export const PERMISSIONS: Readonly<Record<RoleName, RolePermissions>> = {
  api: {
    entries: ['functions/api/handler.ts'],
    queues: 'planning',
    grants: [
      {
        sid: 'Jobs',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Scan'],
        resources: ['jobs'],
      },
      // The running executions (GET /v1/busy), named by the keys-only `byActive` index. (Until 12-07 the
      // api's code reached the tick's module for the lease's name, and with it the due-jobs read and the
      // lost sweep: `byDue`, the jobs' BatchGetItem and a Control DeleteItem, never called by the api.)
      { sid: 'ActiveIndex', actions: ['dynamodb:Query'], resources: ['executions/index'] },
      {
        sid: 'Executions',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:Query',
          'dynamodb:BatchWriteItem',
        ],
        resources: ['executions'],
        // BatchGetItem: the running executions (busy), named by the keys-only `byActive` index
      },
      {
        sid: 'Agents',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Scan'],
        resources: ['agents'],
        // GetItem: GET /health reads one key of each table
      },
      {
        sid: 'Control',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: ['control'],
      },
      { sid: 'Launches', actions: ['sqs:SendMessage'], resources: ['dispatchQueues'] },
      // GET /health reads the default queue's ARN
      { sid: 'QueueHealth', actions: ['sqs:GetQueueAttributes'], resources: ['dispatchQueues'] },
      { sid: 'TagSetQueues', actions: ['sqs:CreateQueue'], resources: ['tagSetQueues'] },
    ],
    notGranted: [...EXECUTORS_IMPORTED_ONLY('the api'), PAUSE_READ_ALONE('the api')],
  },
  tick: {
    entries: ['functions/tick/handler.ts'],
    queues: 'planning',
    grants: [
      {
        sid: 'Jobs',
        actions: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'],
        resources: ['jobs'],
        // BatchGetItem: the due jobs, named by the keys-only `byDue` index
      },
      { sid: 'Due', actions: ['dynamodb:Query'], resources: ['jobs/index', 'executions/index'] },
      {
        sid: 'Executions',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: ['executions'],
        // BatchGetItem: the runs the lost sweep checks, named by the keys-only `byActive` index
      },
      { sid: 'Agents', actions: ['dynamodb:Scan'], resources: ['agents'] },
      {
        sid: 'Control',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: ['control'],
      },
      { sid: 'Launches', actions: ['sqs:SendMessage'], resources: ['dispatchQueues'] },
      { sid: 'TagSetQueues', actions: ['sqs:CreateQueue'], resources: ['tagSetQueues'] },
      { sid: 'ShardTicks', actions: ['sqs:SendMessage'], resources: ['shardTickQueue'] },
      {
        sid: 'ShardTicksConsume',
        actions: [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:ChangeMessageVisibility',
        ],
        resources: ['shardTickQueue'],
        why: "Lambda's event source mapping polls the shard-tick queue with the function's role",
      },
    ],
    notGranted: [...EXECUTORS_IMPORTED_ONLY('the tick'), PAUSE_READ_ALONE('the tick')],
  },
  worker: {
    entries: ['functions/worker/handler.ts'],
    queues: 'worker',
    grants: [
      {
        sid: 'Jobs',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
        resources: ['jobs'],
      },
      {
        sid: 'Executions',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
        resources: ['executions'],
      },
      { sid: 'Agents', actions: ['dynamodb:Scan'], resources: ['agents'] },
      {
        sid: 'Control',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
        ],
        resources: ['control'],
        // BatchGetItem: the pause flag, read with the claimed launch's job (shared/aws/read-batch.ts)
      },
      {
        sid: 'WorkerQueueVisibility',
        actions: ['sqs:ChangeMessageVisibility'],
        resources: ['dispatchQueues'],
      },
      {
        sid: 'WorkerQueueConsume',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        resources: ['dispatchQueues'],
        why: "Lambda's event source mapping polls the worker queue with the function's role",
      },
      { sid: 'Output', actions: ['s3:PutObject'], resources: ['outputObjects'] },
      { sid: 'ProcessorOutput', actions: ['s3:PutObject'], resources: ['processorObjects'] },
      {
        sid: 'ProcessorLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: ['processorLogs'],
      },
      { sid: 'Secrets', actions: ['ssm:GetParameter'], resources: ['secrets'] },
      { sid: 'TargetFunctions', actions: ['lambda:InvokeFunction'], resources: ['workerTargets.lambda'] },
      { sid: 'TargetQueues', actions: ['sqs:SendMessage'], resources: ['workerTargets.sqs'] },
      { sid: 'TargetBuses', actions: ['events:PutEvents'], resources: ['workerTargets.events'] },
    ],
    notGranted: [],
  },
  events: {
    entries: ['functions/events/handler.ts'],
    queues: 'planning',
    grants: [
      {
        sid: 'Jobs',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: ['jobs'],
      },
      {
        sid: 'Executions',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:Query',
          'dynamodb:BatchWriteItem',
        ],
        resources: ['executions'],
      },
      { sid: 'Agents', actions: ['dynamodb:Scan'], resources: ['agents'] },
      { sid: 'Control', actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resources: ['control'] },
      { sid: 'Launches', actions: ['sqs:SendMessage'], resources: ['dispatchQueues'] },
      { sid: 'TagSetQueues', actions: ['sqs:CreateQueue'], resources: ['tagSetQueues'] },
      { sid: 'Bus', actions: ['events:PutEvents'], resources: ['eventBus'] },
    ],
    notGranted: EXECUTORS_IMPORTED_ONLY('the events function'),
  },
  agent: {
    entries: ['agent/cli.ts'],
    queues: 'group',
    grants: [
      {
        sid: 'JobsRead',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
        resources: ['jobs'],
      },
      {
        sid: 'ExecutionsRead',
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
        resources: ['executions'],
      },
      {
        sid: 'ExecutionsAgentFields',
        actions: ['dynamodb:UpdateItem'],
        resources: ['executions'],
        conditions: {
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': AGENT_EXECUTION_ATTRIBUTES },
        },
      },
      {
        sid: 'Members',
        actions: ['dynamodb:UpdateItem', 'dynamodb:Scan'],
        resources: ['agents'],
      },
      {
        sid: 'ControlRegistryRead',
        actions: ['dynamodb:Scan'],
        resources: ['control'],
        // the tag-set queue registry (Dispatcher.registry): reads only
      },
      {
        sid: 'ControlRegistryEntry',
        actions: ['dynamodb:GetItem'],
        resources: ['control'],
        // one new queue's entry, named by a queue-created hint (Dispatcher.registered)
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': AGENT_CONTROL_REGISTRY_KEYS } },
      },
      {
        sid: 'ControlLocks',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: ['control'],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': AGENT_CONTROL_LOCK_KEYS } },
      },
      {
        sid: 'ControlSlots',
        actions: ['dynamodb:PutItem'],
        resources: ['control'],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': AGENT_CONTROL_SLOT_KEYS } },
      },
      {
        sid: 'ControlPauseRead',
        // BatchGetItem: read with the claimed launches' jobs in one request (shared/aws/read-batch.ts)
        actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
        resources: ['control'],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': AGENT_CONTROL_READ_KEYS } },
      },
      {
        sid: 'GroupQueues',
        actions: [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:SendMessage',
        ],
        resources: ['dispatchQueues'],
        // SendMessage: a fan-out slot the agent may not take is handed back to the same queue.
      },
      { sid: 'Output', actions: ['s3:PutObject'], resources: ['outputObjects'] },
      { sid: 'ProcessorOutput', actions: ['s3:PutObject'], resources: ['processorObjects'] },
      {
        sid: 'ProcessorLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: ['processorLogs'],
      },
      { sid: 'Secrets', actions: ['ssm:GetParameter'], resources: ['secrets'] },
    ],
    notGranted: [
      {
        action: 'lambda:InvokeFunction',
        resource: 'workerTargets.lambda',
        why: 'agentless executors (lambda, sqs, eventbridge) run on the worker: dispatch sends those jobs to the worker queue, never to an agent',
      },
      {
        action: 'sqs:SendMessage',
        resource: 'workerTargets.sqs',
        why: 'agentless executors run on the worker, never on an agent',
      },
      {
        action: 'events:PutEvents',
        resource: 'workerTargets.events',
        why: 'agentless executors run on the worker, never on an agent',
      },
    ],
  },
};
