/**
 * Output beyond the in-memory head and tail: the local stack (API, ticker, one agent) with the output
 * bucket provisioned from the CDK template in moto. The full output goes to S3; the execution says where.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newestFinished, startTestStack } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;
let stack: Stack;

type ApiExecution = {
  id: string;
  status: string;
  output: string;
  output_truncated: boolean;
  output_url: string | null;
};

beforeAll(async () => {
  stack = await startTestStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function runOnce(name: string, command: string): Promise<ApiExecution> {
  const created = await stack.api('POST', '/v1/jobs', {
    name,
    schedule: '@manually',
    executor: 'shell',
    executor_config: { command, shell: 'true' },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.api('POST', `/v1/jobs/${name}/run`)).status).toBe(202);
  return newestFinished<ApiExecution>(stack.api, name, 30_000);
}

function spillFiles(executionId: string): string[] {
  return readdirSync(tmpdir()).filter((f) => f.startsWith(`cronplane-output-${executionId}-`));
}

describe('full output in the output bucket', () => {
  it('provisions the bucket and hands it to the functions', () => {
    expect(stack.env.CRONPLANE_OUTPUT_BUCKET).toMatch(/^[a-z0-9][a-z0-9.-]+outputbucket$/);
    expect(stack.ctx.config.outputBucket).toBe(stack.env.CRONPLANE_OUTPUT_BUCKET);
  });

  it('uploads the whole output of a truncated execution and records where', async () => {
    const e = await runOnce('chatty', "head -c 600000 /dev/zero | tr '\\0' a; echo END");
    expect(e.status).toBe('succeeded');
    expect(e.output_truncated).toBe(true);
    expect(e.output.length).toBeLessThan(300_000);
    const bucket = stack.env.CRONPLANE_OUTPUT_BUCKET!;
    expect(e.output_url).toBe(`s3://${bucket}/executions/chatty/${e.id}.log`);

    const object = await stack.ctx.clients.s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: `executions/chatty/${e.id}.log` }),
    );
    const body = await object.Body!.transformToString();
    expect(body.length).toBe(600_004);
    expect(body.startsWith('a'.repeat(1000))).toBe(true);
    expect(body.endsWith('aEND\n')).toBe(true);
    expect(object.ContentType).toMatch(/^text\/plain/);
    expect(spillFiles(e.id)).toEqual([]);
  });

  it('keeps short output in the execution only', async () => {
    const e = await runOnce('quiet', 'echo hello');
    expect(e).toMatchObject({
      status: 'succeeded',
      output: 'hello\n',
      output_truncated: false,
      output_url: null,
    });
    expect(spillFiles(e.id)).toEqual([]);
  });
});
