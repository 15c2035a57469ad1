/**
 * The `cost` figure: what an execution and an idle month cost on AWS, counted on the real code path.
 *
 * Everything runs in this process against the local stack (DynamoDB Local + moto), with the functions
 * invoked the way AWS invokes them and every AWS SDK request metered (cost-meter.ts):
 * - tick: the real Lambda handler (functions/tick/handler.ts) once per 60 s, CRONPLANE_TICK_PERIOD_MS
 *   60 s, as the EventBridge rule invokes it on AWS (the stack's own 1 s ticker is off);
 * - events: the real Lambda handler (functions/events/handler.ts), fed by a stand-in for its event source
 *   mapping: GetRecords on the Executions stream, batches of ≤ 100, only the records the mapping's filter
 *   passes (finishes: infra/lib/events.ts). The stack's own stream poller is paused;
 * - worker (agentless): the real Lambda handler (functions/worker/handler.ts), one invocation per launch
 *   message (batchSize 1), fed by a stand-in for the SQS event source mapping (ReceiveMessage of up to 10
 *   with 20 s long polls, DeleteMessageBatch of the handled ones: billed SQS requests on AWS too);
 * - agent (shell): one in-process Agent (the host agent's code), default poll wait (20 s) and heartbeat.
 * Each invocation's duration is measured (rounded up to 1 ms as Lambda bills) × the function's memory
 * (infra/lib: 512 MB, arm64). Stdout written inside an invocation (Powertools log lines, EMF metric
 * lines) is counted as CloudWatch Logs ingestion, plus ~400 bytes of START/END/REPORT lines per invocation.
 *
 * Per execution: the ticks' usage divided by the executions they planned, everything else's by the finishes
 * reacted to (the API plans a new job's first minute before the meter starts).
 *
 * Variants: `shell` (jobs on an agent), `agentless` (http jobs on the worker), `idle` (no jobs: per tick
 * and per idle agent, scaled to a 30-day month with one tick a minute as on AWS).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context as LambdaContext, SQSEvent } from 'aws-lambda';
import {
  WORKER_BATCH_SIZE,
  WORKER_BATCH_WINDOW_SECONDS,
  workerLeadMs,
} from '../../shared/dispatch/dispatch.ts';
import { TERMINAL } from '../../shared/executions/execution.ts';
import {
  asActor,
  CostMeter,
  isDynamoRead,
  isDynamoWrite,
  StdoutMeter,
  type Tally,
  unmetered,
} from './cost-meter.ts';
import {
  addUsage,
  billedGbSeconds,
  dollars,
  type FunctionName,
  LAMBDA_MEMORY_MB,
  PRICE_TABLE,
  provisionedPrices,
  roundDollars,
  SECONDS_PER_MONTH,
  scaleUsage,
  type Usage,
} from './prices.ts';
import { emit, progress, quantiles, sleep, startStack, stopStack } from './support.ts';

/** Lambda's own START / END / REPORT lines per invocation (bytes, estimated). */
const PLATFORM_LOG_BYTES = 400;
/** Standard alarms the stack defines (infra/lib/alarms.ts). */
const ALARMS = 6;
/** Concurrent long polls of Lambda's SQS event source mapping when the queue is idle (AWS: 5 pollers). */
const ESM_IDLE_POLLERS = 5;
/** The utilization the stack's provisioned auto scaling targets (infra/lib/storage.ts, `-c billing=provisioned`). */
const PROVISIONED_UTILIZATION = 0.7;
const MINUTES_PER_MONTH = SECONDS_PER_MONTH / 60;

interface Invocation {
  readonly fn: FunctionName;
  readonly ms: number;
}

const meter = new CostMeter();
const out = new StdoutMeter();
const invocations: Invocation[] = [];

function lambdaContext(fn: string): LambdaContext {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `cronplane-${fn}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:cronplane-${fn}`,
    memoryLimitInMB: String(LAMBDA_MEMORY_MB[fn as FunctionName] ?? 512),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/cronplane-${fn}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, 900_000 - (Date.now() - started)),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** One in-process invocation of a function: its requests and stdout are its, its duration recorded. */
function invoke<T>(fn: FunctionName, body: () => Promise<T>): Promise<T> {
  return asActor(fn, async () => {
    const t = performance.now();
    try {
      return await body();
    } finally {
      invocations.push({ fn, ms: performance.now() - t });
    }
  });
}

type Stack = Awaited<ReturnType<typeof startStack>>;
type Handler<E, R> = (event: E, context: LambdaContext) => Promise<R>;

/** The events function's event source mapping: stream → filter (finishes) → handler, batches ≤ 100. */
function startEventsMapping(stack: Stack, handler: Handler<unknown, unknown>) {
  const ctx = stack.ctx;
  let stopping = false;
  const state = {
    finishes: 0,
    batches: 0,
    failures: 0,
    keys: new Set<string>(),
    /** Of each finish that started: its fire time and how late it started (its own clock reading). */
    starts: [] as Array<{ scheduledAt: number; lateMs: number }>,
  };
  const isFinish = (r: StreamRecord) => {
    const now = r.dynamodb?.NewImage?.status?.S;
    const before = r.dynamodb?.OldImage?.status?.S;
    const terminal = (s: string | undefined) => s !== undefined && TERMINAL.has(s as never);
    if (r.eventName === 'INSERT') return terminal(now);
    if (r.eventName === 'MODIFY') return terminal(now) && before !== undefined && !terminal(before);
    return false;
  };
  const loop = asActor('events_mapping', async () => {
    const table = await ctx.clients.dynamodb.send(
      new DescribeTableCommand({ TableName: ctx.config.tables.executions }),
    );
    const streamArn = table.Table?.LatestStreamArn;
    const shards = new Map<string, { iterator?: string; done: boolean; parent?: string }>();
    let lastDescribe = 0;
    while (!stopping) {
      try {
        if (Date.now() - lastDescribe > 1_000) {
          lastDescribe = Date.now();
          const d = await ctx.clients.dynamodbStreams.send(
            new DescribeStreamCommand({ StreamArn: streamArn }),
          );
          for (const s of d.StreamDescription?.Shards ?? [])
            if (s.ShardId && !shards.has(s.ShardId))
              shards.set(s.ShardId, { done: false, parent: s.ParentShardId });
        }
        for (const [id, shard] of shards) {
          if (shard.done || stopping) continue;
          const parent = shard.parent ? shards.get(shard.parent) : undefined;
          if (parent && !parent.done) continue;
          for (let round = 0; round < 50 && !stopping; round++) {
            shard.iterator ??= (
              await ctx.clients.dynamodbStreams.send(
                new GetShardIteratorCommand({
                  StreamArn: streamArn,
                  ShardId: id,
                  ShardIteratorType: 'TRIM_HORIZON',
                }),
              )
            ).ShardIterator;
            if (!shard.iterator) {
              shard.done = true;
              break;
            }
            const got = await ctx.clients.dynamodbStreams.send(
              new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 100 }),
            );
            const records = got.Records ?? [];
            shard.iterator = got.NextShardIterator;
            if (!shard.iterator) shard.done = true;
            const finishes = records.filter(isFinish);
            if (finishes.length > 0) {
              const res = (await invoke('events', () =>
                handler({ Records: finishes }, lambdaContext('events')),
              )) as { batchItemFailures?: unknown[] };
              state.batches++;
              state.finishes += finishes.length;
              for (const r of finishes) {
                state.keys.add(
                  `${r.dynamodb?.Keys?.jobName?.S}/${r.dynamodb?.Keys?.executionId?.S ?? r.dynamodb?.Keys?.executionId?.N}`,
                );
                const image = r.dynamodb?.NewImage;
                const scheduledAt = Number(image?.scheduledAt?.N);
                const startedAt = Number(image?.startedAt?.N);
                if (Number.isFinite(scheduledAt) && Number.isFinite(startedAt))
                  state.starts.push({ scheduledAt, lateMs: startedAt - scheduledAt });
              }
              state.failures += res?.batchItemFailures?.length ?? 0;
            }
            if (records.length < 100 || shard.done) break;
          }
        }
      } catch (error) {
        if (!stopping) progress(`events mapping: ${(error as Error).message}`);
      }
      await sleep(250);
    }
  });
  return {
    state,
    async stop() {
      stopping = true;
      await loop;
    },
  };
}

/**
 * The worker function's SQS event source mapping (infra/lib/worker.ts): batch size WORKER_BATCH_SIZE and a
 * batching window of WORKER_BATCH_WINDOW_SECONDS. A poller long-polls; once it has launches it gathers more
 * (receives of ten) until the batch is full or the window since its first ran out, then invokes the
 * function once with all of them.
 */
function startWorkerMapping(stack: Stack, handler: Handler<SQSEvent, { batchItemFailures: unknown[] }>) {
  const ctx = stack.ctx;
  const queueUrl = ctx.config.workerQueueUrl ?? '';
  // Looks at the queue without a receive, and without the meter: what Lambda's pollers know of the queue
  // while they gather is theirs; only their receives are billed (and counted, below).
  const peek = unmetered(
    new SQSClient({
      region: 'us-east-1',
      endpoint: stack.env.AWS_ENDPOINT_URL_SQS ?? stack.env.AWS_ENDPOINT_URL,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
  );
  const visible = async () => {
    const got = await peek.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return Number(got.Attributes?.ApproximateNumberOfMessages ?? 0);
  };
  const receive = async (max: number, waitSeconds: number) =>
    (
      await ctx.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
        }),
      )
    ).Messages ?? [];
  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  /** holdMs: how long before its fire time each launch reached the worker (it holds until then, billed). */
  const state = { invocations: 0, failures: 0, holdMs: [] as number[], lateArrivals: 0, backlog: 0 };
  const startedAt = Date.now();
  const backlogBefore = startedAt + workerLeadMs(1, false) + 1_000;
  const poller = () =>
    asActor('worker_mapping', async () => {
      while (!stopping) {
        try {
          const messages = await receive(10, 20);
          if (messages.length === 0) continue;
          const windowEnd = Date.now() + WORKER_BATCH_WINDOW_SECONDS * 1_000;
          while (messages.length < WORKER_BATCH_SIZE && Date.now() < windowEnd) {
            // A receive that waits may not outlast the window (another poller may have taken what it saw):
            // with less than a second left it does not wait (SQS reads WaitTimeSeconds 0 as a short poll).
            if ((await visible()) > 0)
              messages.push(
                ...(await receive(
                  Math.min(10, WORKER_BATCH_SIZE - messages.length),
                  windowEnd - Date.now() >= 1_000 ? 1 : 0,
                )),
              );
            else await sleep(Math.min(50, Math.max(1, windowEnd - Date.now())));
          }
          for (const m of messages) {
            try {
              const at = (JSON.parse(m.Body ?? '{}') as { scheduledAt?: number }).scheduledAt;
              // Launches visible before the mapping started (the API plans a new job's first minute at once)
              // waited for it: not the lead's doing.
              if (typeof at === 'number' && at < backlogBefore) state.backlog++;
              else if (typeof at === 'number') {
                state.holdMs.push(Math.max(0, at - Date.now()));
                if (Date.now() > at) state.lateArrivals++;
              }
            } catch {
              // not a launch
            }
          }
          // As Lambda's mapping does: what it gathered (up to the batch size, 10) is one invocation.
          const handled = invoke('worker', () =>
            handler(
              {
                Records: messages.map((m) => ({
                  messageId: m.MessageId ?? '',
                  receiptHandle: m.ReceiptHandle ?? '',
                  body: m.Body ?? '',
                  attributes: m.Attributes as never,
                  messageAttributes: {},
                  md5OfBody: m.MD5OfBody ?? '',
                  eventSource: 'aws:sqs',
                  eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:worker',
                  awsRegion: 'us-east-1',
                })),
              },
              lambdaContext('worker'),
            ),
          ).then((res) => {
            state.invocations++;
            const failed = new Set(
              (res?.batchItemFailures ?? []).map((f) => (f as { itemIdentifier: string }).itemIdentifier),
            );
            state.failures += failed.size;
            return messages
              .filter((m) => !failed.has(m.MessageId ?? ''))
              .map((m) => ({ Id: m.MessageId ?? '', ReceiptHandle: m.ReceiptHandle ?? '' }));
          });
          const p = handled.then(async (done) => {
            if (done.length > 0)
              await ctx.clients.sqs.send(
                new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done }),
              );
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        } catch (error) {
          if (!stopping) progress(`worker mapping: ${(error as Error).message}`);
          await sleep(500);
        }
      }
    });
  for (let i = 0; i < 4; i++) void poller();
  return {
    state,
    backlogBefore,
    async stop() {
      stopping = true; // the long polls in the air are left to end with the stack
      await Promise.all([...inFlight]);
    },
  };
}

/** Usage of a tally (optionally only some actors), with the Lambda side from `invs`. */
function usageOf(
  tally: Tally,
  invs: readonly Invocation[],
  logsBytes: number,
  actors?: (a: string) => boolean,
): Usage {
  let wru = 0;
  let rru = 0;
  let sqs = 0;
  let events = 0;
  let streams = 0;
  for (const [actor, byCommand] of tally) {
    if (actors && !actors(actor)) continue;
    for (const [key, t] of byCommand) {
      const [service, command] = key.split('.') as [string, string];
      if (service === 'dynamodb' && isDynamoWrite(command)) wru += t.units;
      if (service === 'dynamodb' && isDynamoRead(command)) rru += t.units;
      if (service === 'sqs') sqs += t.billed;
      if (service === 'eventbridge') events += t.billed;
      // GetRecords by a Lambda trigger (the events function's mapping) are free.
      if (service === 'dynamodb_streams' && command === 'GetRecords' && actor !== 'events_mapping')
        streams += t.requests;
    }
  }
  return {
    dynamodbWriteUnits: wru,
    dynamodbReadUnits: rru,
    dynamodbStreamsPaidReads: streams,
    sqsRequests: sqs,
    eventbridgeEvents: events,
    lambdaInvocations: invs.length,
    lambdaGbSeconds: invs.reduce((s, i) => s + billedGbSeconds(i.ms, LAMBDA_MEMORY_MB[i.fn]), 0),
    logsIngestedBytes: logsBytes + invs.length * PLATFORM_LOG_BYTES,
  };
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

/** requests per execution by actor → `service.Command`, plus request units. */
function perExecutionTable(tally: Tally, n: number) {
  const requests: Record<string, Record<string, number>> = {};
  const byService: Record<string, number> = {};
  const units: Record<string, { wru: number; rru: number; estimated: number; gsi: number }> = {};
  const failed: Record<string, number> = {};
  /** request units per execution by `actor:service.Command` (GSI share in `gsi`) */
  const unitsByCommand: Record<string, number> = {};
  for (const [actor, byCommand] of [...tally].sort(([a], [b]) => a.localeCompare(b))) {
    const row: Record<string, number> = {};
    const u = { wru: 0, rru: 0, estimated: 0, gsi: 0 };
    for (const [key, t] of [...byCommand].sort(([a], [b]) => a.localeCompare(b))) {
      row[key] = r3(t.requests / n);
      const service = key.split('.')[0] as string;
      byService[service] = r3((byService[service] ?? 0) * 1 + t.requests / n);
      const command = key.split('.')[1] as string;
      if (service === 'dynamodb' && isDynamoWrite(command)) u.wru += t.units;
      if (service === 'dynamodb' && isDynamoRead(command)) u.rru += t.units;
      u.estimated += t.estimatedUnits;
      u.gsi += t.gsiUnits;
      if (t.failed) failed[`${actor}:${key}`] = r3(t.failed / n);
      if (t.units > 0) unitsByCommand[`${actor}:${key}`] = r3(t.units / n);
      if (t.gsiUnits > 0) unitsByCommand[`${actor}:${key}:gsi`] = r3(t.gsiUnits / n);
    }
    requests[actor] = row;
    units[actor] = {
      wru: r3(u.wru / n),
      rru: r3(u.rru / n),
      estimated: r3(u.estimated / n),
      gsi: r3(u.gsi / n),
    };
  }
  return { requests, byService, units, failed, unitsByCommand };
}

/** Row-wise sum of per-execution rows. */
function sumRows(rows: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const row of rows) for (const [k, v] of Object.entries(row)) sum[k] = r3((sum[k] ?? 0) + v);
  return sum;
}

function lambdaSummary(invs: readonly Invocation[], n: number) {
  const out: Record<string, { invocations: number; mean_ms: number; billed_gb_s: number }> = {};
  for (const fn of Object.keys(LAMBDA_MEMORY_MB) as FunctionName[]) {
    const mine = invs.filter((i) => i.fn === fn);
    if (mine.length === 0) continue;
    out[fn] = {
      invocations: r3(mine.length / n),
      mean_ms: Math.round((mine.reduce((s, i) => s + i.ms, 0) / mine.length) * 10) / 10,
      billed_gb_s: Number(
        (mine.reduce((s, i) => s + billedGbSeconds(i.ms, LAMBDA_MEMORY_MB[fn]), 0) / n).toPrecision(4),
      ),
    };
  }
  return out;
}

function roundLines(byLine: Record<string, number>) {
  return Object.fromEntries(
    Object.entries(byLine)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => [k, roundDollars(v)]),
  );
}

function emitLine(fields: Record<string, unknown>) {
  out.uninstall();
  emit('cost', fields);
  out.install();
}

function prices() {
  return { region: PRICE_TABLE.region, date: PRICE_TABLE.date };
}

export interface CostOptions {
  readonly variant: 'shell' | 'agentless';
  readonly jobs: number;
  readonly everySeconds: number;
  /** Ticks, 60 s apart (each plans the next ~70 s). */
  readonly ticks: number;
}

async function bootStack(agents: boolean) {
  const stack = await startStack({
    // The host agent's default long poll (20 s; the local stack's in-process agents use 2 s).
    agents: agents ? [{ agentId: 'cost-agent', concurrency: 32, pollWaitSeconds: 20 }] : [],
    worker: false,
    healthEveryMs: 0,
    tickIntervalMs: 24 * 3_600_000,
    settings: {
      CRONPLANE_TICK_PERIOD_MS: '60000',
      // Steady state: every finish past the kept ones deletes one (the default keeps 100 per job).
      CRONPLANE_EXECUTIONS_KEPT: '5',
    },
  });
  await stack.streamPoller.pause();
  Object.assign(process.env, stack.env, { POWERTOOLS_METRICS_NAMESPACE: 'Cronplane' });
  // Imported once the environment is the stack's: the handler builds its context at import.
  const { handler } = await import('../../functions/tick/handler.ts');
  // The coordinator's report (shard 0's tick inside) or, before sharding, the tick's own.
  type Report = { shard0?: { planned: number; errors: unknown[] }; planned?: number; errors?: unknown[] };
  const tick = async () => {
    const r = (await invoke('tick', () => handler({}, lambdaContext('tick')))) as unknown as Report;
    return { planned: r.shard0?.planned ?? r.planned ?? 0, errors: r.shard0?.errors ?? r.errors ?? [] };
  };
  return { stack, tick };
}

export async function costExecutions(o: CostOptions): Promise<void> {
  progress(`cost/${o.variant}: ${o.jobs} jobs @every ${o.everySeconds}s, ${o.ticks} ticks 60 s apart`);
  meter.install();
  const target = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const port = (target.address() as AddressInfo).port;
  const { stack, tick } = await bootStack(o.variant === 'shell');
  out.install();
  try {
    const events = (await import('../../functions/events/handler.ts')).handler as Handler<unknown, unknown>;
    const worker =
      o.variant === 'agentless'
        ? ((await import('../../functions/worker/handler.ts')).handler as unknown as Handler<
            SQSEvent,
            { batchItemFailures: unknown[] }
          >)
        : undefined;
    for (let i = 0; i < o.jobs; i++) {
      const name = `cost-${String(i).padStart(3, '0')}`;
      const body =
        o.variant === 'shell'
          ? { name, schedule: `@every ${o.everySeconds}s`, executor_config: { command: 'true' } }
          : {
              name,
              schedule: `@every ${o.everySeconds}s`,
              executor: 'http',
              executor_config: { method: 'GET', url: `http://127.0.0.1:${port}/` },
            };
      const res = await fetch(`${stack.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`POST /v1/jobs ${name}: ${res.status} ${await res.text()}`);
    }
    await sleep(1_000);
    const workerMapping = worker ? startWorkerMapping(stack, worker) : undefined;
    const eventsMapping = startEventsMapping(stack, events);
    if (workerMapping) {
      // The API sent each new job's launches up to the tick's cursor at once, without the phase wait the
      // ticks' sends make (its client waits: shared/dispatch/dispatch.ts); a million executions are the
      // ticks' launches but for each job's first minute. Those are served unmetered, and the figure starts
      // with the first tick, a few seconds before the cursor.
      const cursor = await stack.ctx.control.getCursor(0);
      if (cursor !== null) await sleep(cursor - Date.now() - 3_000);
      workerMapping.state.holdMs.length = 0;
      workerMapping.state.lateArrivals = 0;
      Object.assign(eventsMapping.state, { finishes: 0, batches: 0, failures: 0 });
      eventsMapping.state.keys.clear();
      eventsMapping.state.starts.length = 0;
    }
    meter.start();
    out.reset();
    invocations.length = 0;
    const t0 = Date.now();
    let planned = 0;
    for (let i = 0; i < o.ticks; i++) {
      await sleep(t0 + i * 60_000 - Date.now());
      const report = await tick();
      planned += report.planned;
      progress(`tick ${i + 1}/${o.ticks}: planned ${report.planned} (errors ${report.errors.length})`);
    }
    // Until every planned execution finished and its finish was reacted to.
    const deadline = Date.now() + 180_000;
    let last = -1;
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      await sleep(2_000);
      const seen = eventsMapping.state.finishes;
      if (seen !== last) {
        last = seen;
        quietSince = Date.now();
      }
      if (eventsMapping.state.keys.size >= planned && Date.now() - quietSince > 5_000) break;
    }
    const wallS = (Date.now() - t0) / 1000;
    await workerMapping?.stop();
    await eventsMapping.stop();
    const tally = meter.stop();
    // Executions = distinct finished executions (a finish delivered twice is counted once).
    const n = eventsMapping.state.keys.size;
    progress(`planned ${planned}, finishes reacted to ${n}, ${wallS.toFixed(0)} s`);
    // Per execution, each part by the executions it served: the ticks' by those they planned (the API
    // planned each job's first minute when it was created, before the meter started: dividing the ticks'
    // cost by every finish would count half of the plan writes), the rest by the finishes reacted to.
    const isTick = (actor: string) => actor === 'tick';
    const part = (tick: boolean, per: number) => {
      const mine = new Map([...tally].filter(([a]) => isTick(a) === tick));
      const invs = invocations.filter((i) => (i.fn === 'tick') === tick);
      const logs = [...out.bytes].filter(([a]) => isTick(a) === tick).reduce((s, [, v]) => s + v, 0);
      return { tally: mine, invs, per, usage: scaleUsage(usageOf(mine, invs, logs), 1 / per) };
    };
    const parts = [part(true, Math.max(1, planned)), part(false, Math.max(1, n))];
    const perExecution = addUsage(...parts.map((p) => p.usage));
    const perMillion = dollars(scaleUsage(perExecution, 1_000_000));
    // The same usage on provisioned capacity (`-c billing=provisioned`) that auto scaling keeps 70 % used.
    const perMillionProvisioned = dollars(
      scaleUsage(perExecution, 1_000_000),
      provisionedPrices(PROVISIONED_UTILIZATION),
    );
    // The same runs with `-c workerMemory=256`: the worker's billed GB-seconds halve (its durations are
    // mostly the hold to the fire time, wall time that no CPU shortens; the CPU-bound rest would be slower).
    const workerGbS =
      invocations
        .filter((i) => i.fn === 'worker')
        .reduce((s, i) => s + billedGbSeconds(i.ms, LAMBDA_MEMORY_MB.worker), 0) / Math.max(1, n);
    const perMillionWorker256 = dollars(
      scaleUsage(
        {
          ...perExecution,
          lambdaGbSeconds:
            (perExecution.lambdaGbSeconds ?? 0) - workerGbS * (1 - 256 / LAMBDA_MEMORY_MB.worker),
        },
        1_000_000,
      ),
    );
    const tables = parts.map((p) => perExecutionTable(p.tally, p.per));
    const table = {
      byService: sumRows(tables.map((t) => t.byService)),
      requests: Object.assign({}, ...tables.map((t) => t.requests)),
      units: Object.assign({}, ...tables.map((t) => t.units)),
      unitsByCommand: Object.assign({}, ...tables.map((t) => t.unitsByCommand)),
      failed: Object.assign({}, ...tables.map((t) => t.failed)),
    };
    emitLine({
      variant: o.variant === 'shell' ? 'shell-on-agent' : 'agentless-http-worker',
      jobs: o.jobs,
      schedule: `@every ${o.everySeconds}s`,
      executions: n,
      finish_records: eventsMapping.state.finishes,
      planned_by_ticks: planned,
      executions_per_minute: Math.round((n / wallS) * 60),
      dollars_per_million_executions: roundDollars(perMillion.total),
      ...(workerMapping
        ? { dollars_per_million_executions_worker_256mb: roundDollars(perMillionWorker256.total) }
        : {}),
      dollars_per_million_by_line: roundLines(perMillion.byLine),
      dollars_per_million_executions_provisioned_70pct: roundDollars(perMillionProvisioned.total),
      dollars_per_million_provisioned_by_line: roundLines(perMillionProvisioned.byLine),
      requests_per_execution_by_service: table.byService,
      requests_per_execution: table.requests,
      request_units_per_execution: table.units,
      request_units_per_execution_by_command: table.unitsByCommand,
      failed_per_execution: table.failed,
      lambda_per_execution: Object.assign({}, ...parts.map((p) => lambdaSummary(p.invs, p.per))),
      log_bytes_per_execution: Math.round(perExecution.logsIngestedBytes ?? 0),
      events_batches: eventsMapping.state.batches,
      events_failures: eventsMapping.state.failures,
      ...(workerMapping
        ? {
            worker_invocations: workerMapping.state.invocations,
            worker_hold_ms_mean: Math.round(
              workerMapping.state.holdMs.reduce((a, b) => a + b, 0) /
                Math.max(1, workerMapping.state.holdMs.length),
            ),
            // Visible 1.3–1.55 s early (the send's phase: dispatch.ts phaseWaitMs), gathered for up to 1 s.
            worker_hold_ms: quantiles(workerMapping.state.holdMs),
            // Launches handed to the worker after their fire time (they start late).
            worker_arrivals_after_fire_time: workerMapping.state.lateArrivals,
            worker_backlog_at_start: workerMapping.state.backlog,
            // Start minus fire time of the runs whose launches the mapping found waiting for it left out.
            start_late_ms: quantiles(
              eventsMapping.state.starts
                .filter((s) => s.scheduledAt >= workerMapping.backlogBefore)
                .map((s) => s.lateMs),
            ),
          }
        : {}),
      executions_kept: 5,
      prices: prices(),
    });
  } finally {
    out.uninstall();
    await stopStack(stack);
    target.close();
  }
}

export async function costIdle(o: { ticks: number; agentSeconds: number }): Promise<void> {
  progress(`cost/idle: ${o.ticks} ticks with no jobs, one idle agent for ${o.agentSeconds} s`);
  meter.install();
  const { stack, tick } = await bootStack(true);
  out.install();
  try {
    await sleep(3_000); // the agent's start-up (registration, first queue list) is not idle time
    meter.start();
    out.reset();
    invocations.length = 0;
    const t0 = Date.now();
    // Ticks 1 s apart (AWS: one a minute); idle ticks plan nothing, each costs the same.
    for (let i = 0; i < o.ticks; i++) {
      await sleep(t0 + i * 1_000 - Date.now());
      await tick();
    }
    await sleep(t0 + o.agentSeconds * 1_000 - Date.now());
    const seconds = (Date.now() - t0) / 1000;
    const tally = meter.stop();
    const tickTally: Tally = new Map([...tally].filter(([a]) => a === 'tick'));
    const agentTally: Tally = new Map([...tally].filter(([a]) => a === 'agent'));
    const tickLogs = out.bytes.get('tick') ?? 0;
    const perTick = scaleUsage(usageOf(tickTally, invocations, tickLogs), 1 / o.ticks);
    const tickMonth = scaleUsage(perTick, MINUTES_PER_MONTH);
    // The worker's SQS event source mapping long-polls an empty queue: 5 pollers × 20 s waits.
    const esmMonth: Usage = { sqsRequests: ESM_IDLE_POLLERS * (SECONDS_PER_MONTH / 20) };
    const metricsPerTick = out.metrics.get('tick')?.size ?? 0;
    const monitoringMonth: Usage = { customMetricMonths: metricsPerTick, alarmMonths: ALARMS };
    const controlPlane = dollars(addUsage(tickMonth, esmMonth, monitoringMonth));
    const controlPlaneRequestsOnly = dollars(addUsage(tickMonth, esmMonth));
    const agentMonth = dollars(scaleUsage(usageOf(agentTally, [], 0), SECONDS_PER_MONTH / seconds));
    const perTickTable = perExecutionTable(tickTally, o.ticks);
    const perAgentHour = perExecutionTable(agentTally, seconds / 3600);
    emitLine({
      variant: 'idle-month',
      ticks_measured: o.ticks,
      agent_seconds: Math.round(seconds),
      dollars_per_idle_month_control_plane: roundDollars(controlPlane.total),
      dollars_per_idle_month_control_plane_by_line: roundLines(controlPlane.byLine),
      dollars_per_idle_month_control_plane_without_metrics_and_alarms: roundDollars(
        controlPlaneRequestsOnly.total,
      ),
      tick_requests_per_tick: perTickTable.requests.tick ?? {},
      tick_request_units_per_tick: perTickTable.units.tick ?? {},
      tick_lambda: lambdaSummary(invocations, o.ticks),
      tick_log_bytes_per_tick: Math.round(tickLogs / o.ticks) + PLATFORM_LOG_BYTES,
      tick_custom_metrics: [...(out.metrics.get('tick') ?? [])],
      alarms: ALARMS,
      worker_mapping_idle_polls_per_month: esmMonth.sqsRequests,
      agent_side_dollars_per_idle_month: roundDollars(agentMonth.total),
      agent_side_by_line: roundLines(agentMonth.byLine),
      agent_requests_per_hour: perAgentHour.requests.agent ?? {},
      assumptions:
        'AWS: 43,200 ticks/month (1/min); events mapping stream reads free; worker mapping 5 idle long polls of 20 s',
      prices: prices(),
    });
  } finally {
    out.uninstall();
    await stopStack(stack);
  }
}
