/** Reads every page of a DynamoDB Query or Scan (the SDK answers at most 1 MB a call). */
import {
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from './clients.ts';

type Item = Record<string, unknown>;

/** Yields the items of every page; stop iterating to stop reading. */
export async function* allItems(
  clients: AwsClients,
  input: ({ kind: 'query' } & QueryCommandInput) | ({ kind: 'scan' } & ScanCommandInput),
): AsyncGenerator<Item> {
  const { kind, ...request } = input;
  let start: Item | undefined;
  do {
    const out =
      kind === 'query'
        ? await clients.doc.send(
            new QueryCommand({ ...(request as QueryCommandInput), ExclusiveStartKey: start }),
          )
        : await clients.doc.send(
            new ScanCommand({ ...(request as ScanCommandInput), ExclusiveStartKey: start }),
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
