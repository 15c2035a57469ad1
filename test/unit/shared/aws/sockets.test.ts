/**
 * An agent long-polls every queue its tags serve at once (up to 64), and acks, extends and hands off
 * launches besides: the SQS client must hold more requests in flight than the SDK's default 50 sockets.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { createClients } from '../../../../shared/aws/clients.ts';

describe('the SQS client', () => {
  it('keeps 100 long polls in flight at once (the SDK default would queue all past 50)', async () => {
    let inFlight = 0;
    let most = 0;
    const server = createServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      req.resume();
      // A long poll that finds nothing: answered after a while, empty.
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
      }, 800);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const clients = createClients({ AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: url });
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          clients.sqs.send(
            new ReceiveMessageCommand({ QueueUrl: `${url}/000000000000/q${i}`, WaitTimeSeconds: 1 }),
          ),
        ),
      );
      expect(most).toBe(100);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
