import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  type CfnTable,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/**
 * How the tables are billed: on demand (per request), or provisioned capacity that auto scaling keeps
 * between `min` and `max` units (reads and writes alike, of every table and every index).
 */
export type StorageBilling =
  | { readonly mode: 'on-demand' }
  | { readonly mode: 'provisioned'; readonly min: number; readonly max: number };

export interface StorageProps {
  /** What happens to the tables when they leave the stack. Default: RETAIN (the data outlives the stack). */
  readonly removalPolicy?: RemovalPolicy;
  /** Billing of the tables and their indexes. Default: on demand. */
  readonly billing?: StorageBilling;
}

/** Auto scaling keeps provisioned capacity at this utilization: headroom for a burst while it scales. */
const TARGET_UTILIZATION_PERCENT = 70;

/**
 * The four DynamoDB tables (each one's keys, TTL, stream and indexes on its field below) and the output
 * bucket. All tables with point-in-time recovery, billed on demand by default: nothing to pay while idle,
 * and no throttling whatever the load. With `billing: { mode: 'provisioned', min, max }` every table and
 * index gets provisioned read and write capacity (starting at `min`) that auto scaling keeps at 70 %
 * utilization between `min` and `max`: about a third of the on-demand price per write at steady high
 * volume. The price of it: a burst beyond the provisioned rate leans on DynamoDB's burst capacity (up to
 * 300 s of unused capacity) and then on the SDK's retries of throttled requests until scaling catches
 * up, minutes later; and the minimum capacity is paid for around the clock.
 * Physical names are left to CloudFormation; the functions get them from CRONPLANE_*_TABLE.
 */
export class Storage extends Construct {
  /** key `name`; sparse GSI `byDue` (`dueShard` N, `nextRunAt` N) */
  readonly jobs: Table;
  /** key (`jobName`, `executionId`); TTL `expiresAt`; stream NEW_AND_OLD_IMAGES; sparse GSI `byActive` (`activeShard` N, `scheduledAt` N) */
  readonly executions: Table;
  /** key `agentId`; TTL `expiresAt` */
  readonly agents: Table;
  /** key `pk`; TTL `expiresAt`: lease, cursor, pause flag, queue registry, locks */
  readonly control: Table;
  /** full output of truncated executions, `executions/<jobName>/<executionId>.log`; expires after 30 days */
  readonly outputBucket: Bucket;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    const billing = props.billing ?? { mode: 'on-demand' };
    // Provisioned: tables and indexes start at the minimum, auto scaling (below) moves them.
    const capacity =
      billing.mode === 'provisioned' ? { readCapacity: billing.min, writeCapacity: billing.min } : {};
    const common = {
      ...(billing.mode === 'provisioned'
        ? { billingMode: BillingMode.PROVISIONED, ...capacity }
        : { billingMode: BillingMode.PAY_PER_REQUEST }),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      // SSE with the AWS managed key (aws/dynamodb), recorded in the template (SSESpecification).
      encryption: TableEncryption.AWS_MANAGED,
    } as const;

    this.jobs = new Table(this, 'Jobs', {
      ...common,
      partitionKey: { name: 'name', type: AttributeType.STRING },
    });
    this.jobs.addGlobalSecondaryIndex({
      indexName: 'byDue',
      partitionKey: { name: 'dueShard', type: AttributeType.NUMBER },
      sortKey: { name: 'nextRunAt', type: AttributeType.NUMBER },
      // Keys only: the index is written when a job's next fire time or shard changes, not on every
      // counter or status update (the tick reads the jobs themselves with BatchGetItem).
      projectionType: ProjectionType.KEYS_ONLY,
      ...capacity,
    });

    this.executions = new Table(this, 'Executions', {
      ...common,
      partitionKey: { name: 'jobName', type: AttributeType.STRING },
      sortKey: { name: 'executionId', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
    });
    this.executions.addGlobalSecondaryIndex({
      indexName: 'byActive',
      partitionKey: { name: 'activeShard', type: AttributeType.NUMBER },
      sortKey: { name: 'scheduledAt', type: AttributeType.NUMBER },
      // Keys only: a claim, a start record and every heartbeat change attributes the index does not hold,
      // so they write the table alone (with ALL, each also rewrote its index copy: +1 WRU, +2 in the claim's
      // transaction). Readers fetch the few items they need (ExecutionsStore.listActive).
      projectionType: ProjectionType.KEYS_ONLY,
      ...capacity,
    });

    this.agents = new Table(this, 'Agents', {
      ...common,
      partitionKey: { name: 'agentId', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });

    this.control = new Table(this, 'Control', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });

    this.outputBucket = new Bucket(this, 'OutputBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ id: 'ExpireOutput', expiration: Duration.days(30) }],
      // Kept whatever the tables do: a non-empty bucket cannot be deleted with the stack anyway.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    if (billing.mode === 'provisioned') {
      const bounds = { minCapacity: billing.min, maxCapacity: billing.max };
      const target = { targetUtilizationPercent: TARGET_UTILIZATION_PERCENT };
      for (const table of this.tables) {
        // CDK leaves PROVISIONED out of the template (CloudFormation's default): say it, so the switch
        // from PAY_PER_REQUEST reads as one in the template and the change set.
        (table.node.defaultChild as CfnTable).billingMode = BillingMode.PROVISIONED;
        table.autoScaleReadCapacity(bounds).scaleOnUtilization(target);
        table.autoScaleWriteCapacity(bounds).scaleOnUtilization(target);
      }
      for (const [table, indexName] of [
        [this.jobs, 'byDue'],
        [this.executions, 'byActive'],
      ] as const) {
        table.autoScaleGlobalSecondaryIndexReadCapacity(indexName, bounds).scaleOnUtilization(target);
        table.autoScaleGlobalSecondaryIndexWriteCapacity(indexName, bounds).scaleOnUtilization(target);
      }
    }
  }

  get tables(): Table[] {
    return [this.jobs, this.executions, this.agents, this.control];
  }
}
