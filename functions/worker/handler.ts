/**
 * The agentless worker: SQS → Lambda. Runs `lambda`, `sqs`, `eventbridge` and untagged `http` jobs with
 * the same launch processing as the host agent (hold to the fire time, conditional claim, heartbeats,
 * conditional result), a batch's launches together. Messages it cannot settle yet are reported as batch
 * item failures.
 */

import middy from '@middy/core';
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { createContext } from '../../shared/context.ts';
import type { LaunchMessage } from '../../shared/dispatch/dispatch.ts';
import {
  laterVisibilitySeconds,
  processLaunches,
  recheckVisibilitySeconds,
} from '../../shared/executions/runner.ts';
import { createExecutors } from '../../shared/executors/registry.ts';
import { SERVICES } from '../../shared/metrics/metrics.ts';
import { createProcessorHost } from '../../shared/processors/registry.ts';
import { EXECUTION_HEARTBEAT_MS, LOST_AFTER_MS } from '../../shared/timing.ts';
import { createObservability, logTo } from '../observability.ts';

const ctx = createContext();
// The allow-list and the secrets path bound what a job may make the worker do (executors/targets.ts).
const executors = createExecutors({
  clients: ctx.clients,
  secretsPath: ctx.config.secretsPath,
  workerAllow: ctx.config.workerAllow,
});
// Structured logs; a launch's lines carry its execution id as correlation id.
const { logger, middlewares } = createObservability(SERVICES.worker, ctx.config, false);
const log = logTo(logger);
// Agentless jobs' processors run here, before the result is written (shared/processors/registry.ts).
const processors = createProcessorHost({
  place: 'worker',
  clients: ctx.clients,
  outputBucket: ctx.config.outputBucket,
  workerAllow: ctx.config.workerAllow,
  log,
});
/** The worker consumes only its own queue. */
const queueUrl = ctx.config.workerQueueUrl ?? '';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function handle(event: SQSEvent, lambda: LambdaContext): Promise<SQSBatchResponse> {
  const failures: SQSBatchResponse['batchItemFailures'] = [];
  const fail = (record: SQSRecord, error: unknown, launchLog: typeof log) => {
    launchLog({ msg: 'launch failed', level: 'error', messageId: record.messageId, error: String(error) });
    failures.push({ itemIdentifier: record.messageId });
  };
  const received: Array<{ record: SQSRecord; launch: LaunchMessage; log: typeof log }> = [];
  for (const record of event.Records) {
    try {
      const launch = JSON.parse(record.body) as LaunchMessage;
      received.push({ record, launch, log: logTo(logger, launch.executionId) });
    } catch (error) {
      fail(record, error, log);
    }
  }
  // The batch's launches are processed together, as an agent's received batch is (Runner.processMany): one
  // read before their claims and one after (the jobs and the pause flag once for the batch, not per launch).
  const verdicts = processLaunches(
    ctx,
    received.map((r) => r.launch),
    { agentId: `worker:${lambda.awsRequestId}`, nodeName: 'worker' },
    received.map((r) => ({
      executors,
      processors,
      // The agents' values: the same store outage (60 % of lost-after) fences a run on any host.
      heartbeatIntervalMs: EXECUTION_HEARTBEAT_MS,
      lostAfterMs: LOST_AFTER_MS,
      sleep,
      receiveCount: Number(r.record.attributes.ApproximateReceiveCount ?? 1),
      log: r.log,
    })),
  );
  await Promise.all(
    received.map(async ({ record, launch, log: launchLog }, i) => {
      try {
        const verdict = await verdicts[i]!;
        if (verdict === 'later') {
          await ctx.dispatch.hide(
            queueUrl,
            record.receiptHandle,
            laterVisibilitySeconds(launch, ctx.clock()),
          );
        }
        if (verdict === 'recheck') {
          // Running elsewhere, not in the lost sweep's index: back when a silent run would look lost.
          await ctx.dispatch.hide(queueUrl, record.receiptHandle, recheckVisibilitySeconds(LOST_AFTER_MS));
        }
        if (verdict !== 'done') failures.push({ itemIdentifier: record.messageId });
      } catch (error) {
        fail(record, error, launchLog);
      }
    }),
  );
  return { batchItemFailures: failures };
}

export const handler = middy<SQSEvent, SQSBatchResponse, Error, LambdaContext>()
  .use(middlewares)
  .handler(handle);
