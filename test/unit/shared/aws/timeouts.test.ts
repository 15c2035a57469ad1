import { createServer, type Socket } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  createClients,
  MAX_ATTEMPTS,
  REQUEST_TIMEOUT_MS,
  requestTimeoutFor,
} from '../../../../shared/aws/clients.ts';

const json = (target: string, body: unknown) => ({
  headers: { 'x-amz-target': target },
  body: JSON.stringify(body),
});

describe('requestTimeoutFor', () => {
  it("gives an SQS long poll its wait on top of the service's timeout", () => {
    const base = REQUEST_TIMEOUT_MS.sqs;
    expect(requestTimeoutFor('sqs', json('AmazonSQS.ReceiveMessage', { WaitTimeSeconds: 20 }))).toBe(
      base + 20_000,
    );
    expect(requestTimeoutFor('sqs', json('AmazonSQS.ReceiveMessage', { WaitTimeSeconds: 2 }))).toBe(
      base + 2_000,
    );
    // No WaitTimeSeconds: the queue's default may be up to 20 s.
    expect(requestTimeoutFor('sqs', json('AmazonSQS.ReceiveMessage', {}))).toBe(base + 20_000);
    expect(
      requestTimeoutFor('sqs', { headers: {}, body: 'Action=ReceiveMessage&QueueUrl=x&WaitTimeSeconds=5' }),
    ).toBe(base + 5_000);
  });

  it('keeps every other call short, whatever its body says', () => {
    expect(requestTimeoutFor('sqs', json('AmazonSQS.SendMessage', { WaitTimeSeconds: 20 }))).toBe(
      REQUEST_TIMEOUT_MS.sqs,
    );
    expect(requestTimeoutFor('dynamodb', json('DynamoDB_20120810.GetItem', {}))).toBe(
      REQUEST_TIMEOUT_MS.dynamodb,
    );
  });

  it('bounds a DynamoDB call well inside API Gateway’s 29 s, retries included', () => {
    expect(REQUEST_TIMEOUT_MS.dynamodb * MAX_ATTEMPTS).toBeLessThan(20_000);
  });
});

describe('a client against a server that never answers', () => {
  it('fails after its attempts time out instead of hanging', { timeout: 30_000 }, async () => {
    const sockets = new Set<Socket>();
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      sockets.add(socket); // accepts and reads, never answers: a stalled store
      socket.on('data', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const clients = createClients({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${port}` });
    const began = Date.now();
    try {
      const error = await clients.dynamodb
        .send(new GetItemCommand({ TableName: 't', Key: { k: { S: 'x' } } }))
        .then(
          () => null,
          (e: Error) => e,
        );
      const took = Date.now() - began;
      expect(error?.name).toBe('TimeoutError');
      expect(connections).toBe(MAX_ATTEMPTS); // each attempt on a fresh connection, retried
      expect(took).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS.dynamodb * MAX_ATTEMPTS - 100);
      expect(took).toBeLessThan(REQUEST_TIMEOUT_MS.dynamodb * MAX_ATTEMPTS + 5_000);
    } finally {
      clients.dynamodb.destroy();
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
