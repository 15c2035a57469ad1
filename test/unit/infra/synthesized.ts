/**
 * The synthesized template with CloudFormation's intrinsics resolved to concrete ARNs, as a deployment
 * named `Cronplane` in account 111122223333 / eu-west-1 would have them: physical names are the logical
 * ids (lower case for the bucket). For evaluating the roles' policies with a simulator.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { addCronplaneStack, createCronplaneApp } from '../../../infra/lib/stack.ts';

export const ACCOUNT = '111122223333';
export const REGION = 'eu-west-1';
export const STACK = 'Cronplane';

type Json = unknown;
interface Resource {
  Type: string;
  Properties?: Record<string, any>;
}

export function synthTemplate(context: Record<string, unknown> = {}): Record<string, any> {
  const app = createCronplaneApp({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  return Template.fromStack(addCronplaneStack(app)).toJSON();
}

export class Resolver {
  readonly resources: Record<string, Resource>;

  constructor(template: Record<string, any>) {
    this.resources = template.Resources;
  }

  physicalName(id: string): string {
    const r = this.resources[id];
    if (!r) throw new Error(`no resource ${id}`);
    if (r.Type === 'AWS::S3::Bucket') return id.toLowerCase();
    if (r.Type === 'AWS::Events::EventBus') return this.resolve(r.Properties?.Name) as string;
    return id;
  }

  arn(id: string, attribute = 'Arn'): string {
    const r = this.resources[id];
    const name = this.physicalName(id);
    const where = `${REGION}:${ACCOUNT}`;
    switch (r?.Type) {
      case 'AWS::DynamoDB::Table':
        return attribute === 'StreamArn'
          ? `arn:aws:dynamodb:${where}:table/${name}/stream/2026-01-01T00:00:00.000`
          : `arn:aws:dynamodb:${where}:table/${name}`;
      case 'AWS::SQS::Queue':
        if (attribute === 'QueueName') return name;
        return `arn:aws:sqs:${where}:${name}`;
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::Events::EventBus':
        return `arn:aws:events:${where}:event-bus/${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${where}:${name}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${where}:function:${name}`;
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${where}:log-group:${name}:*`;
      default:
        throw new Error(`no ARN for ${id} (${r?.Type})`);
    }
  }

  ref(id: string): string {
    switch (id) {
      case 'AWS::StackName':
        return STACK;
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
    }
    const r = this.resources[id];
    if (r?.Type === 'AWS::SQS::Queue') return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${id}`;
    if (r?.Type === 'AWS::SNS::Topic') return this.arn(id);
    return this.physicalName(id);
  }

  resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, Json>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const arg = obj[k];
      if (k === 'Ref') return this.ref(arg as string);
      if (k === 'Fn::GetAtt') {
        const [id, attribute] = arg as [string, string];
        return this.arn(id, attribute);
      }
      if (k === 'Fn::Join') {
        const [sep, parts] = arg as [string, Json[]];
        return parts.map((p) => this.resolve(p)).join(sep);
      }
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(obj[k])]));
  }

  /** The resolved identity policies attached to a role. */
  policiesOf(roleId: string): { name: string; policy: any }[] {
    return Object.entries(this.resources)
      .filter(
        ([, r]) =>
          r.Type === 'AWS::IAM::Policy' &&
          ((r.Properties?.Roles ?? []) as { Ref: string }[]).some((ref) => ref.Ref === roleId),
      )
      .map(([id, r]) => ({ name: id, policy: this.resolve(r.Properties?.PolicyDocument) }));
  }

  idsOf(type: string, match: (id: string, r: Resource) => boolean = () => true): string[] {
    return Object.entries(this.resources)
      .filter(([id, r]) => r.Type === type && match(id, r))
      .map(([id]) => id);
  }

  one(type: string, match: (id: string, r: Resource) => boolean): string {
    const ids = this.idsOf(type, match);
    if (ids.length !== 1) throw new Error(`${type}: ${ids.length} matches`);
    return ids[0] as string;
  }
}
