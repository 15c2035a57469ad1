/**
 * The whole system on one machine: emulators (unless AWS_ENDPOINT_URL points elsewhere), tables and
 * queues provisioned from the synthesized CDK template, the API (+ UI) over HTTP, the ticker and agents
 * — all running the same handlers and domain code as on AWS.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { Agent, type AgentOptions } from '../agent/agent.ts';
import { REPO_ROOT } from '../agent/stack-file.ts';
import { createApiHandler } from '../functions/api/app.ts';
import { createClients } from '../shared/aws/clients.ts';
import { checkHealth } from '../shared/cluster/health.ts';
import { type Context, createContext } from '../shared/context.ts';
import { createExecutors } from '../shared/executors/registry.ts';
import { METRICS } from '../shared/metrics/metrics.ts';
import { PrometheusRegistry } from '../shared/metrics/prometheus.ts';
import { createProcessorHost } from '../shared/processors/registry.ts';
import { coordinate, inProcessFanOut } from '../shared/scheduler/coordinator.ts';
import type { TickReport } from '../shared/scheduler/tick.ts';
import { startEmulators } from './emulators.ts';
import { startHttpServer } from './http-server.ts';
import { provisionFromTemplate } from './provision.ts';
import type { IamAuth } from './sigv4-verify.ts';
import { type StreamPoller, startStreamPoller } from './stream-poller.ts';

export interface LocalStackOptions {
  /** HTTP port for the API and UI; 0 picks a free one. */
  readonly port?: number;
  /** How often the local ticker runs (on AWS, EventBridge ticks once a minute). */
  readonly tickIntervalMs?: number;
  /** Extra CRONPLANE_* settings, e.g. a shorter tick period for tests. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Agents to start in-process; default one untagged agent. */
  readonly agents?: ReadonlyArray<Omit<AgentOptions, 'log'>>;
  readonly prefix?: string;
  /** Where to tell agents started in this checkout how to join (local/config.ts `stackFile`); unset: nowhere. */
  readonly writeStackFile?: string | undefined;
  /** Run the local stand-in of the agentless worker Lambda (default true). */
  readonly worker?: boolean;
  readonly log?: (line: string) => void;
  /**
   * Lines a user must see even when not verbose: an emulator died, the store stopped answering (or
   * answers again). `npm start` prints them; default: `log`.
   */
  readonly notice?: (line: string) => void;
  /** How often the store's health is checked for `notice` (default 5 s; 0: never). */
  readonly healthEveryMs?: number;
  /**
   * Where the stack's DynamoDB (and Streams) traffic goes, given the emulator's endpoint: a test puts a
   * proxy in between (test/integration/support/stall-proxy.ts). Provisioning still goes direct.
   */
  readonly dynamodbVia?: (endpoint: string) => string | Promise<string>;
  /** The API takes only SigV4-signed calls with these keys, as the deployed API with IAM auth. */
  readonly iamAuth?: IamAuth;
}

export interface LocalStack {
  readonly url: string;
  readonly env: Readonly<Record<string, string>>;
  readonly ctx: Context;
  readonly agents: Agent[];
  /** The stand-in for the events function's stream trigger (tests pause it to make it lag). */
  readonly streamPoller: StreamPoller;
  /** Runs one coordinator round now (the timer also runs them): every shard ticked; answers shard 0's report. */
  tickNow(): Promise<TickReport>;
  /** What the tick and the reactions recorded: served as `GET /metrics` (the EMF metrics on AWS). */
  readonly metrics: PrometheusRegistry;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const notice = options.notice ?? log;
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((e) => log(`stop: ${(e as Error).message}`));
  };
  try {
    const emulators = await startEmulators({
      log,
      onExit: (name, detail) =>
        notice(`${name} (emulator) died — data calls will fail until you restart npm start: ${detail}`),
    });
    stops.push(() => emulators.stop());
    const clients = createClients(emulators.env);
    const resources = await provisionFromTemplate(
      { dynamodb: clients.dynamodb, sqs: clients.sqs, eventbridge: clients.eventbridge, s3: clients.s3 },
      { prefix: options.prefix ?? 'cronplane-' },
    );
    const env: Record<string, string> = {
      ...emulators.env,
      ...resources.env,
      CRONPLANE_TICK_PERIOD_MS: '5000',
      CRONPLANE_TICK_MARGIN_MS: '10000',
      ...options.settings,
    };
    if (options.dynamodbVia) {
      const via = await options.dynamodbVia(emulators.endpoints.dynamodb);
      env.AWS_ENDPOINT_URL_DYNAMODB = via;
      env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS = via;
    }
    // The same record calls as the functions' EMF on AWS, kept in process for GET /metrics.
    const metrics = new PrometheusRegistry(Object.values(METRICS));
    const ctx: Context = { ...createContext(env), metrics };
    const api = await startHttpServer({
      metrics,
      handler: createApiHandler(ctx),
      port: options.port ?? 8080,
      uiDir: join(REPO_ROOT, 'web', 'dist'),
      iamAuth: options.iamAuth,
    });
    stops.push(api.close);

    const owner = `local-ticker@${hostname()}:${process.pid}`;
    let ticking: Promise<unknown> = Promise.resolve();
    let busy = false;
    const tickNow = () => {
      const run = coordinate(ctx, owner, inProcessFanOut(ctx, owner)).then((r) => r.shard0);
      busy = true;
      ticking = run
        .catch(() => {})
        .finally(() => {
          busy = false;
        });
      return run;
    };
    await tickNow();
    const timer = setInterval(() => {
      // A tick still planning a big window is not joined by another one (the lease would refuse it anyway).
      if (busy) return;
      void tickNow().then(
        (r) => r.errors.length && log(`tick errors: ${JSON.stringify(r.errors)}`),
        (e: unknown) => log(`tick failed: ${(e as Error).message}`),
      );
    }, options.tickIntervalMs ?? 1_000);
    stops.push(async () => {
      clearInterval(timer);
      await ticking;
    });

    // Says when the store stops answering and when it answers again (GET /health has the details).
    const healthEveryMs = options.healthEveryMs ?? 5_000;
    if (healthEveryMs > 0) {
      let lastDown = '';
      let checking = false;
      const watchdog = setInterval(() => {
        if (checking) return;
        checking = true;
        void checkHealth(ctx)
          .then((h) => {
            const down = h.down.map((part) => `${part} (${h.checks[part]?.error ?? 'down'})`).join(', ');
            if (down && down !== lastDown) notice(`the store is not answering: ${down}`);
            if (!down && lastDown) notice('the store answers again');
            lastDown = down;
          })
          .finally(() => {
            checking = false;
          });
      }, healthEveryMs);
      watchdog.unref();
      stops.push(async () => clearInterval(watchdog));
    }

    // The events Lambda's trigger, locally: the Executions table's stream, polled.
    const poller = startStreamPoller(ctx, { log });
    stops.push(() => poller.stop());

    // The agentless worker Lambda, locally: the same launch processing, polling the worker queue.
    if (ctx.config.workerQueueUrl && options.worker !== false) {
      const worker = new Agent(ctx, {
        agentId: 'worker',
        nodeName: 'worker',
        queues: [ctx.config.workerQueueUrl],
        member: false,
        concurrency: 16,
        executors: createExecutors({
          clients: ctx.clients,
          secretsPath: ctx.config.secretsPath,
          workerAllow: ctx.config.workerAllow,
        }),
        // The worker's processors: what an agentless job may use (shared/processors/registry.ts).
        processors: createProcessorHost({
          place: 'worker',
          clients: ctx.clients,
          outputBucket: ctx.config.outputBucket,
          workerAllow: ctx.config.workerAllow,
          log: (e) => log(JSON.stringify(e)),
        }),
        pollWaitSeconds: 2,
        log: (e) => log(JSON.stringify(e)),
      });
      await worker.start();
      stops.push(() => worker.stop(5_000));
    }

    const agents = (options.agents ?? [{ agentId: `local-${hostname()}` }]).map(
      (a) => new Agent(ctx, { pollWaitSeconds: 2, ...a, log: (e) => log(JSON.stringify(e)) }),
    );
    for (const agent of agents) {
      await agent.start();
      stops.push(() => agent.stop(5_000));
    }

    if (options.writeStackFile) {
      const stackFile = options.writeStackFile;
      await mkdir(dirname(stackFile), { recursive: true });
      await writeFile(stackFile, JSON.stringify({ url: api.url, pid: process.pid, env }, null, 2));
      stops.push(() => rm(stackFile, { force: true }));
    }
    return { url: api.url, env, ctx, agents, streamPoller: poller, tickNow, metrics, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
