/**
 * local/moto-server.py runs moto with patches; this checks the one that changes behaviour. moto 5.2.5's
 * `Queue.delete_message` rebuilt the message list without the lock sends take, so concurrent sends and
 * deletes lost sent messages and brought deleted ones back (moto as released: 4–6 of 400 sends lost and
 * ~260 deletes undone per run of the script below). The script drives moto's SQS model from threads,
 * in the project's virtual environment, with the launcher's patches applied. The send path's speed-up
 * changes no behaviour either; its test counts the work a send does instead of timing it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../agent/stack-file.ts';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

let server: ChildProcess | undefined;
afterAll(() => {
  server?.kill('SIGKILL');
});
let started: Promise<string> | undefined;
/** One launcher for the tests that talk to it over HTTP. */
const moto = () => {
  started ??= startMoto();
  return started;
};

/** The launcher as local/emulators.ts starts it, on a port of its own; answers once moto answers. */
async function startMoto(): Promise<string> {
  const port = await freePort();
  server = spawn(
    join(REPO_ROOT, '.venv', 'bin', 'python'),
    [join(REPO_ROOT, 'local', 'moto-server.py'), '-H', '127.0.0.1', '-p', String(port)],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (
      await fetch(url).then(
        () => true,
        () => false,
      )
    )
      return url;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('moto did not start');
}

describe('moto server as the local stack runs it', () => {
  it('loses no sent message and undoes no delete when sends and deletes race', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, '.venv', 'bin', 'python'),
      [join(REPO_ROOT, 'test', 'integration', 'local', 'moto_delete_race.py'), 'patched'],
      { cwd: REPO_ROOT },
    );
    // 400 sent and 400 deleted from the 400 already there: exactly the 400 new ones are left.
    expect(JSON.parse(stdout)).toEqual({ missing: 0, left: 400 });
  }, 60_000);

  it('sends without walking the queue, and still deduplicates FIFO sends and counts messages', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, '.venv', 'bin', 'python'),
      [join(REPO_ROOT, 'test', 'integration', 'local', 'moto_send_cost.py'), 'patched'],
      { cwd: REPO_ROOT },
    );
    expect(JSON.parse(stdout)).toEqual({
      // moto as released: 200, one walk over the whole queue per send (quadratic in the queue's depth).
      counter_reads: 0,
      fifo_kept: 2,
      fifo_refused: true,
      counters: { visible: 100, delayed: 100, plain_dedupe: null, fifo_dedupe: 'true' },
    });
  }, 60_000);

  it("stamps a batch's messages with one time, so ten sent together come due together", async () => {
    const run = async (mode: string) =>
      JSON.parse(
        (
          await promisify(execFile)(
            join(REPO_ROOT, '.venv', 'bin', 'python'),
            [join(REPO_ROOT, 'test', 'integration', 'local', 'moto_batch_clock.py'), mode],
            { cwd: REPO_ROOT },
          )
        ).stdout,
      ) as { batches: number; spread: number };
    // moto as released stamps each message as it gets to it: every batch of ten comes due over a spread.
    expect((await run('unpatched')).spread).toBeGreaterThan(0);
    expect(await run('patched')).toEqual({ batches: 50, spread: 0 });
  }, 60_000);

  it('keeps connections open as SQS does, and a burst of long polls does not hold up other requests', async () => {
    const endpoint = await moto();
    // A keep-alive agent as the SDK's, counting the connections it opens.
    let connects = 0;
    const agent = new Agent({ keepAlive: true, maxSockets: 512 });
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args: Parameters<typeof create>) => {
      connects++;
      return create(...args);
    };
    const sqs = new SQSClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler({ httpAgent: agent }),
    });
    const { QueueUrl: quiet } = await sqs.send(new CreateQueueCommand({ QueueName: 'keepalive-quiet' }));
    const { QueueUrl: busy } = await sqs.send(new CreateQueueCommand({ QueueName: 'keepalive-busy' }));
    for (let i = 0; i < 30; i++)
      await sqs.send(new SendMessageCommand({ QueueUrl: busy, MessageBody: `m${i}` }));
    // moto's werkzeug server closed every connection: 32 requests, 32 connections.
    expect(connects).toBe(1);

    // 300 long polls of an empty queue wait at once (an agent polls every queue its tags serve, and
    // several agents share the emulator); requests beside them are answered at once.
    const polls = Array.from({ length: 300 }, () =>
      sqs.send(new ReceiveMessageCommand({ QueueUrl: quiet, WaitTimeSeconds: 3 })),
    );
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: busy, MaxNumberOfMessages: 10 }));
    await sqs.send(new ListQueuesCommand({}));
    expect(got.Messages?.length).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect((await Promise.all(polls)).every((r) => (r.Messages ?? []).length === 0)).toBe(true);
    sqs.destroy();
  }, 60_000);

  it('answers a waiting long poll when a delay or a visibility timeout ends, as SQS does', async () => {
    const sqs = new SQSClient({
      region: 'us-east-1',
      endpoint: await moto(),
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'long-poll-wakes' }));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    /** How long after `dueAt` a long poll started `afterMs` into the wait got a message. */
    const lateness = async (dueAt: number) => {
      const got = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5, VisibilityTimeout: 1 }),
      );
      expect(got.Messages).toHaveLength(1);
      return { late: Date.now() - dueAt, handle: got.Messages![0]!.ReceiptHandle! };
    };
    // moto as released slept a second on the queue's condition, which only a send wakes: a poll that began
    // 300–700 ms into a one-second delay got its message 300–700 ms after the delay ended.
    for (const afterMs of [300, 500, 700]) {
      const sent = Date.now();
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `d${afterMs}`, DelaySeconds: 1 }));
      await sleep(afterMs - (Date.now() - sent));
      const { late, handle } = await lateness(sent + 1_000);
      expect(late).toBeLessThan(150);
      // Received with a visibility timeout of 1 s and not deleted: it comes back a second later.
      const received = Date.now();
      await sleep(afterMs);
      const again = await lateness(received + 1_000);
      expect(again.late).toBeLessThan(150);
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: again.handle }));
      expect(handle).not.toBe(again.handle);
    }
    sqs.destroy();
  }, 60_000);
});
