/**
 * The agentless worker: SQS → Lambda. Runs `lambda`, `sqs`, `eventbridge` and untagged `http` jobs with
 * the same launch processing as the host agent (hold to the fire time, conditional claim, heartbeats,
 * conditional result). Messages it cannot settle yet are reported as batch item failures.
 */

import middy from '@middy/core';
import type { Context as LambdaContext, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createContext } from '../../shared/context.ts';
import type { LaunchMessage } from '../../shared/dispatch/dispatch.ts';
import {
  laterVisibilitySeconds,
  processLaunch,
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
  await Promise.all(
    event.Records.map(async (record) => {
      let launchLog = log;
      try {
        const launch = JSON.parse(record.body) as LaunchMessage;
        launchLog = logTo(logger, launch.executionId);
        const verdict = await processLaunch(
          ctx,
          launch,
          { agentId: `worker:${lambda.awsRequestId}`, nodeName: 'worker' },
          {
            executors,
            processors,
            // The agents' values: the same store outage (60 % of lost-after) fences a run on any host.
            heartbeatIntervalMs: EXECUTION_HEARTBEAT_MS,
            lostAfterMs: LOST_AFTER_MS,
            sleep,
            receiveCount: Number(record.attributes.ApproximateReceiveCount ?? 1),
            log: launchLog,
          },
        );
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
        launchLog({
          msg: 'launch failed',
          level: 'error',
          messageId: record.messageId,
          error: String(error),
        });
        failures.push({ itemIdentifier: record.messageId });
      }
    }),
  );
  return { batchItemFailures: failures };
}

export const handler = middy<SQSEvent, SQSBatchResponse, Error, LambdaContext>()
  .use(middlewares)
  .handler(handle);
