/**
 * The processors a deployable offers, and where each processor runs.
 *
 * A processor runs where the execution ran, just before its result is written (shared/executions/runner.ts):
 * - on the **agent** for jobs that run on hosts (shell, custom executors, tagged http and broker jobs):
 *   every built-in and the custom processors installed there. `files`, the local `syslog` and custom
 *   processors are host-local by nature: they need the disk, the syslog socket or the programs of the host
 *   that ran the job.
 * - in the **worker** for agentless jobs (lambda, sqs, eventbridge; untagged http and broker jobs): `log`
 *   (the worker's own log), `syslog` to a network address, `fluent`, `s3` and `cloudwatch`. The others are
 *   refused when the job is written (a 400) and, should one get through, fail at run time. The worker's
 *   allow-list (CRONPLANE_WORKER_ALLOW `syslog`, `fluent`) bounds the servers they send to, like the
 *   targets of agentless executors.
 *
 * Why not in the events function, which reacts to every finished execution? `forward` decides what output
 * the execution keeps: applied before the one result write, the stored execution, its `Execution Finished`
 * event and every reaction see what the processors left. Applied after it, the output would be written
 * twice and the event would carry the one the processors were to replace. And the stream delivers at least
 * once: a redelivered record would send to syslog, Fluent or CloudWatch again, where the worker applies them
 * once per claimed execution, with its heartbeat keeping the execution its own meanwhile.
 */
import type { AwsClients } from '../aws/clients.ts';
import { jobBaseEnv, type ProcessGroups } from '../executors/common.ts';
import type { WorkerAllowList } from '../executors/targets.ts';
import { CloudWatchProcessor } from './cloudwatch.ts';
import { CUSTOM_PROCESSOR_PREFIX, networkTargetRefusal, type ProcessorConfig } from './config.ts';
import { CustomProcessors } from './external.ts';
import { FilesProcessor } from './files.ts';
import { FluentProcessor } from './fluent.ts';
import { LogProcessor } from './log.ts';
import type { Processor, ProcessorHost, ProcessorPlace } from './processor.ts';
import { S3Processor } from './s3.ts';
import { SyslogProcessor } from './syslog.ts';

export interface ProcessorHostOptions {
  readonly place: ProcessorPlace;
  readonly clients: Pick<AwsClients, 's3' | 'logs'>;
  /** The stack's output bucket (config `outputBucket`): the `s3` processor's default. */
  readonly outputBucket: string | undefined;
  /** Where `log` writes, and where processor failures are logged. */
  readonly log: (event: Record<string, unknown>) => void;
  /** Who runs them, for errors (`agent web-1`). */
  readonly hostName?: string;
  /** PATH searched for custom processors (agents only; default: none are found). */
  readonly searchPath?: string;
  /** The environment custom processors start from (default: this process's, scrubbed). */
  readonly baseEnv?: Record<string, string>;
  /** Where custom processors' process groups are registered (the agent's reaper). */
  readonly groups?: ProcessGroups;
  /** The worker's allow-list (config `workerAllow`): bounds where syslog and fluent send from the worker. */
  readonly workerAllow?: WorkerAllowList | null;
}

export function createProcessorHost(options: ProcessorHostOptions): ProcessorHost {
  const builtIn = {
    log: new LogProcessor(options.log),
    files: new FilesProcessor(),
    syslog: new SyslogProcessor(),
    fluent: new FluentProcessor(),
    s3: new S3Processor(options.clients, options.outputBucket),
    cloudwatch: new CloudWatchProcessor(options.clients),
  } satisfies {
    [K in Exclude<ProcessorConfig['kind'], 'custom'>]: Processor<Extract<ProcessorConfig, { kind: K }>>;
  };
  const custom =
    options.place === 'agent'
      ? new CustomProcessors({
          searchPath: options.searchPath ?? '',
          baseEnv: options.baseEnv ?? jobBaseEnv(process.env),
          ...(options.groups ? { groups: options.groups } : {}),
        })
      : null;
  const who = options.hostName ? ` on ${options.place} ${options.hostName}` : ` in the ${options.place}`;
  return {
    place: options.place,
    log: options.log,
    processorFor(config) {
      const refused =
        options.place === 'worker' ? networkTargetRefusal(config, options.workerAllow ?? null) : null;
      if (refused) return { unavailable: `processors.${config.kind}.${refused.key}: ${refused.problem}` };
      if (config.kind !== 'custom') return builtIn[config.kind] as Processor;
      const path = custom?.find(config.name) ?? null;
      if (!custom || path === null) {
        return {
          unavailable: `no custom processor ${config.name}${who}: install an executable ${CUSTOM_PROCESSOR_PREFIX}${config.name} on its PATH`,
        };
      }
      return custom.processor(path) as Processor;
    },
  };
}
