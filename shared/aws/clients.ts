/**
 * The one place that constructs AWS clients. Endpoints come from AWS_ENDPOINT_URL_<SERVICE>, then
 * AWS_ENDPOINT_URL, so AWS, LocalStack and the local emulators (DynamoDB Local + moto) are one code path.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export type Env = Readonly<Record<string, string | undefined>>;

const serviceKeys = {
  dynamodb: 'DYNAMODB',
  dynamodbStreams: 'DYNAMODB_STREAMS',
  sqs: 'SQS',
  eventbridge: 'EVENTBRIDGE',
  lambda: 'LAMBDA',
  ssm: 'SSM',
  s3: 'S3',
} as const;

export type Service = keyof typeof serviceKeys;

export function endpointFor(service: Service, env: Env): string | undefined {
  return env[`AWS_ENDPOINT_URL_${serviceKeys[service]}`] || env.AWS_ENDPOINT_URL || undefined;
}

function baseConfig(service: Service, env: Env) {
  const endpoint = endpointFor(service, env);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  // Keys given in `env` win (it need not be process.env); emulators accept any key, so a machine without
  // AWS credentials still works locally. Otherwise the SDK's default provider chain applies.
  const credentials = env.AWS_ACCESS_KEY_ID
    ? {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '',
        ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
      }
    : endpoint
      ? { accessKeyId: 'test', secretAccessKey: 'test' }
      : undefined;
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 5,
  };
}

export interface AwsClients {
  readonly dynamodb: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  readonly dynamodbStreams: DynamoDBStreamsClient;
  readonly sqs: SQSClient;
  readonly eventbridge: EventBridgeClient;
  readonly lambda: LambdaClient;
  readonly ssm: SSMClient;
  readonly s3: S3Client;
}

/** Clients are created lazily and once per factory call; pass the result around instead of re-creating. */
export function createClients(env: Env = process.env): AwsClients {
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const dynamodb = () => once('dynamodb', () => new DynamoDBClient(baseConfig('dynamodb', env)));
  return {
    get dynamodb() {
      return dynamodb();
    },
    get doc() {
      return once('doc', () =>
        DynamoDBDocumentClient.from(dynamodb(), { marshallOptions: { removeUndefinedValues: true } }),
      );
    },
    get dynamodbStreams() {
      return once('streams', () => new DynamoDBStreamsClient(baseConfig('dynamodbStreams', env)));
    },
    get sqs() {
      // An explicit endpoint stops the SQS client from routing by the host inside a queue URL.
      return once('sqs', () => new SQSClient({ ...baseConfig('sqs', env), useQueueUrlAsEndpoint: false }));
    },
    get eventbridge() {
      return once('eventbridge', () => new EventBridgeClient(baseConfig('eventbridge', env)));
    },
    get lambda() {
      return once('lambda', () => new LambdaClient(baseConfig('lambda', env)));
    },
    get ssm() {
      return once('ssm', () => new SSMClient(baseConfig('ssm', env)));
    },
    get s3() {
      // Emulators (moto on 127.0.0.1) cannot serve virtual-hosted bucket names: path style there.
      return once('s3', () => {
        const config = baseConfig('s3', env);
        return new S3Client({ ...config, ...('endpoint' in config ? { forcePathStyle: true } : {}) });
      });
    },
  };
}
