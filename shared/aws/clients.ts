/**
 * The one place that constructs AWS clients. Endpoints come from AWS_ENDPOINT_URL_<SERVICE>, then
 * AWS_ENDPOINT_URL, so AWS, LocalStack and the local emulators (DynamoDB Local + moto) are one code path.
 *
 * DynamoDB and SQS are what every deployable (the agent included) uses all the time; their SDK modules are
 * imported up front. The other services' SDK modules are large (SSM alone is ~200 KB minified) and an idle
 * agent never calls them, so they are *on demand*: their module is imported (`await import()`) on the first
 * `send`, which keeps them out of the agent's resident memory until a job needs them (an S3 upload of
 * truncated output, an `{{ssm:...}}` reference, a lambda/eventbridge job, an s3 or cloudwatch processor).
 */
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export type Env = Readonly<Record<string, string | undefined>>;

const serviceKeys = {
  dynamodb: 'DYNAMODB',
  dynamodbStreams: 'DYNAMODB_STREAMS',
  sqs: 'SQS',
  eventbridge: 'EVENTBRIDGE',
  lambda: 'LAMBDA',
  ssm: 'SSM',
  s3: 'S3',
  logs: 'CLOUDWATCH_LOGS',
} as const;

export type Service = keyof typeof serviceKeys;

export function endpointFor(service: Service, env: Env): string | undefined {
  return env[`AWS_ENDPOINT_URL_${serviceKeys[service]}`] || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * Timeouts of every client: a store that stops answering (a network stall, an emulator that died) makes
 * a call fail after a bounded time instead of holding an API request, a tick or an agent's pollers and
 * heartbeats forever. `requestMs` bounds one attempt from sending to the whole answer; the SDK's standard
 * retry mode retries a timed-out attempt with exponential backoff and jitter, `MAX_ATTEMPTS` in all.
 *
 * DynamoDB answers in milliseconds (a 1 MB query page in well under a second), so 5 s is a stall, and
 * 3 attempts of it (≈ 16 s with the backoff) leave an API call well inside API Gateway's 29 s. A long
 * poll (SQS ReceiveMessage) gets its wait time on top (`requestTimeoutFor`). The Lambda client waits for
 * synchronous invocations of up to Lambda's 15 minutes; S3 carries output files.
 */
export const CONNECT_TIMEOUT_MS = 3_000;
export const MAX_ATTEMPTS = 3;
export const REQUEST_TIMEOUT_MS: { readonly [S in Service]: number } = {
  dynamodb: 5_000,
  dynamodbStreams: 10_000,
  sqs: 10_000,
  eventbridge: 10_000,
  ssm: 10_000,
  s3: 60_000,
  logs: 10_000,
  lambda: 15 * 60_000 + 30_000,
};

type HttpRequest = Parameters<NodeHttpHandler['handle']>[0];
type HttpHandlerOptions = NonNullable<Parameters<NodeHttpHandler['handle']>[1]>;

/** SQS's longest long poll; a ReceiveMessage without WaitTimeSeconds may wait the queue's own default. */
const MAX_LONG_POLL_MS = 20_000;

/**
 * The request timeout of one HTTP request: the service's, plus the wait of an SQS long poll (JSON
 * protocol: `X-Amz-Target: AmazonSQS.ReceiveMessage`; query protocol: `Action=ReceiveMessage`), so a
 * poll that waits its full 20 s is not cut off while a stalled SendMessage still fails fast.
 */
export function requestTimeoutFor(service: Service, request: Pick<HttpRequest, 'headers' | 'body'>): number {
  const base = REQUEST_TIMEOUT_MS[service];
  if (service !== 'sqs') return base;
  const target = Object.entries(request.headers).find(([k]) => k.toLowerCase() === 'x-amz-target')?.[1];
  const body = typeof request.body === 'string' ? request.body : '';
  let waitSeconds: number | undefined;
  if (target === 'AmazonSQS.ReceiveMessage') {
    try {
      const parsed = JSON.parse(body) as { WaitTimeSeconds?: unknown };
      if (typeof parsed.WaitTimeSeconds === 'number') waitSeconds = parsed.WaitTimeSeconds;
    } catch {
      // not JSON: the longest wait
    }
  } else if (/(^|&)Action=ReceiveMessage(&|$)/.test(body)) {
    const m = /(^|&)WaitTimeSeconds=(\d+)(&|$)/.exec(body);
    if (m) waitSeconds = Number(m[2]);
  } else {
    return base;
  }
  const waitMs = waitSeconds === undefined ? MAX_LONG_POLL_MS : Math.max(0, waitSeconds) * 1000;
  return base + Math.min(waitMs, MAX_LONG_POLL_MS);
}

/**
 * Sockets one client may hold at once (the SDK's default is 50). An agent long-polls every queue its tags
 * serve — up to 63 tag sets with 6 tags, and the default queue — each poll holding a socket for its whole
 * wait: with 50, the 51st poll (a new tag set's queue) and every ack, visibility extension and hand-off waited
 * for a poll to end, seconds late (a bench run-now of a new tag set started 2–13 s late).
 */
export const MAX_SOCKETS: { readonly [S in Service]?: number } = { sqs: 512 };

/** NodeHttpHandler with the service's timeouts; a timeout is an error (the SDK retries it), not a warning. */
class TimedHttpHandler extends NodeHttpHandler {
  constructor(private readonly service: Service) {
    const sockets = MAX_SOCKETS[service];
    super({
      connectionTimeout: CONNECT_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS[service],
      throwOnRequestTimeout: true,
      ...(sockets ? { httpAgent: { maxSockets: sockets }, httpsAgent: { maxSockets: sockets } } : {}),
    });
  }

  override handle(request: HttpRequest, options: HttpHandlerOptions = {}) {
    // A timeout given to one `send` (`{ requestTimeout }`) wins over the service's.
    const requestTimeout = options.requestTimeout ?? requestTimeoutFor(this.service, request);
    return super.handle(request, { ...options, requestTimeout });
  }
}

/** `requestHandler`: a client's own by default; a client may share another's (dynamodbHot). */
function baseConfig(
  service: Service,
  env: Env,
  requestHandler: DynamoDBClient['config']['requestHandler'] = new TimedHttpHandler(service),
) {
  const endpoint = endpointFor(service, env);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  // Keys given in `env` win (it need not be the process's environment); emulators accept any key, so a machine without
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
    maxAttempts: MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler,
  };
}

/**
 * Without the SDK middleware whose per-request work serves nobody here (each a share of a busy agent's CPU
 * in a profile at 6,000 executions a minute, where the SDK is half of it):
 * - the logger middleware: we give the SDK no logger, yet it walks the input and the output through their
 *   schemas to mask sensitive members for a log line the default no-op logger then drops (2.4 %). Our own
 *   logs say what a call did; an SDK error still reaches the caller.
 * - the user-agent middleware: it rebuilds and escapes the `User-Agent` string of every request (~2 %);
 *   AWS needs none to answer.
 * - outside Lambda, the recursion-detection middleware: it reads Lambda's environment variables on every
 *   request (native getenv calls) to pass on an X-Ray trace id that only exists inside Lambda. The
 *   functions keep it.
 */
function lean<C extends { middlewareStack: { remove(name: string): boolean } }>(client: C, env: Env): C {
  client.middlewareStack.remove('loggerMiddleware');
  client.middlewareStack.remove('getUserAgentMiddleware');
  if (env.AWS_LAMBDA_FUNCTION_NAME === undefined)
    client.middlewareStack.remove('recursionDetectionMiddleware');
  return client;
}

/** Services whose SDK module is imported on first use, and their client types. */
export interface OnDemandClients {
  readonly dynamodbStreams: DynamoDBStreamsClient;
  readonly eventbridge: EventBridgeClient;
  readonly lambda: LambdaClient;
  readonly ssm: SSMClient;
  readonly s3: S3Client;
  readonly logs: CloudWatchLogsClient;
}
export type OnDemandService = keyof OnDemandClients;
export const ON_DEMAND_SERVICES: readonly OnDemandService[] = [
  'dynamodbStreams',
  'eventbridge',
  'lambda',
  'ssm',
  's3',
  'logs',
];

/** Imports a service's SDK module and constructs its client (the only `await import()` of SDK clients). */
const construct: { readonly [S in OnDemandService]: (env: Env) => Promise<OnDemandClients[S]> } = {
  dynamodbStreams: async (env) => {
    const { DynamoDBStreamsClient } = await import('@aws-sdk/client-dynamodb-streams');
    return lean(new DynamoDBStreamsClient(baseConfig('dynamodbStreams', env)), env);
  },
  eventbridge: async (env) => {
    const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
    return lean(new EventBridgeClient(baseConfig('eventbridge', env)), env);
  },
  lambda: async (env) => {
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    return lean(new LambdaClient(baseConfig('lambda', env)), env);
  },
  ssm: async (env) => {
    const { SSMClient } = await import('@aws-sdk/client-ssm');
    return lean(new SSMClient(baseConfig('ssm', env)), env);
  },
  s3: async (env) => {
    const { S3Client } = await import('@aws-sdk/client-s3');
    // Emulators (moto on 127.0.0.1) cannot serve virtual-hosted bucket names: path style there.
    const config = baseConfig('s3', env);
    return lean(new S3Client({ ...config, ...('endpoint' in config ? { forcePathStyle: true } : {}) }), env);
  },
  logs: async (env) => {
    const { CloudWatchLogsClient } = await import('@aws-sdk/client-cloudwatch-logs');
    return lean(new CloudWatchLogsClient(baseConfig('logs', env)), env);
  },
};

type Sendable = { send(...args: never[]): Promise<unknown>; destroy(): void };

/**
 * A stand-in for an on-demand client until its module is loaded: `send` loads the module, builds the
 * client once and sends through it; `destroy` before that is a no-op (nothing to release). Once loaded,
 * every property is the real client's. Anything else before the first send throws, naming the fix
 * (`await clients.load(service)` gives the real client).
 */
function onDemand<C extends Sendable>(
  service: OnDemandService,
  load: () => Promise<C>,
  loaded: () => C | undefined,
): C {
  const send = async (...args: never[]) => (await load()).send(...args);
  return new Proxy({} as C, {
    get(_target, prop) {
      if (prop === 'send') return send;
      const real = loaded();
      if (real) {
        const value: unknown = Reflect.get(real, prop, real);
        return typeof value === 'function' ? value.bind(real) : value;
      }
      if (prop === 'destroy') return () => {};
      // Not a thenable: `await clients.s3` must not try to call a `then` that does not exist.
      if (prop === 'then' || typeof prop === 'symbol') return undefined;
      throw new Error(
        `the ${service} client is created on first use: await clients.load('${service}') before reading .${prop}`,
      );
    },
  });
}

export interface AwsClients {
  readonly dynamodb: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  /**
   * The Executions table's updates (a claim, a result, a heartbeat, the reactions' mark), as plain
   * `UpdateItem`s: a DynamoDB client
   * that resolves its middleware chain once per command class (the SDK's `cacheMiddleware`) instead of on
   * every send, sharing `dynamodb`'s middleware stack and HTTP handler. Send through `updateItem`
   * (shared/aws/update-item.ts). Middleware added to the stack after its first send of a command class is
   * not seen by it: add middleware before the first request, as the SDK asks of `cacheMiddleware`.
   */
  readonly dynamodbHot: DynamoDBClient;
  readonly sqs: SQSClient;
  /**
   * On-demand clients: `send` works at once (the first one imports the SDK module); other members
   * only after the first send or `load`.
   */
  readonly dynamodbStreams: DynamoDBStreamsClient;
  readonly eventbridge: EventBridgeClient;
  readonly lambda: LambdaClient;
  readonly ssm: SSMClient;
  readonly s3: S3Client;
  /** CloudWatch Logs (the `cloudwatch` processor). */
  readonly logs: CloudWatchLogsClient;
  /** The real client of an on-demand service, its SDK module imported (once) if it was not yet. */
  load<S extends OnDemandService>(service: S): Promise<OnDemandClients[S]>;
  /** Whether an on-demand service's client exists yet (its module imported by this factory). */
  isLoaded(service: OnDemandService): boolean;
}

/** Clients are created lazily and once per factory call; pass the result around instead of re-creating. */
export function createClients(env: Env): AwsClients {
  const cache = new Map<string, unknown>();
  const once = <T>(key: string, make: () => T): T => {
    if (!cache.has(key)) cache.set(key, make());
    return cache.get(key) as T;
  };
  const dynamodb = () => once('dynamodb', () => lean(new DynamoDBClient(baseConfig('dynamodb', env)), env));

  const loaded = new Map<OnDemandService, unknown>();
  const loading = new Map<OnDemandService, Promise<unknown>>();
  const load = <S extends OnDemandService>(service: S): Promise<OnDemandClients[S]> => {
    const done = loaded.get(service);
    if (done) return Promise.resolve(done as OnDemandClients[S]);
    let pending = loading.get(service);
    if (!pending) {
      pending = construct[service](env).then(
        (client) => {
          loaded.set(service, client);
          loading.delete(service);
          return client;
        },
        (error: unknown) => {
          loading.delete(service); // a failed import may be retried by the next send
          throw error;
        },
      );
      loading.set(service, pending);
    }
    return pending as Promise<OnDemandClients[S]>;
  };
  const stub = <S extends OnDemandService>(service: S): OnDemandClients[S] =>
    once(`on-demand:${service}`, () =>
      onDemand(
        service,
        () => load(service),
        () => loaded.get(service) as OnDemandClients[S] | undefined,
      ),
    );

  return {
    get dynamodb() {
      return dynamodb();
    },
    get dynamodbHot() {
      return once('dynamodbHot', () => {
        const base = dynamodb();
        // The document client cannot cache (lib-dynamodb refuses `cacheMiddleware`: its commands resolve
        // to a handler bound to their own input), nor can `dynamodb`, whose config the document client shares.
        const hot = new DynamoDBClient({
          ...baseConfig('dynamodb', env, base.config.requestHandler),
          cacheMiddleware: true,
        });
        // One stack for all three: what is added to `dynamodb`'s (metering, a test's injected fault) applies here.
        (hot as { middlewareStack: DynamoDBClient['middlewareStack'] }).middlewareStack =
          base.middlewareStack;
        return hot;
      });
    },
    get doc() {
      return once('doc', () =>
        DynamoDBDocumentClient.from(dynamodb(), { marshallOptions: { removeUndefinedValues: true } }),
      );
    },
    get sqs() {
      // An explicit endpoint stops the SQS client from routing by the host inside a queue URL.
      return once('sqs', () =>
        lean(new SQSClient({ ...baseConfig('sqs', env), useQueueUrlAsEndpoint: false }), env),
      );
    },
    get dynamodbStreams() {
      return stub('dynamodbStreams');
    },
    get eventbridge() {
      return stub('eventbridge');
    },
    get lambda() {
      return stub('lambda');
    },
    get ssm() {
      return stub('ssm');
    },
    get s3() {
      return stub('s3');
    },
    get logs() {
      return stub('logs');
    },
    load,
    isLoaded: (service) => loaded.has(service),
  };
}
