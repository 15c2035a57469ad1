import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../../../shared/aws/clients.ts';
import type { Execution } from '../../../../shared/executions/execution.ts';
import {
  EventBridgeExecutor,
  LambdaExecutor,
  lambdaErrorMessage,
  SqsExecutor,
} from '../../../../shared/executors/aws.ts';
import type { JobDefinition } from '../../../../shared/jobs/definition.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';

const execution = { executionId: '0000000000001.0.1', scheduledAt: 1, attempt: 1 } as Execution;
// Validated as a custom executor's job, without the config, so that configs the API would refuse still
// reach the executor.
const job = (executor: string, executor_config: Record<string, string>): JobDefinition => ({
  ...validateJob({ name: 'j', schedule: '@manually', executor: 'custom' }),
  executor,
  executor_config,
});

/** Clients whose every call is recorded and answered by `answer`. */
function recording(answer: (input: Record<string, unknown>) => unknown) {
  const inputs: Array<Record<string, unknown>> = [];
  const client = {
    send: async (command: { input: Record<string, unknown> }, opts?: { abortSignal?: AbortSignal }) => {
      inputs.push(command.input);
      if (opts?.abortSignal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      return answer(command.input);
    },
  };
  return { clients: { lambda: client, sqs: client, eventbridge: client } as unknown as AwsClients, inputs };
}

describe('lambdaErrorMessage', () => {
  it('takes errorType and errorMessage from an error payload', () => {
    expect(lambdaErrorMessage('{"errorType":"TypeError","errorMessage":"x is undefined"}')).toBe(
      ': TypeError: x is undefined',
    );
    expect(lambdaErrorMessage('not json')).toBe('');
    expect(lambdaErrorMessage('{}')).toBe('');
  });
});

describe('config validation (no call is made)', () => {
  const signal = new AbortController().signal;
  it.each([
    ['lambda', {}, /executor_config\.function_name: is required/],
    [
      'lambda',
      { function_name: 'f', invocation_type: 'DryRun' },
      /invocation_type: must be one of RequestResponse, Event/,
    ],
    ['sqs', { message: 'x' }, /queue_url: is required/],
    ['sqs', { queue_url: 'http://q/1/q' }, /message: is required/],
    [
      'sqs',
      { queue_url: 'http://q/1/q.fifo', message: 'x' },
      /message_group_id: is required for a FIFO queue/,
    ],
    ['sqs', { queue_url: 'http://q/1/q', message: 'x', delay_seconds: '901' }, /delay_seconds/],
    ['eventbridge', { detail_type: 't' }, /source: is required/],
    ['eventbridge', { source: 's', detail_type: 't', detail: '[1]' }, /detail: must be a JSON object/],
    ['lambda', { function_name: 'f', timeout: 'soon' }, /timeout/],
  ])('%s %j', async (executor, cfg, reason) => {
    const { clients, inputs } = recording(() => ({}));
    const ex = { lambda: LambdaExecutor, sqs: SqsExecutor, eventbridge: EventBridgeExecutor }[executor]!;
    const r = await new ex(clients).run(job(executor, cfg), execution, signal);
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(reason);
    expect(inputs).toHaveLength(0);
  });
});

describe('requests and results', () => {
  const signal = new AbortController().signal;

  it('lambda: reports a FunctionError as a failure with the payload as output', async () => {
    const payload = '{"errorType":"Error","errorMessage":"boom"}';
    const { clients, inputs } = recording(() => ({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: Buffer.from(payload),
    }));
    const r = await new LambdaExecutor(clients).run(
      job('lambda', { function_name: 'f', qualifier: 'live', payload: '{}' }),
      execution,
      signal,
    );
    expect(r).toMatchObject({
      status: 'failed',
      output: payload,
      reason: 'function error (Unhandled): Error: boom',
    });
    expect(inputs[0]).toMatchObject({
      FunctionName: 'f',
      InvocationType: 'RequestResponse',
      Qualifier: 'live',
    });
  });

  it('sqs: uses the execution id as deduplication id on a FIFO queue', async () => {
    const { clients, inputs } = recording(() => ({ MessageId: 'm-1' }));
    const r = await new SqsExecutor(clients).run(
      job('sqs', {
        queue_url: 'http://q/1/q.fifo',
        message: 'hi',
        message_group_id: 'g',
        delay_seconds: '0',
      }),
      execution,
      signal,
    );
    expect(r).toMatchObject({ status: 'succeeded', output: 'm-1' });
    expect(inputs[0]).toMatchObject({
      MessageGroupId: 'g',
      MessageDeduplicationId: '0000000000001.0.1',
      DelaySeconds: 0,
    });
  });

  it('eventbridge: fails when an entry failed', async () => {
    const { clients } = recording(() => ({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'nope' }],
    }));
    const r = await new EventBridgeExecutor(clients).run(
      job('eventbridge', { source: 's', detail_type: 't' }),
      execution,
      signal,
    );
    expect(r).toMatchObject({ status: 'failed', reason: 'PutEvents failed: InternalFailure: nope' });
  });

  it('reports cancelled when the signal has already fired', async () => {
    const { clients, inputs } = recording(() => ({ MessageId: 'm' }));
    const controller = new AbortController();
    controller.abort();
    const r = await new SqsExecutor(clients).run(
      job('sqs', { queue_url: 'http://q/1/q', message: 'x' }),
      execution,
      controller.signal,
    );
    expect(r.status).toBe('cancelled');
    expect(inputs).toHaveLength(0);
  });
});

describe('the worker allow-list', () => {
  const allow = { lambda: ['reports-*'], sqs: ['orders'], events: ['default'], http: null };
  const signal = new AbortController().signal;

  it('fails a run whose target is outside the list, naming the key, and sends nothing', async () => {
    const { clients, inputs } = recording(() => ({ StatusCode: 200, MessageId: 'm', Entries: [{}] }));
    const runs = await Promise.all([
      new LambdaExecutor(clients, allow).run(
        job('lambda', { function_name: 'admin-reset' }),
        execution,
        signal,
      ),
      new SqsExecutor(clients, allow).run(
        job('sqs', { queue_url: 'https://sqs.eu-west-1.amazonaws.com/111111111111/other', message: 'x' }),
        execution,
        signal,
      ),
      new EventBridgeExecutor(clients, allow).run(
        job('eventbridge', { event_bus: 'ops', source: 's', detail_type: 'd' }),
        execution,
        signal,
      ),
    ]);
    expect(runs.map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    expect(runs[0]!.reason).toMatch(
      /^executor_config\.function_name: 'admin-reset' is not in the worker's allow-list/,
    );
    expect(runs[1]!.reason).toMatch(/^executor_config\.queue_url: .* is not in the worker's allow-list/);
    expect(runs[2]!.reason).toMatch(/^executor_config\.event_bus: 'ops' is not in the worker's allow-list/);
    expect(inputs).toEqual([]);
  });

  it('runs a target on the list', async () => {
    const { clients, inputs } = recording(() => ({ StatusCode: 200 }));
    const r = await new LambdaExecutor(clients, allow).run(
      job('lambda', { function_name: 'reports-daily' }),
      execution,
      signal,
    );
    expect(r.status).toBe('succeeded');
    expect(inputs).toHaveLength(1);
  });
});
