/**
 * Agentless AWS executors (our counterparts of Dkron's publish-to-a-system executors). They only make
 * one AWS API call, so they run in the worker, not on a host. Every one honours `timeout` (seconds or a
 * Go duration; none by default) and the run's AbortSignal, and uses the shared `AwsClients`.
 *
 *   - `lambda`: `function_name` (name or ARN), `payload` (string, sent as is), `invocation_type`
 *     (`RequestResponse`, the default, or `Event`), `qualifier`. Output is the response payload (empty
 *     for `Event`); a set FunctionError fails the run.
 *   - `sqs`: `queue_url`, `message` (the body), `message_group_id`, `delay_seconds` (0–900),
 *     `message_deduplication_id`. Output is the MessageId. On a FIFO queue without an explicit
 *     deduplication id the execution id is used, so a redelivered dispatch of the same execution sends once.
 *   - `eventbridge`: `event_bus` (default `default`), `source`, `detail_type`, `detail` (a JSON object
 *     string, default `{}`). Output is the EventId; FailedEntryCount > 0 fails the run.
 *
 * The Lambda and EventBridge SDK modules are imported by the first run that needs them (an agent, which
 * registers these executors too, never does: see aws/clients.ts). SQS is loaded anyway (dispatch).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../aws/clients.ts';
import type { Execution } from '../executions/execution.ts';
import { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/job.ts';
import {
  ExecutorConfigError,
  errorMessage,
  failedResult,
  parseTimeout,
  RunControl,
  succeededResult,
} from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';

type Call = (abortSignal: AbortSignal) => Promise<ExecutorResult>;

/** Validates with `prepare` (config errors fail the run), then makes the call under timeout and signal. */
async function runCall(
  job: JobDefinition,
  signal: AbortSignal,
  prepare: () => Call,
): Promise<ExecutorResult> {
  let call: Call;
  let timeoutMs: number;
  try {
    timeoutMs = parseTimeout(job.executor_config.timeout, 0);
    call = prepare();
  } catch (error) {
    return failedResult(errorMessage(error));
  }
  const control = new RunControl(signal, timeoutMs);
  try {
    const early = control.stoppedResult();
    if (early) return early;
    return await call(control.signal);
  } catch (error) {
    const stopped = control.stoppedResult();
    if (stopped) return stopped;
    const name = (error as { name?: string }).name;
    return failedResult(`${name && name !== 'Error' ? `${name}: ` : ''}${errorMessage(error)}`);
  } finally {
    control.dispose();
  }
}

function required(cfg: Readonly<Record<string, string>>, key: string, executor: string): string {
  const value = (cfg[key] ?? '').trim();
  if (value === '') throw new ExecutorConfigError(key, `is required for the ${executor} executor`);
  return value;
}

export const INVOCATION_TYPES = ['RequestResponse', 'Event'] as const;

export class LambdaExecutor implements Executor {
  constructor(private readonly clients: AwsClients) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(job, signal, () => {
      const cfg = job.executor_config;
      const functionName = required(cfg, 'function_name', 'lambda');
      const invocationType = (cfg.invocation_type ?? '').trim() || 'RequestResponse';
      if (!(INVOCATION_TYPES as readonly string[]).includes(invocationType)) {
        throw new ExecutorConfigError(
          'invocation_type',
          `must be one of ${INVOCATION_TYPES.join(', ')}, not '${invocationType}'`,
        );
      }
      const qualifier = (cfg.qualifier ?? '').trim();
      const payload = cfg.payload ?? '';
      return async (abortSignal) => {
        const { InvokeCommand } = await import('@aws-sdk/client-lambda');
        const res = await this.clients.lambda.send(
          new InvokeCommand({
            FunctionName: functionName,
            InvocationType: invocationType as (typeof INVOCATION_TYPES)[number],
            ...(qualifier ? { Qualifier: qualifier } : {}),
            ...(payload !== '' ? { Payload: Buffer.from(payload, 'utf8') } : {}),
          }),
          { abortSignal },
        );
        const output = new OutputBuffer();
        if (res.Payload && res.Payload.length > 0) output.write(Buffer.from(res.Payload));
        if (res.FunctionError) {
          return failedResult(
            `function error (${res.FunctionError})${lambdaErrorMessage(output.toString())}`,
            output,
          );
        }
        return succeededResult(output);
      };
    });
  }
}

/** `: <errorType>: <errorMessage>` from a Lambda error payload, or nothing. */
export function lambdaErrorMessage(payload: string): string {
  try {
    const p = JSON.parse(payload) as { errorType?: unknown; errorMessage?: unknown };
    const parts = [p.errorType, p.errorMessage].filter((x): x is string => typeof x === 'string' && x !== '');
    return parts.length > 0 ? `: ${parts.join(': ')}` : '';
  } catch {
    return '';
  }
}

export class SqsExecutor implements Executor {
  constructor(private readonly clients: AwsClients) {}

  run(job: JobDefinition, execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(job, signal, () => {
      const cfg = job.executor_config;
      const queueUrl = required(cfg, 'queue_url', 'sqs');
      const body = cfg.message ?? '';
      if (body === '')
        throw new ExecutorConfigError(
          'message',
          'is required for the sqs executor (SQS rejects empty messages)',
        );
      const groupId = (cfg.message_group_id ?? '').trim();
      const fifo = queueUrl.endsWith('.fifo');
      if (fifo && groupId === '')
        throw new ExecutorConfigError('message_group_id', 'is required for a FIFO queue');
      const dedupId = (cfg.message_deduplication_id ?? '').trim() || (fifo ? execution.executionId : '');
      const delayText = (cfg.delay_seconds ?? '').trim();
      let delay: number | undefined;
      if (delayText !== '') {
        delay = Number(delayText);
        if (!/^\d+$/.test(delayText) || delay > 900) {
          throw new ExecutorConfigError(
            'delay_seconds',
            `must be a whole number of seconds from 0 to 900, not '${delayText}'`,
          );
        }
      }
      return async (abortSignal) => {
        const res = await this.clients.sqs.send(
          new SendMessageCommand({
            QueueUrl: queueUrl,
            MessageBody: body,
            ...(groupId ? { MessageGroupId: groupId } : {}),
            ...(dedupId ? { MessageDeduplicationId: dedupId } : {}),
            ...(delay !== undefined ? { DelaySeconds: delay } : {}),
          }),
          { abortSignal },
        );
        return succeededResult(res.MessageId ?? '');
      };
    });
  }
}

export class EventBridgeExecutor implements Executor {
  constructor(private readonly clients: AwsClients) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(job, signal, () => {
      const cfg = job.executor_config;
      const bus = (cfg.event_bus ?? '').trim() || 'default';
      const source = required(cfg, 'source', 'eventbridge');
      const detailType = required(cfg, 'detail_type', 'eventbridge');
      const detail = (cfg.detail ?? '').trim() || '{}';
      let parsed: unknown;
      try {
        parsed = JSON.parse(detail);
      } catch {
        throw new ExecutorConfigError('detail', 'must be a JSON object');
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new ExecutorConfigError('detail', 'must be a JSON object');
      }
      return async (abortSignal) => {
        const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
        const res = await this.clients.eventbridge.send(
          new PutEventsCommand({
            Entries: [{ EventBusName: bus, Source: source, DetailType: detailType, Detail: detail }],
          }),
          { abortSignal },
        );
        const entry = res.Entries?.[0];
        if ((res.FailedEntryCount ?? 0) > 0 || entry?.ErrorCode) {
          return failedResult(
            `PutEvents failed: ${entry?.ErrorCode ?? 'unknown error'}${entry?.ErrorMessage ? `: ${entry.ErrorMessage}` : ''}`,
          );
        }
        return succeededResult(entry?.EventId ?? '');
      };
    });
  }
}
