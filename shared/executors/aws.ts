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
 * Each checks its target against the worker's allow-list (targets.ts, config `workerAllow`) before the
 * call: a target outside it fails the run with the reason, and nothing is sent.
 *
 * The Lambda and EventBridge SDK modules are imported by the first run that needs them (an agent, which
 * registers these executors too, never does: see aws/clients.ts). SQS is loaded anyway (dispatch).
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../aws/clients.ts';
import type { Execution } from '../executions/execution.ts';
import { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  ExecutorConfigError,
  errorMessage,
  failedResult,
  parseTimeout,
  RunControl,
  succeededResult,
} from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';
import { awsTargetRefusal, type WorkerAllowList } from './targets.ts';

/** Validates with `parse` (config errors fail the run), then makes the call under timeout and signal. */
async function runCall<S extends { timeoutMs: number }>(
  signal: AbortSignal,
  parse: () => S,
  call: (spec: S, abortSignal: AbortSignal) => Promise<ExecutorResult>,
): Promise<ExecutorResult> {
  let spec: S;
  try {
    spec = parse();
  } catch (error) {
    return failedResult(errorMessage(error));
  }
  const control = new RunControl(signal, spec.timeoutMs);
  try {
    const early = control.stoppedResult();
    if (early) return early;
    return await call(spec, control.signal);
  } catch (error) {
    const stopped = control.stoppedResult();
    if (stopped) return stopped;
    const name = (error as { name?: string }).name;
    return failedResult(`${name && name !== 'Error' ? `${name}: ` : ''}${errorMessage(error)}`);
  } finally {
    control.dispose();
  }
}

/** `parse` and then the allow-list: a target outside it is a config error of its key (a failed run). */
function allowed<S>(
  executor: string,
  cfg: Readonly<Record<string, string>>,
  allow: WorkerAllowList | null,
  parse: (cfg: Readonly<Record<string, string>>) => S,
): S {
  const spec = parse(cfg);
  const refusal = awsTargetRefusal(executor, cfg, allow);
  if (refusal) throw new ExecutorConfigError(refusal.key, refusal.problem);
  return spec;
}

function required(cfg: Readonly<Record<string, string>>, key: string, executor: string): string {
  const value = (cfg[key] ?? '').trim();
  if (value === '') throw new ExecutorConfigError(key, `is required for the ${executor} executor`);
  return value;
}

// The parse functions below are the whole of each executor's config rules: the executor runs them before
// its call, and the API runs them when a job is written (shared/jobs/executor-config.ts). None resolves
// `{{ssm:...}}`: these executors send their values as written.

export const INVOCATION_TYPES = ['RequestResponse', 'Event'] as const;

export interface LambdaSpec {
  timeoutMs: number;
  functionName: string;
  invocationType: (typeof INVOCATION_TYPES)[number];
  qualifier: string;
  payload: string;
}

/** Validates a lambda job's `executor_config`. Throws ExecutorConfigError. */
export function parseLambdaConfig(cfg: Readonly<Record<string, string>>): LambdaSpec {
  const timeoutMs = parseTimeout(cfg.timeout, 0);
  const functionName = required(cfg, 'function_name', 'lambda');
  const invocationType = (cfg.invocation_type ?? '').trim() || 'RequestResponse';
  if (!(INVOCATION_TYPES as readonly string[]).includes(invocationType)) {
    throw new ExecutorConfigError(
      'invocation_type',
      `must be one of ${INVOCATION_TYPES.join(', ')}, not '${invocationType}'`,
    );
  }
  return {
    timeoutMs,
    functionName,
    invocationType: invocationType as LambdaSpec['invocationType'],
    qualifier: (cfg.qualifier ?? '').trim(),
    payload: cfg.payload ?? '',
  };
}

export class LambdaExecutor implements Executor {
  /** `allow`: the worker's allow-list; null allows every target. */
  constructor(
    private readonly clients: AwsClients,
    private readonly allow: WorkerAllowList | null = null,
  ) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(
      signal,
      () => allowed('lambda', job.executor_config, this.allow, parseLambdaConfig),
      async (spec, abortSignal) => {
        const { InvokeCommand } = await import('@aws-sdk/client-lambda');
        const res = await this.clients.lambda.send(
          new InvokeCommand({
            FunctionName: spec.functionName,
            InvocationType: spec.invocationType,
            ...(spec.qualifier ? { Qualifier: spec.qualifier } : {}),
            ...(spec.payload !== '' ? { Payload: Buffer.from(spec.payload, 'utf8') } : {}),
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
      },
    );
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

export interface SqsSpec {
  timeoutMs: number;
  queueUrl: string;
  body: string;
  groupId: string;
  /** A queue URL ending in `.fifo`. */
  fifo: boolean;
  /** The configured deduplication id, '' when unset. */
  dedupId: string;
  delaySeconds: number | undefined;
}

/** Validates an sqs job's `executor_config`. Throws ExecutorConfigError. */
export function parseSqsConfig(cfg: Readonly<Record<string, string>>): SqsSpec {
  const timeoutMs = parseTimeout(cfg.timeout, 0);
  const queueUrl = required(cfg, 'queue_url', 'sqs');
  const body = cfg.message ?? '';
  if (body === '')
    throw new ExecutorConfigError('message', 'is required for the sqs executor (SQS rejects empty messages)');
  const groupId = (cfg.message_group_id ?? '').trim();
  const fifo = queueUrl.endsWith('.fifo');
  if (fifo && groupId === '')
    throw new ExecutorConfigError('message_group_id', 'is required for a FIFO queue');
  const delayText = (cfg.delay_seconds ?? '').trim();
  let delaySeconds: number | undefined;
  if (delayText !== '') {
    delaySeconds = Number(delayText);
    if (!/^\d+$/.test(delayText) || delaySeconds > 900) {
      throw new ExecutorConfigError(
        'delay_seconds',
        `must be a whole number of seconds from 0 to 900, not '${delayText}'`,
      );
    }
  }
  return {
    timeoutMs,
    queueUrl,
    body,
    groupId,
    fifo,
    dedupId: (cfg.message_deduplication_id ?? '').trim(),
    delaySeconds,
  };
}

export class SqsExecutor implements Executor {
  /** `allow`: the worker's allow-list; null allows every target. */
  constructor(
    private readonly clients: AwsClients,
    private readonly allow: WorkerAllowList | null = null,
  ) {}

  run(job: JobDefinition, execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(
      signal,
      () => allowed('sqs', job.executor_config, this.allow, parseSqsConfig),
      async (spec, abortSignal) => {
        const dedupId = spec.dedupId || (spec.fifo ? execution.executionId : '');
        const res = await this.clients.sqs.send(
          new SendMessageCommand({
            QueueUrl: spec.queueUrl,
            MessageBody: spec.body,
            ...(spec.groupId ? { MessageGroupId: spec.groupId } : {}),
            ...(dedupId ? { MessageDeduplicationId: dedupId } : {}),
            ...(spec.delaySeconds !== undefined ? { DelaySeconds: spec.delaySeconds } : {}),
          }),
          { abortSignal },
        );
        return succeededResult(res.MessageId ?? '');
      },
    );
  }
}

export interface EventBridgeSpec {
  timeoutMs: number;
  bus: string;
  source: string;
  detailType: string;
  /** A JSON object, as written (`{}` when unset). */
  detail: string;
}

/** Validates an eventbridge job's `executor_config`. Throws ExecutorConfigError. */
export function parseEventBridgeConfig(cfg: Readonly<Record<string, string>>): EventBridgeSpec {
  const timeoutMs = parseTimeout(cfg.timeout, 0);
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
  return { timeoutMs, bus, source, detailType, detail };
}

export class EventBridgeExecutor implements Executor {
  /** `allow`: the worker's allow-list; null allows every target. */
  constructor(
    private readonly clients: AwsClients,
    private readonly allow: WorkerAllowList | null = null,
  ) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return runCall(
      signal,
      () => allowed('eventbridge', job.executor_config, this.allow, parseEventBridgeConfig),
      async (spec, abortSignal) => {
        const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
        const res = await this.clients.eventbridge.send(
          new PutEventsCommand({
            Entries: [
              {
                EventBusName: spec.bus,
                Source: spec.source,
                DetailType: spec.detailType,
                Detail: spec.detail,
              },
            ],
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
      },
    );
  }
}
