/**
 * The output bucket: the full output of executions whose output was truncated, one object per
 * execution at `executions/<jobName>/<executionId>.log` (the bucket's lifecycle expires them).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { AwsClients } from '../aws/clients.ts';

export function outputKey(jobName: string, executionId: string): string {
  return `executions/${jobName}/${executionId}.log`;
}

export class OutputStore {
  constructor(
    private readonly clients: Pick<AwsClients, 's3'>,
    private readonly bucket: string,
  ) {}

  /** Uploads the file (streamed) and returns its `s3://bucket/key` URL. */
  async put(jobName: string, executionId: string, path: string): Promise<string> {
    const key = outputKey(jobName, executionId);
    const { size } = await stat(path);
    // Imported on the first upload only: an agent whose runs never overflow never loads the S3 SDK.
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    await this.clients.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: createReadStream(path),
        ContentLength: size,
        ContentType: 'text/plain; charset=utf-8',
      }),
    );
    return `s3://${this.bucket}/${key}`;
  }
}
