/**
 * Bounded output capture: keeps the head and the tail of what a job prints and drops the middle, so a
 * chatty job can neither exhaust the agent's memory nor the 400 KB DynamoDB item limit.
 */
export const DEFAULT_HEAD_BYTES = 16 * 1024;
export const DEFAULT_TAIL_BYTES = 240 * 1024;

export class OutputBuffer {
  private head: Buffer[] = [];
  private headSize = 0;
  private tail: Buffer[] = [];
  private tailSize = 0;
  private dropped = 0;

  constructor(
    private readonly headLimit = DEFAULT_HEAD_BYTES,
    private readonly tailLimit = DEFAULT_TAIL_BYTES,
  ) {}

  write(chunk: Buffer | string): void {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.headSize < this.headLimit) {
      const take = buf.subarray(0, this.headLimit - this.headSize);
      this.head.push(take);
      this.headSize += take.length;
      buf = buf.subarray(take.length);
    }
    if (buf.length === 0) return;
    this.tail.push(buf);
    this.tailSize += buf.length;
    while (this.tailSize > this.tailLimit) {
      const first = this.tail[0]!;
      const excess = this.tailSize - this.tailLimit;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailSize -= first.length;
        this.dropped += first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailSize -= excess;
        this.dropped += excess;
      }
    }
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  toString(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    const tail = Buffer.concat(this.tail).toString('utf8');
    return this.dropped > 0 ? `${head}\n… [${this.dropped} bytes omitted] …\n${tail}` : head + tail;
  }
}
