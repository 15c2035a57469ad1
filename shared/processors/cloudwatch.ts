/**
 * `cloudwatch` (beyond Dkron): the execution as log events in CloudWatch Logs, in `log_group` (default
 * `/cronplane/jobs`) and `log_stream` (default: the job's name), so each job has its stream. Group and
 * stream are created on first use. Each event is one JSON object (`job_name`, `id`, `status`, times, …,
 * `output`), queryable with Logs Insights; an output longer than MAX_EVENT_OUTPUT_BYTES is spread over
 * several events marked `part`/`parts`. Result: `Output in CloudWatch Logs: <group> <stream>`.
 *
 * Writes need `logs:CreateLogGroup`, `logs:CreateLogStream` and `logs:PutLogEvents`: the stack grants
 * agents and the worker the groups under `/cronplane/` (infra/lib/permissions.ts).
 */
import type { AwsClients } from '../aws/clients.ts';
import type { ProcessorConfig } from './config.ts';
import { executionFields, type Processor, type ProcessorRun, splitUtf8 } from './processor.ts';

type CloudWatchConfig = Extract<ProcessorConfig, { kind: 'cloudwatch' }>;

/**
 * Output bytes per event. An event may be 256 KiB (less 26 bytes) and a batch 1 MiB: JSON escaping can make
 * text up to six times longer (control characters), so 32 KiB of output always fits, and batches are cut
 * by their real size.
 */
export const MAX_EVENT_OUTPUT_BYTES = 32 * 1024;
const MAX_BATCH_BYTES = 1_000_000;
const EVENT_OVERHEAD_BYTES = 26;

export function cloudWatchMessages(run: Pick<ProcessorRun, 'execution'>): string[] {
  const e = run.execution;
  const fields = executionFields(e);
  const parts = splitUtf8(e.output, MAX_EVENT_OUTPUT_BYTES);
  return parts.map((output, i) =>
    JSON.stringify({ ...fields, ...(parts.length > 1 ? { part: i + 1, parts: parts.length } : {}), output }),
  );
}

export class CloudWatchProcessor implements Processor<CloudWatchConfig> {
  constructor(private readonly clients: Pick<AwsClients, 'logs'>) {}

  async process(run: ProcessorRun, config: CloudWatchConfig): Promise<string> {
    const e = run.execution;
    const logGroupName = config.logGroup;
    const logStreamName = config.logStream ?? e.jobName;
    const timestamp = e.finishedAt ?? Date.now();
    const batches: Array<Array<{ timestamp: number; message: string }>> = [[]];
    let size = 0;
    for (const message of cloudWatchMessages(run)) {
      const bytes = Buffer.byteLength(message) + EVENT_OVERHEAD_BYTES;
      if (size + bytes > MAX_BATCH_BYTES && (batches.at(-1)?.length ?? 0) > 0) {
        batches.push([]);
        size = 0;
      }
      batches.at(-1)?.push({ timestamp, message });
      size += bytes;
    }
    // Imported on first use: an agent whose jobs never use it never loads the CloudWatch Logs SDK.
    const {
      CreateLogGroupCommand,
      CreateLogStreamCommand,
      PutLogEventsCommand,
      ResourceAlreadyExistsException,
      ResourceNotFoundException,
    } = await import('@aws-sdk/client-cloudwatch-logs');
    const options = { abortSignal: run.signal };
    const put = async (logEvents: Array<{ timestamp: number; message: string }>) =>
      this.clients.logs.send(new PutLogEventsCommand({ logGroupName, logStreamName, logEvents }), options);
    for (const logEvents of batches) {
      try {
        await put(logEvents);
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
        // First event of this group or stream: create what is missing (someone else may just have), then again.
        const exists = (e: unknown) => {
          if (!(e instanceof ResourceAlreadyExistsException)) throw e;
        };
        await this.clients.logs.send(new CreateLogGroupCommand({ logGroupName }), options).catch(exists);
        await this.clients.logs
          .send(new CreateLogStreamCommand({ logGroupName, logStreamName }), options)
          .catch(exists);
        await put(logEvents);
      }
    }
    return `Output in CloudWatch Logs: ${logGroupName} ${logStreamName}`;
  }
}
