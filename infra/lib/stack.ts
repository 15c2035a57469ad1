import { readFileSync } from 'node:fs';
import { App, type AppProps, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Cronplane, type CronplaneProps } from './cronplane.ts';
import { REPO_ROOT } from './function.ts';
import { acknowledgeNagFindings } from './nag.ts';
import { NETWORK_TARGET_KINDS, type WorkerTargets } from './roles.ts';

export interface CronplaneStackProps extends StackProps {
  readonly cronplane?: CronplaneProps;
}

export class CronplaneStack extends Stack {
  readonly cronplane: Cronplane;

  constructor(scope: Construct, id: string, props: CronplaneStackProps = {}) {
    super(scope, id, { description: 'Cronplane: distributed job scheduler (Dkron-compatible)', ...props });
    this.cronplane = new Cronplane(this, 'Cronplane', props.cronplane);
    acknowledgeNagFindings(this.cronplane, {
      iamAuth: props.cronplane?.iamAuth ?? true,
      executionLogging: props.cronplane?.apiExecutionLogging !== undefined,
    });
    const { storage, dispatch, worker, events, api, agents, bindings, alarms, notifications } =
      this.cronplane;
    new CfnOutput(this, 'ApiUrl', { value: api.url });
    new CfnOutput(this, 'JobsTable', { value: storage.jobs.tableName });
    new CfnOutput(this, 'ExecutionsTable', { value: storage.executions.tableName });
    new CfnOutput(this, 'AgentsTable', { value: storage.agents.tableName });
    new CfnOutput(this, 'ControlTable', { value: storage.control.tableName });
    new CfnOutput(this, 'DefaultQueueUrl', { value: dispatch.defaultQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueArn', { value: dispatch.deadLetterQueue.queueArn });
    new CfnOutput(this, 'WorkerQueueUrl', { value: worker.queue.queueUrl });
    new CfnOutput(this, 'EventBusName', { value: events.bus.eventBusName });
    new CfnOutput(this, 'OutputBucketName', { value: storage.outputBucket.bucketName });
    new CfnOutput(this, 'QueuePrefix', { value: bindings.queuePrefix });
    new CfnOutput(this, 'NotificationTopicArn', { value: notifications.topic.topicArn });
    new CfnOutput(this, 'AgentRoleArn', { value: agents.role.roleArn });
    new CfnOutput(this, 'AgentInstanceProfileName', { value: agents.instanceProfile.instanceProfileName });
    new CfnOutput(this, 'AgentEnvironment', {
      value: agents.environmentFile,
      description: "the agent's environment: KEY=value pairs, one per line once spaces become newlines",
    });
    for (const [name, group] of Object.entries(this.cronplane.agentGroups)) {
      new CfnOutput(this, `AgentGroup${name}RoleArn`, { value: group.role.roleArn });
      new CfnOutput(this, `AgentGroup${name}InstanceProfileName`, {
        value: group.instanceProfile.instanceProfileName,
      });
    }
    new CfnOutput(this, 'ApiAccessLogGroup', { value: api.accessLogs.logGroupName });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: alarms.topic.topicArn,
      description: 'SNS topic of the CloudWatch alarms (ALARM and OK): subscribe operators to it',
    });
  }
}

/** Default stack id (and CloudFormation stack name). Override with the `stackName` context value. */
export const DEFAULT_STACK_NAME = 'Cronplane';

/**
 * Adds the Cronplane stack to an app: the one definition that both `cdk synth/deploy` (infra/bin) and
 * the local provisioner (local/provision.ts) build.
 */
export function addCronplaneStack(app: App, props: CronplaneStackProps = {}): CronplaneStack {
  return new CronplaneStack(app, stackNameOf(app), {
    ...props,
    cronplane: { ...cronplanePropsFromContext(app), ...props.cronplane },
  });
}

function stackNameOf(app: App): string {
  return (app.node.tryGetContext('stackName') as string | undefined) ?? DEFAULT_STACK_NAME;
}

/** A context value given as JSON (`-c key='["a"]'`), a comma-separated list, or already parsed (cdk.json). */
function contextList(app: App, key: string): string[] | undefined {
  const value = app.node.tryGetContext(key) as unknown;
  if (value === undefined) return undefined;
  const parsed = typeof value === 'string' && value.trim().startsWith('[') ? parseJson(key, value) : value;
  const list = typeof parsed === 'string' ? parsed.split(',').map((v) => v.trim()) : parsed;
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw new Error(`context ${key}: must be a list of strings (JSON array or comma-separated)`);
  }
  return list as string[];
}

function contextObject(app: App, key: string): unknown {
  const value = app.node.tryGetContext(key) as unknown;
  return typeof value === 'string' ? parseJson(key, value) : value;
}

function parseJson(key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`context ${key}: not valid JSON: ${text}`);
  }
}

const isTrue = (v: unknown) => v === true || v === 'true';

/**
 * The stack's settings from the CDK context (`-c key=value` or cdk.json's `context`):
 * iamAuth, iamAuthDisabledAcknowledged, notifyOn, publishFinished, notifyEmail, secretsPath, secretsKmsKeys,
 * workerTargets, agentPrincipals, agentTrustAnchors, agentGroups, apiExecutionLogging, dueShards,
 * billing, provisionedMin, provisionedMax.
 */
export function cronplanePropsFromContext(app: App): CronplaneProps {
  const iamAuth = app.node.tryGetContext('iamAuth') as string | boolean | undefined;
  const iamAuthOff = iamAuth === false || iamAuth === 'false';
  if (iamAuthOff && !isTrue(app.node.tryGetContext('iamAuthDisabledAcknowledged'))) {
    throw new Error(
      'context iamAuth=false: the API would accept unsigned requests from anyone who can reach its URL: ' +
        'they could write jobs that run as root on every agent host, read every output and stop the scheduler. ' +
        'Put another guard in front of it (a private API, a WAF, an authorizer) and then deploy with ' +
        '-c iamAuth=false -c iamAuthDisabledAcknowledged=true.',
    );
  }
  const notifyOn = app.node.tryGetContext('notifyOn') as string | undefined;
  if (notifyOn !== undefined && notifyOn !== 'failure' && notifyOn !== 'all') {
    throw new Error(`context notifyOn: must be failure or all, got "${notifyOn}"`);
  }
  const publishFinished = app.node.tryGetContext('publishFinished') as string | undefined;
  if (publishFinished !== undefined && publishFinished !== 'failures' && publishFinished !== 'all') {
    throw new Error(`context publishFinished: must be failures or all, got "${publishFinished}"`);
  }
  if (publishFinished === 'failures' && notifyOn === 'all') {
    throw new Error('context publishFinished=failures: notifyOn=all needs every finish published (use all)');
  }
  const notifyEmail = app.node.tryGetContext('notifyEmail') as string | undefined;
  const secretsPath = app.node.tryGetContext('secretsPath') as string | undefined;
  const secretsKmsKeys = contextList(app, 'secretsKmsKeys');
  for (const key of secretsKmsKeys ?? []) {
    if (!/^arn:[^:]+:kms:[^:]+:\d{12}:key\/[0-9a-f-]+$/.test(key)) {
      throw new Error(
        `context secretsKmsKeys: "${key}" is not a KMS key ARN (arn:aws:kms:region:account:key/id)`,
      );
    }
  }
  const targets = contextObject(app, 'workerTargets');
  let workerTargets: WorkerTargets | undefined;
  if (targets !== undefined) {
    if (typeof targets !== 'object' || targets === null || Array.isArray(targets)) {
      throw new Error('context workerTargets: must be {"lambda":[…],"sqs":[…],"events":[…]}');
    }
    const t = targets as Record<string, unknown>;
    for (const [kind, list] of Object.entries(t)) {
      const network = (NETWORK_TARGET_KINDS as readonly string[]).includes(kind);
      if (!['lambda', 'sqs', 'events'].includes(kind) && !network) {
        throw new Error(
          `context workerTargets.${kind}: unknown kind (lambda, sqs, events, ${NETWORK_TARGET_KINDS.join(', ')})`,
        );
      }
      if (network) {
        if (
          !Array.isArray(list) ||
          !list.every((v) => typeof v === 'string' && /^(\[[^\]]+\]|[^\s:[\]]+):[0-9*]+$/.test(v))
        ) {
          throw new Error(`context workerTargets.${kind}: must be a list of host:port patterns (* allowed)`);
        }
        continue;
      }
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && v !== '' && v !== '*')) {
        throw new Error(`context workerTargets.${kind}: must be a list of names or ARNs, not "*"`);
      }
      if (kind !== 'lambda' && !list.every((v: string) => v.startsWith('arn:'))) {
        throw new Error(`context workerTargets.${kind}: must be ARNs`);
      }
    }
    workerTargets = t as WorkerTargets;
  }
  const agentPrincipals = contextList(app, 'agentPrincipals');
  const agentTrustAnchors = contextList(app, 'agentTrustAnchors');
  const groups = contextObject(app, 'agentGroups');
  if (
    groups !== undefined &&
    (!Array.isArray(groups) ||
      !groups.every(
        (g) =>
          typeof g?.name === 'string' &&
          typeof g.tags === 'object' &&
          g.tags !== null &&
          Object.values(g.tags).every((v) => typeof v === 'string'),
      ))
  ) {
    throw new Error('context agentGroups: must be [{"name":"web","tags":{"role":"web"}}, …]');
  }
  const apiExecutionLogging = app.node.tryGetContext('apiExecutionLogging') as string | undefined;
  if (
    apiExecutionLogging !== undefined &&
    apiExecutionLogging !== 'ERROR' &&
    apiExecutionLogging !== 'INFO'
  ) {
    throw new Error(`context apiExecutionLogging: must be ERROR or INFO, got "${apiExecutionLogging}"`);
  }
  const dueShardsValue = app.node.tryGetContext('dueShards') as string | number | undefined;
  const dueShards = dueShardsValue === undefined ? undefined : Number(dueShardsValue);
  if (dueShards !== undefined && !(Number.isInteger(dueShards) && dueShards >= 1 && dueShards <= 64)) {
    throw new Error(`context dueShards: must be a whole number from 1 to 64, got "${dueShardsValue}"`);
  }
  const workerMemoryValue = app.node.tryGetContext('workerMemory') as string | number | undefined;
  const workerMemory = workerMemoryValue === undefined ? undefined : Number(workerMemoryValue);
  if (
    workerMemory !== undefined &&
    !(Number.isInteger(workerMemory) && workerMemory >= 128 && workerMemory <= 10_240)
  ) {
    throw new Error(
      `context workerMemory: must be a whole number of MB from 128 to 10240, got "${workerMemoryValue}"`,
    );
  }
  const billing = contextBilling(app);
  return {
    ...(workerMemory === undefined ? {} : { workerMemory }),
    ...(dueShards === undefined ? {} : { dueShards }),
    ...(iamAuth === undefined ? {} : { iamAuth: !iamAuthOff }),
    ...(notifyOn === undefined ? {} : { notifyOn }),
    ...(publishFinished === undefined ? {} : { publishFinished }),
    ...(notifyEmail === undefined ? {} : { notifyEmail }),
    ...(secretsPath === undefined ? {} : { secretsPath }),
    ...(secretsKmsKeys === undefined ? {} : { secretsKmsKeys }),
    ...(workerTargets === undefined ? {} : { workerTargets }),
    ...(agentPrincipals || agentTrustAnchors
      ? { agentTrust: { principals: agentPrincipals, rolesAnywhereTrustAnchors: agentTrustAnchors } }
      : {}),
    ...(groups === undefined ? {} : { agentGroups: groups as CronplaneProps['agentGroups'] }),
    ...(apiExecutionLogging === undefined ? {} : { apiExecutionLogging }),
    ...(billing === undefined ? {} : { billing }),
  };
}

/**
 * `billing` (on-demand, the default, or provisioned) and, with provisioned only, the auto scaling bounds
 * `provisionedMin` (default 5) and `provisionedMax` (default 1000) of every table and index.
 */
function contextBilling(app: App): CronplaneProps['billing'] {
  const billing = app.node.tryGetContext('billing') as string | undefined;
  if (billing !== undefined && billing !== 'on-demand' && billing !== 'provisioned') {
    throw new Error(`context billing: must be on-demand or provisioned, got "${billing}"`);
  }
  const maxValue = app.node.tryGetContext('provisionedMax') as string | number | undefined;
  const minValue = app.node.tryGetContext('provisionedMin') as string | number | undefined;
  if (billing !== 'provisioned') {
    for (const [key, value] of [
      ['provisionedMax', maxValue],
      ['provisionedMin', minValue],
    ] as const) {
      if (value !== undefined) {
        throw new Error(
          `context ${key}: only with billing=provisioned, got billing "${billing ?? 'on-demand'}"`,
        );
      }
    }
    return billing === undefined ? undefined : { mode: 'on-demand' };
  }
  const max = maxValue === undefined ? 1000 : Number(maxValue);
  if (!(Number.isInteger(max) && max >= 1 && max <= 40_000)) {
    throw new Error(`context provisionedMax: must be a whole number from 1 to 40000, got "${maxValue}"`);
  }
  const min = minValue === undefined ? Math.min(5, max) : Number(minValue);
  if (!(Number.isInteger(min) && min >= 1 && min <= max)) {
    throw new Error(
      `context provisionedMin: must be a whole number from 1 to provisionedMax (${max}), got "${minValue}"`,
    );
  }
  return { mode: 'provisioned', min, max };
}

/** The `context` of cdk.json (feature flags): the CLI passes it to the app, an in-process synth must too. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(`${REPO_ROOT}cdk.json`, 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/**
 * A CDK app with cdk.json's context underneath `props.context` (and underneath whatever the CLI passes),
 * so that `cdk synth` and in-process synthesis (tests, local provisioning) build the same template.
 */
export function createCronplaneApp(props: AppProps = {}): App {
  return new App({ ...props, context: { ...cdkJsonContext(), ...props.context } });
}
