import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  StreamViewType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface StorageProps {
  /** What happens to the tables when they leave the stack. Default: RETAIN (the data outlives the stack). */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The four DynamoDB tables (each one's keys, TTL, stream and indexes on its field below) and the output
 * bucket. All tables on-demand with point-in-time recovery.
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
    const common = {
      billingMode: BillingMode.PAY_PER_REQUEST,
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
  }

  get tables(): Table[] {
    return [this.jobs, this.executions, this.agents, this.control];
  }
}
