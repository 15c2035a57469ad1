import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../../../shared/aws/clients.ts';
import type { Execution } from '../../../../shared/executions/execution.ts';
import type { Executor } from '../../../../shared/executors/executor.ts';
import { createExecutors, isAgentless } from '../../../../shared/executors/registry.ts';
import { rememberSecret } from '../../../../shared/executors/secrets.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';

const job = (executor: string, tags?: Record<string, string>) =>
  validateJob({
    name: 'j',
    schedule: '@manually',
    executor,
    // Enough for every built-in; each ignores the others' keys.
    executor_config: {
      command: 'true',
      url: 'http://x',
      function_name: 'f',
      queue_url: 'q',
      message: 'm',
      source: 's',
      detail_type: 't',
    },
    ...(tags ? { tags } : {}),
  });

describe('isAgentless', () => {
  it('is true for lambda, sqs, eventbridge, and http, kafka, nats, rabbitmq without tags', () => {
    expect(isAgentless(job('lambda'))).toBe(true);
    expect(isAgentless(job('sqs'))).toBe(true);
    expect(isAgentless(job('eventbridge', { role: 'web' }))).toBe(true);
    expect(isAgentless(job('http'))).toBe(true);
    expect(isAgentless(job('http', { role: 'internal' }))).toBe(false);
    expect(isAgentless(job('shell'))).toBe(false);
    for (const broker of ['kafka', 'nats', 'rabbitmq']) {
      const def = { executor: broker, tags: {} };
      expect(isAgentless(def)).toBe(true);
      expect(isAgentless({ ...def, tags: { dc: 'inside' } })).toBe(false);
    }
  });
});

describe('createExecutors', () => {
  const clients = {} as AwsClients;

  it('offers the built-ins, shell only when given', () => {
    expect(Object.keys(createExecutors({ clients })).sort()).toEqual([
      'eventbridge',
      'http',
      'kafka',
      'lambda',
      'nats',
      'rabbitmq',
      'sqs',
    ]);
    const shell: Executor = {
      run: async () => ({
        status: 'succeeded',
        exitCode: 0,
        output: '',
        outputTruncated: false,
        reason: null,
      }),
    };
    expect(Object.keys(createExecutors({ clients, shell })).sort()).toEqual([
      'eventbridge',
      'http',
      'kafka',
      'lambda',
      'nats',
      'rabbitmq',
      'shell',
      'sqs',
    ]);
  });

  it('ignores external executors that take a built-in name', () => {
    const names = Object.keys(
      createExecutors({
        clients,
        externalPaths: { shell: '/bin/true', kafka: '/bin/true', custom: '/bin/true' },
      }),
    ).sort();
    expect(names).toEqual(['custom', 'eventbridge', 'http', 'kafka', 'lambda', 'nats', 'rabbitmq', 'sqs']);
    expect(createExecutors({ clients, externalPaths: { kafka: '/bin/true' } }).kafka?.constructor.name).toBe(
      'KafkaExecutor',
    );
  });

  it('wraps the shell: secrets resolved during a run are redacted and errors become failed runs', async () => {
    const shell: Executor = {
      run: async (def) => {
        if (def.executor_config.command === 'fail') throw new Error('env X: SSM parameter /p not found');
        rememberSecret('pw');
        return {
          status: 'succeeded',
          exitCode: 0,
          output: 'the pw is pw',
          outputTruncated: false,
          reason: null,
        };
      },
    };
    const shellExec = createExecutors({ clients, shell }).shell!;
    const execution = { executionId: '1.0.1', scheduledAt: 1 } as Execution;
    const signal = new AbortController().signal;
    // A run gets a scope when its config references a secret (a config without one resolves nothing).
    const withSecret = validateJob({
      name: 'j',
      schedule: '@manually',
      executor_config: { command: 'echo', env: 'PW={{ssm:/cronplane/pw}}' },
    });
    expect((await shellExec.run(withSecret, execution, signal)).output).toBe('the [redacted] is [redacted]');
    const failing = validateJob({ name: 'j', schedule: '@manually', executor_config: { command: 'fail' } });
    expect(await shellExec.run(failing, execution, signal)).toMatchObject({
      status: 'failed',
      reason: 'env X: SSM parameter /p not found',
    });
  });
});
