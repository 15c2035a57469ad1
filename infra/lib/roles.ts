import { createHash } from 'node:crypto';
import { Arn, ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { Effect, type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { canonicalTagSet } from '../../shared/dispatch/dispatch.ts';
import type { Dispatch } from './dispatch.ts';
import { PERMISSIONS, type ResourceRef, type RoleName } from './permissions.ts';
import type { Storage } from './storage.ts';

/** Worker targets the `workerTargets` context allows (function names/ARNs may end in `*`). */
export interface WorkerTargets {
  readonly lambda?: readonly string[];
  readonly sqs?: readonly string[];
  readonly events?: readonly string[];
  /**
   * Servers (`host:port`, `*` matching anything) the worker's network executors and processors may reach:
   * checked by the worker itself (no IAM resource); a kind left out is not restricted.
   */
  readonly kafka?: readonly string[];
  readonly nats?: readonly string[];
  readonly rabbitmq?: readonly string[];
  readonly syslog?: readonly string[];
  readonly fluent?: readonly string[];
}

/** The allow-list kinds that are servers, not AWS resources. */
export const NETWORK_TARGET_KINDS = ['kafka', 'nats', 'rabbitmq', 'syslog', 'fluent'] as const;

/** What the permission table's references resolve to. */
export interface RoleResources {
  readonly storage: Storage;
  readonly dispatch: Dispatch;
  readonly workerQueue: IQueue;
  readonly shardTickQueue: IQueue;
  readonly eventBus: IEventBus;
  /** `/cronplane/`: SSM parameters readable as `{{ssm:…}}` secrets */
  readonly secretsPath: string;
  /** KMS keys of SecureString secrets (customer managed); kms:Decrypt only via SSM */
  readonly secretsKmsKeys: readonly string[];
  readonly workerTargets: WorkerTargets;
}

/** The name of the queue of a tag set (as shared/dispatch/dispatch.ts Dispatcher.queueFor names it). */
export function tagSetQueueName(prefix: string, selector: Record<string, string>): string {
  const tagSet = canonicalTagSet(selector);
  return `${prefix}tags-${createHash('sha256').update(tagSet).digest('hex').slice(0, 16)}`;
}

/**
 * Every non-empty subset of `tags`: the job selectors an agent carrying `tags` satisfies (a job's tags
 * must all match the agent's). 2^n - 1 of them, so a group is limited to MAX_GROUP_TAGS tags.
 */
export function satisfiedTagSets(tags: Record<string, string>): Record<string, string>[] {
  const keys = Object.keys(tags).sort();
  if (keys.length > MAX_GROUP_TAGS) {
    throw new Error(`agent group tags: at most ${MAX_GROUP_TAGS} tags (2^n queue names), got ${keys.length}`);
  }
  const out: Record<string, string>[] = [];
  for (let mask = 1; mask < 1 << keys.length; mask++) {
    out.push(Object.fromEntries(keys.filter((_, i) => mask & (1 << i)).map((k) => [k, tags[k] as string])));
  }
  return out;
}
/** 2^6 - 1 = 63 queue ARNs in one statement, well inside the role policy size limit. */
export const MAX_GROUP_TAGS = 6;

export const queuePrefix = (): string => `${Aws.STACK_NAME}-`;

function queueArn(scope: Construct, name: string): string {
  return Arn.format(
    { service: 'sqs', resource: name, arnFormat: ArnFormat.NO_RESOURCE_NAME },
    Stack.of(scope),
  );
}

function lambdaArns(scope: Construct, target: string): string[] {
  const arn = target.startsWith('arn:')
    ? target
    : Arn.format(
        {
          service: 'lambda',
          resource: 'function',
          resourceName: target,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        },
        Stack.of(scope),
      );
  // the function and its versions / aliases
  return arn.endsWith('*') ? [arn] : [arn, `${arn}:*`];
}

/**
 * Resolves the permission table's references for one role to ARNs. `groupTags` is the agent group's tag
 * set (agents only): its queues are the default queue and the queues of every subset of its tags.
 */
export function resolveRef(
  scope: Construct,
  role: RoleName,
  ref: ResourceRef,
  r: RoleResources,
  groupTags: Record<string, string> = {},
): string[] {
  const { storage, dispatch } = r;
  switch (ref) {
    case 'jobs':
      return [storage.jobs.tableArn];
    case 'jobs/index':
      return [`${storage.jobs.tableArn}/index/byDue`];
    case 'executions':
      return [storage.executions.tableArn];
    case 'executions/index':
      return [`${storage.executions.tableArn}/index/byActive`];
    case 'agents':
      return [storage.agents.tableArn];
    case 'control':
      return [storage.control.tableArn];
    case 'tagSetQueues':
      return [queueArn(scope, `${queuePrefix()}tags-*`)];
    case 'workerQueue':
      return [r.workerQueue.queueArn];
    case 'shardTickQueue':
      return [r.shardTickQueue.queueArn];
    case 'eventBus':
      return [r.eventBus.eventBusArn];
    case 'outputObjects':
      return [storage.outputBucket.arnForObjects('executions/*')];
    case 'processorObjects':
      return [storage.outputBucket.arnForObjects('output/*')];
    case 'processorLogs':
      // The groups and, after a colon, their streams: `log-group:/cronplane/jobs:log-stream:<job>`.
      return [
        Arn.format(
          {
            service: 'logs',
            resource: 'log-group',
            resourceName: '/cronplane/*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          },
          Stack.of(scope),
        ),
      ];
    case 'secrets':
      return [
        Arn.format(
          { service: 'ssm', resource: 'parameter', resourceName: `${r.secretsPath.slice(1)}*` },
          Stack.of(scope),
        ),
      ];
    case 'workerTargets.lambda':
      return (r.workerTargets.lambda ?? []).flatMap((t) => lambdaArns(scope, t));
    case 'workerTargets.sqs':
      return [...(r.workerTargets.sqs ?? [])];
    case 'workerTargets.events':
      return [...(r.workerTargets.events ?? [])];
    case 'dispatchQueues': {
      const mode = PERMISSIONS[role].queues;
      if (mode === 'planning') {
        return [
          dispatch.defaultQueue.queueArn,
          r.workerQueue.queueArn,
          queueArn(scope, `${queuePrefix()}tags-*`),
        ];
      }
      if (mode === 'worker') return [r.workerQueue.queueArn];
      if (mode === 'group') {
        return [
          dispatch.defaultQueue.queueArn,
          ...satisfiedTagSets(groupTags).map((s) => queueArn(scope, tagSetQueueName(queuePrefix(), s))),
        ];
      }
      return [];
    }
  }
}

/** Services whose requests from our roles must use TLS (queues created at run time carry no policy). */
const TLS_ONLY_SERVICES = ['dynamodb:*', 'sqs:*', 's3:*', 'ssm:*', 'events:*', 'lambda:*', 'kms:*'];

/** The IAM statements of one role, from the permission table. */
export function statementsFor(
  scope: Construct,
  role: RoleName,
  r: RoleResources,
  groupTags: Record<string, string> = {},
): PolicyStatement[] {
  const out: PolicyStatement[] = [];
  for (const grant of PERMISSIONS[role].grants) {
    const resources = grant.resources.flatMap((ref) => resolveRef(scope, role, ref, r, groupTags));
    // an empty allow-list (no workerTargets of a kind) grants nothing
    if (resources.length === 0) continue;
    out.push(
      new PolicyStatement({
        sid: grant.sid,
        actions: [...grant.actions],
        resources,
        ...(grant.conditions ? { conditions: grant.conditions as Record<string, unknown> } : {}),
      }),
    );
    if (grant.resources.includes('secrets') && r.secretsKmsKeys.length > 0) {
      out.push(
        new PolicyStatement({
          sid: `${grant.sid}Decrypt`,
          actions: ['kms:Decrypt'],
          resources: [...r.secretsKmsKeys],
          conditions: { StringEquals: { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
  }
  // Our own requests go over TLS only, to every service, whatever the resource's own policy says.
  out.push(
    new PolicyStatement({
      sid: 'DenyInsecureTransport',
      effect: Effect.DENY,
      actions: TLS_ONLY_SERVICES,
      resources: ['*'],
      conditions: { Bool: { 'aws:SecureTransport': 'false' } },
    }),
  );
  return out;
}

/** Adds a role's statements to a grantee (a function's role, an agent group's role). */
export function grantRole(
  grantee: IGrantable,
  scope: Construct,
  role: RoleName,
  r: RoleResources,
  groupTags: Record<string, string> = {},
): void {
  for (const statement of statementsFor(scope, role, r, groupTags)) {
    grantee.grantPrincipal.addToPrincipalPolicy(statement);
  }
}
