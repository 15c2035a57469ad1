/**
 * The per-execution writes' path (shared/aws/update-item.ts) against DynamoDB Local: what it writes is
 * what the document client writes, a false condition is the same answer, and its client resolves the
 * middleware chain once per command class on the stack it shares with `clients.dynamodb`.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ifCondition } from '../../shared/aws/conditional.ts';
import { updateItem } from '../../shared/aws/update-item.ts';
import { createContext } from '../../shared/context.ts';
import { startTestStack } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;

beforeAll(async () => {
  stack = await startTestStack({ agents: [], tickIntervalMs: 3_600_000 });
});
afterAll(async () => {
  await stack?.stop();
});

function update(table: string, executionId: string): UpdateCommandInput {
  return {
    TableName: table,
    Key: { jobName: 'update-item', executionId },
    UpdateExpression: 'SET #s = :s, finishedAt = :n, success = :ok, #o = :out, errors = :pe, nothing = :null',
    ConditionExpression: 'attribute_not_exists(#s) OR #s = :from',
    ExpressionAttributeNames: { '#s': 'status', '#o': 'output' },
    ExpressionAttributeValues: {
      ':s': 'succeeded',
      ':from': 'running',
      ':n': 1_800_000_000_123,
      ':ok': true,
      ':out': 'line 1\nline ü 2',
      // A nested undefined is left out, as the document client (removeUndefinedValues) leaves it out.
      ':pe': [
        { processor: 'log', error: 'x', detail: undefined },
        { processor: 'files', n: 2.5 },
      ],
      ':null': null,
    },
    ReturnValues: 'ALL_NEW',
  };
}

describe('updateItem', () => {
  it('writes and answers what the document client does', async () => {
    const ctx = createContext(stack.env);
    const table = ctx.config.tables.executions;
    const viaDoc = await ctx.clients.doc.send(new UpdateCommand(update(table, 'doc')));
    const viaHot = await updateItem(ctx.clients, update(table, 'hot'));
    const read = async (executionId: string) =>
      (
        await ctx.clients.doc.send(
          new GetCommand({
            TableName: table,
            Key: { jobName: 'update-item', executionId },
            ConsistentRead: true,
          }),
        )
      ).Item;
    expect({ ...(await read('hot')), executionId: 'doc' }).toEqual(await read('doc'));
    expect({ ...viaHot.Attributes, executionId: 'doc' }).toEqual(viaDoc.Attributes);
    expect(viaHot.Attributes).toMatchObject({ output: 'line 1\nline ü 2', nothing: null, success: true });
  });

  it('answers a false condition as the document client does: ConditionalCheckFailedException', async () => {
    const ctx = createContext(stack.env);
    const input = update(ctx.config.tables.executions, 'twice');
    expect(await ifCondition(updateItem(ctx.clients, input))).toBe(true);
    // Now `succeeded`: the condition (absent or running) is false.
    expect(await ifCondition(updateItem(ctx.clients, input))).toBe(false);
    expect(await ifCondition(ctx.clients.doc.send(new UpdateCommand(input)))).toBe(false);
  });

  it('resolves the middleware chain once, on the stack it shares with clients.dynamodb', async () => {
    const ctx = createContext(stack.env);
    const seen: string[] = [];
    ctx.clients.dynamodb.middlewareStack.add(
      (next, context) => async (args) => {
        seen.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'seeUpdates' },
    );
    const resolved = vi.spyOn(UpdateItemCommand.prototype, 'resolveMiddleware');
    try {
      for (const id of ['a', 'b', 'c'])
        await updateItem(ctx.clients, update(ctx.config.tables.executions, id));
      // Other clients in this process (the stack's stream consumer) resolve their own: count this one's.
      const byHot = resolved.mock.calls.filter(([, config]) => config === ctx.clients.dynamodbHot.config);
      expect(byHot).toHaveLength(1);
    } finally {
      resolved.mockRestore();
    }
    expect(seen).toEqual(['UpdateItemCommand', 'UpdateItemCommand', 'UpdateItemCommand']);
    // The handler resolved once serves each send's own input: three items, one per key.
    for (const id of ['a', 'b', 'c']) {
      const item = await ctx.clients.doc.send(
        new GetCommand({
          TableName: ctx.config.tables.executions,
          Key: { jobName: 'update-item', executionId: id },
          ConsistentRead: true,
        }),
      );
      expect(item.Item, id).toMatchObject({ status: 'succeeded', executionId: id });
    }
  });
});
