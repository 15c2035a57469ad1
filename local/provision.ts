/**
 * Provisions the local emulators from the synthesized CDK template: the CDK app is the single source of
 * truth for tables, indexes, streams, TTLs, queues and event buses, and for the CRONPLANE_* environment
 * the functions get. Nothing here lists a table, a queue or a bus by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateEventBusCommand,
  DescribeEventBusCommand,
  type EventBridgeClient,
} from '@aws-sdk/client-eventbridge';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { addCronplaneStack, createCronplaneApp } from '../infra/lib/stack.ts';

export interface LocalResources {
  /** env for handlers/agents: the CRONPLANE_* variables of the functions, resolved to local names/urls */
  readonly env: Record<string, string>;
  /** logical id -> local table name */
  readonly tables: Record<string, string>;
  /** logical id -> local queue url */
  readonly queues: Record<string, string>;
  /** logical id -> local event bus name (also without an EventBridge client, when none was created) */
  readonly buses: Record<string, string>;
  /** logical id -> local bucket name (also without an S3 client, when none was created) */
  readonly buckets: Record<string, string>;
}

export interface ProvisionClients {
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  /** Creates the template's event buses (moto); without it buses are skipped, their names still resolve. */
  readonly eventbridge?: EventBridgeClient | undefined;
  /** Creates the template's S3 buckets (moto); without it buckets are skipped, their names still resolve. */
  readonly s3?: S3Client | undefined;
}

export interface ProvisionOptions {
  /** prepended to every table, queue and bus name, e.g. `cronplane-` gives `cronplane-Jobs`; also the local stack name (without the trailing dash) */
  prefix: string;
  log?: (line: string) => void;
  /** the template to provision; default: synthTemplate() */
  template?: Record<string, unknown>;
}

interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

let cachedTemplate: Record<string, unknown> | undefined;

/**
 * Synthesizes the Cronplane stack in-process, without bundling the functions (fast, no esbuild), and
 * returns its CloudFormation template. The synthesis runs once per process (about 1-2 s, mostly loading
 * aws-cdk-lib); later calls return a copy of the first template.
 */
export function synthTemplate(): Record<string, unknown> {
  cachedTemplate ??= synthesize();
  return structuredClone(cachedTemplate);
}

function synthesize(): Record<string, unknown> {
  const outdir = mkdtempSync(join(tmpdir(), 'cronplane-synth-'));
  try {
    const app = createCronplaneApp({
      outdir,
      // `cdk synth` and the unit tests validate the template; here that would cost seconds for nothing
      builtinCloudFormationValidation: false,
      treeMetadata: false,
      // no bundling (fast, no esbuild); construct paths in the metadata (readable local names)
      context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true },
    });
    const stack = addCronplaneStack(app);
    return app.synth().getStackArtifact(stack.artifactId).template as Record<string, unknown>;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * Creates every `AWS::DynamoDB::Table`, `AWS::SQS::Queue` and (given an EventBridge client)
 * `AWS::Events::EventBus` of the template (idempotent: what exists is kept), then resolves the
 * CRONPLANE_* environment variables of the `AWS::Lambda::Function`s.
 */
export async function provisionFromTemplate(
  clients: ProvisionClients,
  options: ProvisionOptions,
): Promise<LocalResources> {
  const log = options.log ?? (() => {});
  const template = options.template ?? synthTemplate();
  const resources = (template.Resources ?? {}) as Record<string, CfnResource>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const tableResources = ofType('AWS::DynamoDB::Table');
  const queueResources = ofType('AWS::SQS::Queue');
  const busResources = ofType('AWS::Events::EventBus');
  const bucketResources = ofType('AWS::S3::Bucket');
  const localNames = readableNames(
    [...tableResources, ...queueResources, ...busResources, ...bucketResources],
    options.prefix,
  );
  const region = await clients.sqs.config.region();
  const resolver = new Resolver(resources, options.prefix.replace(/-+$/, ''), region);

  // Tables (in parallel: they do not depend on each other).
  await Promise.all(
    tableResources.map(async ([logicalId, resource]) => {
      const name = localNames.get(logicalId)!;
      resolver.tables.set(
        logicalId,
        await ensureTable(clients.dynamodb, name, resource.Properties ?? {}, log),
      );
    }),
  );
  const tables = Object.fromEntries(tableResources.map(([id]) => [id, localNames.get(id)!]));

  // Queues, dead-letter queues first (a queue's RedrivePolicy refers to its DLQ's ARN).
  const pending = new Map(queueResources);
  while (pending.size > 0) {
    const ready = [...pending].filter(([, r]) =>
      referencedIds(r.Properties ?? {}).every((id) => !pending.has(id) || !isQueue(resources[id])),
    );
    if (ready.length === 0)
      throw new Error(`circular references between queues: ${[...pending.keys()].join(', ')}`);
    await Promise.all(
      ready.map(async ([logicalId, resource]) => {
        const name = localNames.get(logicalId)!;
        const attributes = queueAttributes(resource.Properties ?? {}, resolver);
        const queue = await ensureQueue(clients.sqs, name, attributes, log);
        resolver.queues.set(logicalId, { ...queue, name });
        pending.delete(logicalId);
      }),
    );
  }

  const queues = Object.fromEntries(queueResources.map(([id]) => [id, resolver.queues.get(id)!.url]));

  // Event buses: named like the rest locally (the template's Name is ignored, as a table's would be).
  await Promise.all(
    busResources.map(async ([logicalId]) => {
      const name = localNames.get(logicalId)!;
      const arn = clients.eventbridge
        ? await ensureEventBus(clients.eventbridge, name, log)
        : `arn:aws:events:${region}:${resolver.accountId()}:event-bus/${name}`;
      resolver.buses.set(logicalId, { name, arn });
    }),
  );
  const buses = Object.fromEntries(busResources.map(([id]) => [id, localNames.get(id)!]));

  // Buckets: S3 names are global, lower case, 3-63 characters of [a-z0-9.-].
  await Promise.all(
    bucketResources.map(async ([logicalId]) => {
      const name = bucketName(localNames.get(logicalId)!);
      if (clients.s3) await ensureBucket(clients.s3, name, region, log);
      resolver.buckets.set(logicalId, name);
    }),
  );
  const buckets = Object.fromEntries(bucketResources.map(([id]) => [id, resolver.buckets.get(id)!]));

  // The functions' environment, resolved against what was just created.
  const env: Record<string, string> = {};
  for (const [logicalId, fn] of ofType('AWS::Lambda::Function')) {
    const environment = fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined;
    for (const [key, value] of Object.entries(environment?.Variables ?? {})) {
      if (!key.startsWith('CRONPLANE_')) continue;
      const resolved = resolver.resolve(value, `${logicalId}.Environment.${key}`);
      if (env[key] !== undefined && env[key] !== resolved) {
        throw new Error(`functions disagree on ${key}: '${env[key]}' vs '${resolved}'`);
      }
      env[key] = resolved;
    }
  }
  return { env, tables, queues, buses, buckets };
}

// --- names ------------------------------------------------------------------------------------

/**
 * Readable local names from the construct paths (`Cronplane/Cronplane/Storage/Jobs/Resource` gives
 * `Jobs`), as short as they can be while unique; the logical id without its hash when there is no path.
 */
function readableNames(entries: [string, CfnResource][], prefix: string): Map<string, string> {
  const segments = new Map<string, string[]>();
  for (const [logicalId, resource] of entries) {
    const path = resource.Metadata?.['aws:cdk:path'];
    const parts =
      typeof path === 'string'
        ? path
            .split('/')
            .slice(1)
            .filter((s) => s !== 'Resource' && s !== 'Default')
        : [];
    segments.set(logicalId, parts.length > 0 ? parts : [logicalId.replace(/[0-9A-F]{8}$/, '')]);
  }
  const names = new Map<string, string>();
  for (const [logicalId, parts] of segments) {
    for (let n = 1; n <= parts.length; n++) {
      const candidate = parts.slice(-n).join('-');
      const clashes = [...segments].some(
        ([otherId, other]) => otherId !== logicalId && other.slice(-n).join('-') === candidate,
      );
      if (!clashes || n === parts.length) {
        names.set(logicalId, `${prefix}${candidate.replace(/[^A-Za-z0-9_.-]/g, '-')}`);
        break;
      }
    }
  }
  return names;
}

// --- DynamoDB ---------------------------------------------------------------------------------

async function ensureTable(
  dynamodb: DynamoDBClient,
  name: string,
  props: Record<string, unknown>,
  log: (line: string) => void,
): Promise<TableDescription> {
  const input: CreateTableCommandInput = {
    TableName: name,
    KeySchema: props.KeySchema as KeySchemaElement[],
    AttributeDefinitions: props.AttributeDefinitions as AttributeDefinition[],
    BillingMode: (props.BillingMode as CreateTableCommandInput['BillingMode']) ?? 'PROVISIONED',
  };
  const throughput = props.ProvisionedThroughput as CreateTableCommandInput['ProvisionedThroughput'];
  if (input.BillingMode === 'PROVISIONED') {
    input.ProvisionedThroughput = throughput ?? { ReadCapacityUnits: 5, WriteCapacityUnits: 5 };
  }
  const gsis = props.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined;
  if (gsis?.length) {
    input.GlobalSecondaryIndexes = gsis.map((gsi) => ({
      IndexName: gsi.IndexName,
      KeySchema: gsi.KeySchema,
      Projection: gsi.Projection,
      ...(input.BillingMode === 'PROVISIONED'
        ? { ProvisionedThroughput: gsi.ProvisionedThroughput ?? input.ProvisionedThroughput }
        : {}),
    }));
  }
  const lsis = props.LocalSecondaryIndexes as LocalSecondaryIndex[] | undefined;
  if (lsis?.length) input.LocalSecondaryIndexes = lsis;
  const stream = props.StreamSpecification as { StreamViewType?: string } | undefined;
  if (stream?.StreamViewType) {
    input.StreamSpecification = {
      StreamEnabled: true,
      StreamViewType: stream.StreamViewType as NonNullable<
        CreateTableCommandInput['StreamSpecification']
      >['StreamViewType'],
    };
  }

  try {
    await dynamodb.send(new CreateTableCommand(input));
    log(`table ${name} created`);
  } catch (error) {
    if (errorName(error) !== 'ResourceInUseException') throw error;
  }
  const description = await waitForTable(dynamodb, name);

  const ttl = props.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  if (ttl?.AttributeName && ttl.Enabled !== false) {
    try {
      const { TimeToLiveDescription: current } = await dynamodb.send(
        new DescribeTimeToLiveCommand({ TableName: name }),
      );
      if (current?.TimeToLiveStatus === 'ENABLED' && current.AttributeName === ttl.AttributeName) {
        return description;
      }
      await dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
        }),
      );
    } catch (error) {
      // An emulator without TTL: expiry does not matter locally.
      log(`table ${name}: TTL on ${ttl.AttributeName} not set (${errorName(error)}: ${errorMessage(error)})`);
    }
  }
  return description;
}

async function waitForTable(dynamodb: DynamoDBClient, name: string): Promise<TableDescription> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: name }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every(
      (gsi) => !gsi.IndexStatus || gsi.IndexStatus === 'ACTIVE',
    );
    if (Table && Table.TableStatus === 'ACTIVE' && indexesActive) return Table;
    if (Date.now() > deadline) throw new Error(`table ${name} is still ${Table?.TableStatus} after 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// --- SQS --------------------------------------------------------------------------------------

const QUEUE_ATTRIBUTES: Record<string, QueueAttributeName> = {
  VisibilityTimeout: 'VisibilityTimeout',
  MessageRetentionPeriod: 'MessageRetentionPeriod',
  ReceiveMessageWaitTimeSeconds: 'ReceiveMessageWaitTimeSeconds',
  DelaySeconds: 'DelaySeconds',
  MaximumMessageSize: 'MaximumMessageSize',
  FifoQueue: 'FifoQueue',
  ContentBasedDeduplication: 'ContentBasedDeduplication',
  DeduplicationScope: 'DeduplicationScope',
  FifoThroughputLimit: 'FifoThroughputLimit',
  SqsManagedSseEnabled: 'SqsManagedSseEnabled',
  RedrivePolicy: 'RedrivePolicy',
  RedriveAllowPolicy: 'RedriveAllowPolicy',
};

function queueAttributes(props: Record<string, unknown>, resolver: Resolver): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [property, value] of Object.entries(props)) {
    const attribute = QUEUE_ATTRIBUTES[property];
    if (!attribute || value === undefined) continue;
    const resolved = resolver.resolveDeep(value, property);
    attributes[attribute] = typeof resolved === 'object' ? JSON.stringify(resolved) : String(resolved);
  }
  return attributes;
}

async function ensureQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
  log: (line: string) => void,
): Promise<{ url: string; arn: string }> {
  const queueName = attributes.FifoQueue === 'true' && !name.endsWith('.fifo') ? `${name}.fifo` : name;
  let url: string | undefined;
  try {
    ({ QueueUrl: url } = await sqs.send(
      new CreateQueueCommand({ QueueName: queueName, Attributes: attributes }),
    ));
    log(`queue ${queueName} ready`);
  } catch (error) {
    // It exists with other attributes (the template changed): bring them up to date.
    if (!/QueueAlreadyExists|QueueNameExists/.test(errorName(error))) throw error;
    ({ QueueUrl: url } = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName })));
    const { FifoQueue: _fifo, ...mutable } = attributes;
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: mutable }));
    log(`updated queue ${queueName}`);
  }
  if (!url) throw new Error(`no URL for queue ${queueName}`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`no ARN for queue ${queueName}`);
  return { url, arn };
}

// --- EventBridge --------------------------------------------------------------------------------

async function ensureEventBus(
  eventbridge: EventBridgeClient,
  name: string,
  log: (line: string) => void,
): Promise<string> {
  try {
    const { EventBusArn } = await eventbridge.send(new CreateEventBusCommand({ Name: name }));
    log(`event bus ${name} created`);
    if (EventBusArn) return EventBusArn;
  } catch (error) {
    if (errorName(error) !== 'ResourceAlreadyExistsException') throw error;
  }
  const { Arn } = await eventbridge.send(new DescribeEventBusCommand({ Name: name }));
  if (!Arn) throw new Error(`no ARN for event bus ${name}`);
  return Arn;
}

// --- S3 -----------------------------------------------------------------------------------------

/** `t123-0-OutputBucket` gives `t123-0-outputbucket`: lower case, S3's characters, 3-63 long. */
function bucketName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 63)
    .replace(/[^a-z0-9]+$/, '');
  return cleaned.length >= 3 ? cleaned : `${cleaned}-bucket`.replace(/^-/, '');
}

async function ensureBucket(s3: S3Client, name: string, region: string, log: (line: string) => void) {
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: name,
        ...(region !== 'us-east-1'
          ? { CreateBucketConfiguration: { LocationConstraint: region as never } }
          : {}),
      }),
    );
    log(`bucket ${name} created`);
  } catch (error) {
    if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(errorName(error))) throw error;
    await s3.send(new HeadBucketCommand({ Bucket: name }));
  }
}

// --- intrinsic functions ------------------------------------------------------------------------

function isQueue(resource: CfnResource | undefined): boolean {
  return resource?.Type === 'AWS::SQS::Queue';
}

/** Logical ids that a value refers to through Ref / Fn::GetAtt. */
function referencedIds(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedIds);
  if (!value || typeof value !== 'object') return [];
  const obj = value as Record<string, unknown>;
  if (typeof obj.Ref === 'string') return [obj.Ref];
  const getAtt = obj['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return [getAtt[0]];
  return Object.values(obj).flatMap(referencedIds);
}

class Resolver {
  readonly tables = new Map<string, TableDescription>();
  readonly queues = new Map<string, { url: string; arn: string; name: string }>();
  readonly buses = new Map<string, { name: string; arn: string }>();
  readonly buckets = new Map<string, string>();

  constructor(
    private readonly resources: Record<string, CfnResource>,
    private readonly stackName: string,
    private readonly region: string,
  ) {}

  /** A value that must come out as a string (an environment variable). */
  resolve(value: unknown, where: string): string {
    const resolved = this.resolveDeep(value, where);
    if (typeof resolved === 'string' || typeof resolved === 'number' || typeof resolved === 'boolean') {
      return String(resolved);
    }
    throw new Error(`${where}: expected a string, got ${JSON.stringify(resolved)}`);
  }

  /** Resolves intrinsic functions anywhere inside a value. */
  resolveDeep(value: unknown, where: string): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolveDeep(v, where));
    if (!value || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [fn] = keys as [string];
      const arg = obj[fn];
      switch (fn) {
        case 'Ref':
          return this.ref(String(arg), where);
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(arg) ? arg : String(arg).split('.');
          return this.getAtt(String(id), String(attribute), where);
        }
        case 'Fn::Join': {
          const [separator, parts] = arg as [string, unknown[]];
          const resolved = this.resolveDeep(parts, where);
          if (!Array.isArray(resolved)) throw new Error(`${where}: Fn::Join of ${JSON.stringify(resolved)}`);
          return resolved.map(String).join(separator);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          const resolved = this.resolveDeep(list, where);
          if (!Array.isArray(resolved))
            throw new Error(`${where}: Fn::Select from ${JSON.stringify(resolved)}`);
          return resolved[Number(this.resolveDeep(index, where))];
        }
        case 'Fn::Split': {
          const [separator, source] = arg as [string, unknown];
          return String(this.resolveDeep(source, where)).split(separator);
        }
        case 'Fn::Sub': {
          const [text, variables] = (Array.isArray(arg) ? arg : [arg, {}]) as [
            string,
            Record<string, unknown>,
          ];
          return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
            if (name in variables) return String(this.resolveDeep(variables[name], where));
            const [id, attribute] = name.split('.') as [string, string | undefined];
            return String(attribute ? this.getAtt(id, attribute, where) : this.ref(id, where));
          });
        }
      }
      if (fn.startsWith('Fn::')) throw new Error(`${where}: ${fn} is not supported locally`);
    }
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, this.resolveDeep(v, where)]));
  }

  private ref(id: string, where: string): string {
    switch (id) {
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::Region':
        return this.region;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::AccountId':
        return this.accountId();
    }
    const table = this.tables.get(id);
    if (table?.TableName) return table.TableName;
    const queue = this.queues.get(id);
    if (queue) return queue.url;
    const bus = this.buses.get(id);
    if (bus) return bus.name;
    const bucket = this.buckets.get(id);
    if (bucket) return bucket;
    throw new Error(
      `${where}: cannot resolve Ref ${id} (${this.resources[id]?.Type ?? 'unknown resource'}) locally`,
    );
  }

  private getAtt(id: string, attribute: string, where: string): string {
    const table = this.tables.get(id);
    const queue = this.queues.get(id);
    const bus = this.buses.get(id);
    const value =
      (table &&
        { Arn: table.TableArn, StreamArn: table.LatestStreamArn, TableName: table.TableName }[attribute]) ??
      (queue && { Arn: queue.arn, QueueUrl: queue.url, QueueName: queue.name }[attribute]) ??
      (bus && { Arn: bus.arn, Name: bus.name }[attribute]) ??
      (this.buckets.has(id)
        ? {
            Arn: `arn:aws:s3:::${this.buckets.get(id)}`,
            DomainName: `${this.buckets.get(id)}.s3.amazonaws.com`,
          }[attribute]
        : undefined);
    if (value === undefined) {
      throw new Error(`${where}: cannot resolve Fn::GetAtt ${id}.${attribute} locally`);
    }
    return value;
  }

  accountId(): string {
    for (const { arn } of this.queues.values()) {
      const account = arn.split(':')[4];
      if (account) return account;
    }
    return '000000000000';
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : String(error);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
