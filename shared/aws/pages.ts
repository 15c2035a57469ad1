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
  const out: Item[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    let pending: Item[] | undefined = keys.slice(i, i + 100) as Item[];
    for (let round = 0; pending && pending.length > 0; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1_000, 20 * 2 ** round)));
      const keysNow = pending;
      const res: BatchGetCommandOutput = await attempt(() =>
        clients.doc.send(
          new BatchGetCommand({
            RequestItems: { [table]: { Keys: keysNow, ConsistentRead: consistent, ...projection } },
          }),
        ),
      );
      out.push(...(res.Responses?.[table] ?? []));
      pending = res.UnprocessedKeys?.[table]?.Keys as Item[] | undefined;
    }
  }
  return out;
}
