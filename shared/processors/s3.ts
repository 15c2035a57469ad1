/**
 * `s3` (beyond Dkron): the output as one object per execution, `<prefix><job>/<execution id>.log`, in
 * `bucket` — by default the stack's output bucket (CRONPLANE_OUTPUT_BUCKET) under `output/`, beside the
 * `executions/` prefix where truncated outputs go whole (its lifecycle rule expires both). The object is
 * the whole output even when the execution keeps only its head and tail. Result: the object's `s3://` URL.
 *
 * Writes need `s3:PutObject` on the key: the stack grants agents and the worker `output/*` of its bucket
 * (infra/lib/permissions.ts); another bucket needs a grant of the operator's.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { AwsClients } from '../aws/clients.ts';
import type { ProcessorConfig } from './config.ts';
import type { Processor, ProcessorRun } from './processor.ts';

type S3Config = Extract<ProcessorConfig, { kind: 's3' }>;

export function processorObjectKey(prefix: string, jobName: string, executionId: string): string {
  return `${prefix}${jobName}/${executionId}.log`;
}

export class S3Processor implements Processor<S3Config> {
  constructor(
    private readonly clients: Pick<AwsClients, 's3'>,
    private readonly defaultBucket: string | undefined,
  ) {}

  async process(run: ProcessorRun, config: S3Config): Promise<string> {
    const bucket = config.bucket ?? this.defaultBucket;
    if (!bucket) throw new Error('no bucket: set processors.s3.bucket (this stack has no output bucket)');
    const e = run.execution;
    const key = processorObjectKey(config.prefix, e.jobName, e.executionId);
    const body = run.fullOutputPath
      ? { Body: createReadStream(run.fullOutputPath), ContentLength: (await stat(run.fullOutputPath)).size }
      : { Body: e.output };
    // Imported on first use, like the output store's upload.
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    await this.clients.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        ...body,
        ContentType: 'text/plain; charset=utf-8',
        Metadata: { job: e.jobName, execution: e.executionId, status: e.status },
      }),
      { abortSignal: run.signal },
    );
    return `s3://${bucket}/${key}`;
  }
}
