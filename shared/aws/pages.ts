/** Reads every page of a DynamoDB Query or Scan (the SDK answers at most 1 MB a call). */
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from './clients.ts';
import { type Attempt, once } from './unavailable.ts';

type Item = Record<string, unknown>;

/** Yields the items of every page (each page's request sent through `attempt`); stop iterating to stop reading. */
export async function* allItems(
  clients: AwsClients,
  input: ({ kind: 'query' } & QueryCommandInput) | ({ kind: 'scan' } & ScanCommandInput),
  attempt: Attempt = once,
): AsyncGenerator<Item> {
  const { kind, ...request } = input;
  let start: Item | undefined;
  do {
    const from = start;
    const out = await attempt(() =>
      kind === 'query'
        ? clients.doc.send(new QueryCommand({ ...(request as QueryCommandInput), ExclusiveStartKey: from }))
        : clients.doc.send(new ScanCommand({ ...(request as ScanCommandInput), ExclusiveStartKey: from })),
    );
    for (const item of out.Items ?? []) yield item;
    start = out.LastEvaluatedKey;
  } while (start);
}

/** Every item, mapped. */
export async function collect<T>(items: AsyncGenerator<Item>, map: (item: Item) => T): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(map(item));
  return out;
}

/**
 * The items with these keys, read with BatchGetItem (100 keys a call, unprocessed keys asked again).
 * Missing items are simply absent; the order is not the keys' order.
 */
export async function batchGet(
  clients: AwsClients,
  table: string,
  keys: readonly Item[],
  consistent = true,
  projection?: { ProjectionExpression: string; ExpressionAttributeNames?: Record<string, string> },
  attempt: Attempt = once,
): Promise<Item[]> {
  const items = await batchGetTables(clients, [{ table, keys, consistent, projection }], attempt);
  return items.get(table) ?? [];
}

/** One table's keys in a batch read. */
export interface TableKeys {
  readonly table: string;
  readonly keys: readonly Item[];
  /** Default: consistent. */
  readonly consistent?: boolean;
  readonly projection?: { ProjectionExpression: string; ExpressionAttributeNames?: Record<string, string> };
}

/**
 * The items with these keys in several tables, read with BatchGetItem: one request for up to 100 keys
 * over all the tables, unprocessed keys asked again. Answers each table's items (missing ones absent).
 */
export async function batchGetTables(
  clients: AwsClients,
  tables: readonly TableKeys[],
  attempt: Attempt = once,
): Promise<Map<string, Item[]>> {
  const out = new Map<string, Item[]>(tables.map((t) => [t.table, []]));
  const options = new Map(tables.map((t) => [t.table, t]));
  let queue: Array<{ table: string; key: Item }> = tables.flatMap((t) =>
    t.keys.map((key) => ({ table: t.table, key })),
  );
  for (let round = 0; queue.length > 0; ) {
    const chunk = queue.slice(0, 100);
    const requestItems: Record<string, { Keys: Item[] } & Record<string, unknown>> = {};
    for (const { table, key } of chunk) {
      const t = options.get(table)!;
      requestItems[table] ??= { Keys: [], ConsistentRead: t.consistent ?? true, ...t.projection };
      requestItems[table].Keys.push(key);
    }
    const res: BatchGetCommandOutput = await attempt(() =>
      clients.doc.send(new BatchGetCommand({ RequestItems: requestItems })),
    );
    for (const [table, items] of Object.entries(res.Responses ?? {})) out.get(table)?.push(...items);
    const unprocessed = Object.entries(res.UnprocessedKeys ?? {}).flatMap(([table, r]) =>
      (r.Keys ?? []).map((key) => ({ table, key })),
    );
    queue = [...unprocessed, ...queue.slice(chunk.length)];
    // Unprocessed keys (throttling) are asked again after a backoff; a full answer resets it.
    round = unprocessed.length > 0 ? round + 1 : 0;
    if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1_000, 20 * 2 ** round)));
  }
  return out;
}
