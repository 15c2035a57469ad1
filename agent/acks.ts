/**
 * Settled launch messages are deleted ten at a time (SQS DeleteMessageBatch) instead of one request each:
 * at 6,000 executions a minute the single deletes were a request per execution, the largest share of the
 * agent's SQS requests (and of the emulator's CPU locally). A delete waits at most `delayMs` for others to
 * join it. Waiting is harmless: a message delivered again before its delete lands finds its execution
 * settled and is deleted then.
 */
export type DeleteMany = (
  queueUrl: string,
  receiptHandles: readonly string[],
) => Promise<Array<string | null>>;

interface Pending {
  readonly receiptHandle: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** SQS's limit on one DeleteMessageBatch. */
const BATCH = 10;

export class AckBatcher {
  private readonly pending = new Map<string, Pending[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deleteMany: DeleteMany,
    private readonly delayMs = 50,
  ) {}

  /** Resolves once the message is deleted; rejects with SQS's reason when it was not. */
  ack(queueUrl: string, receiptHandle: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.pending.get(queueUrl);
      if (!list) {
        list = [];
        this.pending.set(queueUrl, list);
      }
      list.push({ receiptHandle, resolve, reject });
      if (list.length >= BATCH) this.send(queueUrl, this.take(queueUrl));
      else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
    });
  }

  /** Sends everything waiting now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const queueUrl of [...this.pending.keys()]) {
      while (this.pending.has(queueUrl)) this.send(queueUrl, this.take(queueUrl));
    }
  }

  private take(queueUrl: string): Pending[] {
    const list = this.pending.get(queueUrl) ?? [];
    const batch = list.splice(0, BATCH);
    if (list.length === 0) this.pending.delete(queueUrl);
    return batch;
  }

  private send(queueUrl: string, batch: readonly Pending[]): void {
    if (batch.length === 0) return;
    this.deleteMany(
      queueUrl,
      batch.map((p) => p.receiptHandle),
    ).then(
      (why) => {
        batch.forEach((p, i) => {
          const refused = why[i];
          if (refused) p.reject(new Error(`SQS did not delete the message: ${refused}`));
          else p.resolve();
        });
      },
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        for (const p of batch) p.reject(e);
      },
    );
  }
}
