import { readFileSync } from 'node:fs';
import { App, type AppProps, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Cronplane, type CronplaneProps } from './cronplane.ts';
import { REPO_ROOT } from './function.ts';

export interface CronplaneStackProps extends StackProps {
  readonly cronplane?: CronplaneProps;
}

export class CronplaneStack extends Stack {
  readonly cronplane: Cronplane;

  constructor(scope: Construct, id: string, props: CronplaneStackProps = {}) {
    super(scope, id, { description: 'Cronplane: distributed job scheduler (Dkron-compatible)', ...props });
    this.cronplane = new Cronplane(this, 'Cronplane', props.cronplane);
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
  const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? DEFAULT_STACK_NAME;
  const iamAuth = app.node.tryGetContext('iamAuth') as string | boolean | undefined;
  const notifyOn = app.node.tryGetContext('notifyOn') as string | undefined;
  if (notifyOn !== undefined && notifyOn !== 'failure' && notifyOn !== 'all') {
    throw new Error(`context notifyOn: must be failure or all, got "${notifyOn}"`);
  }
  const notifyEmail = app.node.tryGetContext('notifyEmail') as string | undefined;
  return new CronplaneStack(app, stackName, {
    ...props,
    cronplane: {
      ...(iamAuth === undefined ? {} : { iamAuth: iamAuth !== false && iamAuth !== 'false' }),
      ...(notifyOn === undefined ? {} : { notifyOn }),
      ...(notifyEmail === undefined ? {} : { notifyEmail }),
      ...props.cronplane,
    },
  });
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
