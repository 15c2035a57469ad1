/**
 * Billing-grade request metering for the `cost` figure: a middleware on EVERY AWS SDK client of this
 * process (added on a client's first `send`, through the SDK's shared Client base class, so clients
 * created inside the functions' handler modules are metered too), and who sent each request (the
 * "actor": tick, events, worker, agent, … from an AsyncLocalStorage the bench sets around each
 * in-process invocation; requests outside any actor count as the agent's).
 *
 * Per actor and service/command it counts requests, failed requests, and the billing units:
 * - DynamoDB: `ReturnConsumedCapacity: 'INDEXES'` is injected into every command that takes it (the
 *   code under test never asks for it), and the request units are read from `ConsumedCapacity` (DynamoDB
 *   Local returns them for every data command, transactions and batches included, table and GSIs; a
 *   transaction's are scaled by its items per table: see transactionItemsPerTable). A
 *   request that fails (a conditional check, a cancelled transaction) returns no ConsumedCapacity; AWS
 *   still bills it, so it is estimated: 1 WRU per conditional write, 2 per item of a cancelled
 *   transaction, 0.5 RRU per failed read (`estimated_units` says how many units were estimated). A
 *   BatchGetItem's keys without an item are added too (see missingBatchReads).
 * - SQS: requests in 64 KB chunks of payload (message bodies sent or received, attributes excluded).
 * - EventBridge: PutEvents entries (each a custom event, 64 KB chunks).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@smithy/core/client';
import { sqsBilledRequests } from './prices.ts';

export const actorStore = new AsyncLocalStorage<string>();

/** Runs `fn` with its AWS requests (and stdout bytes) counted as `actor`'s. */
export function asActor<T>(actor: string, fn: () => T): T {
  return actorStore.run(actor, fn);
}

export const currentActor = () => actorStore.getStore() ?? 'agent';

const unmeteredStacks = new WeakSet<object>();

/** A client whose requests are not counted: the bench's own looks at the emulators, which AWS has no part in. */
export function unmetered<T extends { middlewareStack: object }>(client: T): T {
  unmeteredStacks.add(client.middlewareStack);
  return client;
}

export interface CommandTally {
  requests: number;
  failed: number;
  /** DynamoDB: read or write request units (by the command's kind); others 0. */
  units: number;
  /** Of `units`: estimated for failed requests (no ConsumedCapacity in an error). */
  estimatedUnits: number;
  /** Of `units`: consumed on global secondary indexes. */
  gsiUnits: number;
  /** SQS: billed requests (64 KB chunks); EventBridge: events. */
  billed: number;
}

/** actor → `service.Command` → tally */
export type Tally = Map<string, Map<string, CommandTally>>;

const DYNAMO_WRITES = new Set([
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchWriteItem',
  'TransactWriteItems',
  'ExecuteTransaction',
]);
const DYNAMO_READS = new Set([
  'GetItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'TransactGetItems',
  'ExecuteStatement',
  'BatchExecuteStatement',
]);
/** The document client's command names → the API's. */
const DOC_COMMANDS: Record<string, string> = {
  Put: 'PutItem',
  Get: 'GetItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactGet: 'TransactGetItems',
  TransactWrite: 'TransactWriteItems',
  Query: 'Query',
  Scan: 'Scan',
};

export function serviceOf(clientName: string | undefined): string {
  const c = clientName ?? 'unknown';
  if (/DynamoDBStreams/.test(c)) return 'dynamodb_streams';
  if (/DynamoDB/.test(c)) return 'dynamodb';
  if (/^SQS/.test(c)) return 'sqs';
  if (/EventBridge/.test(c)) return 'eventbridge';
  if (/^Lambda/.test(c)) return 'lambda';
  if (/^S3/.test(c)) return 's3';
  if (/CloudWatchLogs/.test(c)) return 'logs';
  if (/^SSM/.test(c)) return 'ssm';
  return c.replace(/Client$/, '').toLowerCase();
}

export function isDynamoWrite(command: string): boolean {
  return DYNAMO_WRITES.has(command);
}
export function isDynamoRead(command: string): boolean {
  return DYNAMO_READS.has(command);
}

type Capacity = {
  CapacityUnits?: number;
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
};

/**
 * Items per table of a TransactWriteItems input. DynamoDB Local reports a transaction's capacity per table
 * as if the table had one item in it (probed: 1, 2, 10 and 50 puts to the Executions table all reported
 * 2 table + 2 byActive units), so the reported units are multiplied by the table's item count — exact
 * when the items are alike (a tick's puts, a batch's marks), an estimate otherwise.
 */
function transactionItemsPerTable(input: Record<string, unknown>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of (input.TransactItems as Array<Record<string, { TableName?: string }>> | undefined) ??
    []) {
    const table = Object.values(item)[0]?.TableName;
    if (table) counts.set(table, (counts.get(table) ?? 0) + 1);
  }
  return counts;
}

function capacityOf(
  out: unknown,
  itemsPerTable?: Map<string, number>,
): { units: number; gsi: number } | null {
  const cc = (out as { ConsumedCapacity?: (Capacity & { TableName?: string }) | Capacity[] } | undefined)
    ?.ConsumedCapacity;
  if (cc === undefined) return null;
  const list: Array<Capacity & { TableName?: string }> = Array.isArray(cc) ? cc : [cc];
  let units = 0;
  let gsi = 0;
  for (const c of list) {
    const times = (c.TableName && itemsPerTable?.get(c.TableName)) || 1;
    units += (c.CapacityUnits ?? 0) * times;
    for (const g of Object.values(c.GlobalSecondaryIndexes ?? {})) gsi += (g.CapacityUnits ?? 0) * times;
  }
  return { units, gsi };
}

function bytes(s: unknown): number {
  return typeof s === 'string' ? Buffer.byteLength(s) : 0;
}

/**
 * The read units DynamoDB Local leaves out of a BatchGetItem's ConsumedCapacity: a key it finds no item for
 * reports 0 units (probed 2026-12-07; a GetItem of a missing item reports 1), where AWS bills a read
 * either way — 1 RRU consistent, 0.5 eventually consistent (the runners' read of the pause flag, absent
 * while the scheduler runs, is such a read).
 */
export function missingBatchReads(
  input: Record<string, unknown>,
  out: Record<string, unknown> | undefined,
): number {
  const asked = (input.RequestItems ?? {}) as Record<string, { Keys?: unknown[]; ConsistentRead?: boolean }>;
  const found = (out?.Responses ?? {}) as Record<string, unknown[]>;
  const unprocessed = (out?.UnprocessedKeys ?? {}) as Record<string, { Keys?: unknown[] }>;
  let units = 0;
  for (const [table, spec] of Object.entries(asked)) {
    const missing =
      (spec.Keys?.length ?? 0) - (found[table]?.length ?? 0) - (unprocessed[table]?.Keys?.length ?? 0);
    if (missing > 0) units += missing * (spec.ConsistentRead ? 1 : 0.5);
  }
  return units;
}

/** The estimate for a failed DynamoDB request (see the module comment). */
function failedUnits(command: string, input: Record<string, unknown>): number {
  if (command === 'TransactWriteItems') return 2 * ((input.TransactItems as unknown[]) ?? []).length;
  if (isDynamoWrite(command)) return 1;
  if (isDynamoRead(command)) return 0.5;
  return 0;
}

export class CostMeter {
  readonly tally: Tally = new Map();
  private on = false;

  start(): void {
    this.tally.clear();
    this.on = true;
  }
  stop(): Tally {
    this.on = false;
    return this.tally;
  }

  private entry(actor: string, key: string): CommandTally {
    let byCommand = this.tally.get(actor);
    if (!byCommand) {
      byCommand = new Map();
      this.tally.set(actor, byCommand);
    }
    let t = byCommand.get(key);
    if (!t) {
      t = { requests: 0, failed: 0, units: 0, estimatedUnits: 0, gsiUnits: 0, billed: 0 };
      byCommand.set(key, t);
    }
    return t;
  }

  /** The middleware (serialize step, before the serializer: the input is the wire-level one). */
  private middleware() {
    return (next: (a: unknown) => Promise<unknown>, context: { clientName?: string; commandName?: string }) =>
      async (args: unknown) => {
        if (!this.on) return next(args);
        const service = serviceOf(context.clientName);
        const raw = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const command = service === 'dynamodb' ? (DOC_COMMANDS[raw] ?? raw) : raw;
        const actor = currentActor();
        const t = this.entry(actor, `${service}.${command}`);
        t.requests++;
        let input = (args as { input: Record<string, unknown> }).input ?? {};
        const metersCapacity = service === 'dynamodb' && (isDynamoRead(command) || isDynamoWrite(command));
        if (metersCapacity && input.ReturnConsumedCapacity === undefined) {
          input = { ...input, ReturnConsumedCapacity: 'INDEXES' };
          args = { ...(args as object), input };
        }
        if (service === 'sqs' && /^SendMessage/.test(command)) {
          const entries = (input.Entries as Array<{ MessageBody?: string }> | undefined) ?? [input];
          t.billed += sqsBilledRequests(entries.reduce((s, e) => s + bytes(e.MessageBody), 0));
        } else if (service === 'eventbridge' && command === 'PutEvents') {
          for (const e of (input.Entries as Array<{ Detail?: string }> | undefined) ?? [])
            t.billed += sqsBilledRequests(bytes(e.Detail)); // same 64 KB chunking
        }
        try {
          const result = (await next(args)) as { output?: Record<string, unknown> };
          const out = result?.output;
          if (metersCapacity) {
            const c = capacityOf(
              out,
              command === 'TransactWriteItems' ? transactionItemsPerTable(input) : undefined,
            );
            if (c) {
              t.units += c.units;
              t.gsiUnits += c.gsi;
            }
            if (command === 'BatchGetItem') {
              const est = missingBatchReads(input, out);
              t.units += est;
              t.estimatedUnits += est;
            }
          }
          if (service === 'sqs' && !/^SendMessage/.test(command)) {
            const messages = (out?.Messages as Array<{ Body?: string }> | undefined) ?? [];
            t.billed += sqsBilledRequests(messages.reduce((s, m) => s + bytes(m.Body), 0));
          }
          return result;
        } catch (error) {
          t.failed++;
          if (metersCapacity) {
            const est = failedUnits(command, input);
            t.units += est;
            t.estimatedUnits += est;
          }
          if (service === 'sqs' && !/^SendMessage/.test(command)) t.billed += 1;
          throw error;
        }
      };
  }

  /** Adds the middleware to every SDK client of this process, on each client's first send. */
  install(): void {
    const proto = Client.prototype as unknown as {
      send: (...args: unknown[]) => unknown;
      __costMetered?: boolean;
    };
    if (proto.__costMetered) return;
    proto.__costMetered = true;
    const original = proto.send;
    const seen = new WeakSet<object>();
    const middleware = this.middleware();
    proto.send = function (this: { middlewareStack: { add: (m: unknown, o: unknown) => void } }, ...args) {
      const stack = this.middlewareStack;
      // The document client shares its DynamoDB client's stack: one middleware for both.
      if (stack && !seen.has(stack) && !unmeteredStacks.has(stack)) {
        seen.add(stack);
        stack.add(middleware, {
          step: 'serialize',
          priority: 'high',
          name: 'bench-cost-meter',
          override: true,
        });
      }
      return original.apply(this, args);
    };
  }
}

/** Bytes written to stdout per actor (the functions' log and EMF lines: CloudWatch Logs ingestion). */
export class StdoutMeter {
  readonly bytes = new Map<string, number>();
  /** EMF metric lines seen per actor: metric name × dimension set. */
  readonly metrics = new Map<string, Set<string>>();
  private readonly original = process.stdout.write;
  private readonly write = process.stdout.write.bind(process.stdout);
  private installed = false;

  /** Gives stdout back (the figure's JSON lines go out through it). */
  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    process.stdout.write = this.original;
  }

  /** Swallows stdout (the functions' Powertools lines) and counts it; `passThrough` writes past it. */
  install(): void {
    if (this.installed) return;
    this.installed = true;
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const actor = currentActor();
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      this.bytes.set(actor, (this.bytes.get(actor) ?? 0) + Buffer.byteLength(text));
      if (text.includes('"_aws"')) this.noteEmf(actor, text);
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  }

  private noteEmf(actor: string, text: string): void {
    for (const line of text.split('\n')) {
      try {
        const o = JSON.parse(line) as {
          _aws?: {
            CloudWatchMetrics?: Array<{ Dimensions?: string[][]; Metrics?: Array<{ Name: string }> }>;
          };
          [k: string]: unknown;
        };
        for (const d of o._aws?.CloudWatchMetrics ?? []) {
          for (const dims of d.Dimensions ?? [[]]) {
            const dimValues = dims.map((k) => `${k}=${String(o[k])}`).join(',');
            for (const m of d.Metrics ?? []) {
              let set = this.metrics.get(actor);
              if (!set) {
                set = new Set();
                this.metrics.set(actor, set);
              }
              set.add(`${m.Name}{${dimValues}}`);
            }
          }
        }
      } catch {
        // not JSON
      }
    }
  }

  reset(): void {
    this.bytes.clear();
    this.metrics.clear();
  }

  /** Writes to the real stdout (the figure's JSON lines). */
  passThrough(text: string): void {
    this.write(text);
  }
}
