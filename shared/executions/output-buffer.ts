/**
 * Bounded output capture: keeps the head and the tail of what a job prints and drops the middle, so a
 * chatty job can neither exhaust the agent's memory nor the 400 KB DynamoDB item limit.
 * Given a spill file, it also writes the whole stream to it, and keeps the file only when the middle was
 * dropped (the runner uploads it to the output bucket). The file is created only once the output outgrows
 * the head and tail (until then both hold all of it): most runs print a little and touch no file.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';

export const DEFAULT_HEAD_BYTES = 16 * 1024;
export const DEFAULT_TAIL_BYTES = 240 * 1024;

export class OutputBuffer {
  private head: Buffer[] = [];
  private headSize = 0;
  private tail: Buffer[] = [];
  private tailSize = 0;
  private dropped = 0;
  /** Bytes written so far (the whole stream, kept or not). */
  private written = 0;
  private spill: WriteStream | null = null;
  private spillError: Error | null = null;
  private closing: Promise<string | undefined> | null = null;

  /** The spill file's path, once one is made. */
  private spillPath: string | undefined;

  /** `spill`: the file's path, or a function naming it when the file is first needed (most runs never do). */
  constructor(
    private readonly headLimit = DEFAULT_HEAD_BYTES,
    private readonly tailLimit = DEFAULT_TAIL_BYTES,
    private readonly spillTo?: string | (() => string),
  ) {}

  write(chunk: Buffer | string): void {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (
      !this.spill &&
      this.spillTo &&
      !this.closing &&
      this.written + buf.length > this.headLimit + this.tailLimit
    ) {
      // The middle is about to be dropped: from now on the file keeps the whole stream, starting with
      // all of it so far (nothing was dropped yet).
      this.spillPath = typeof this.spillTo === 'string' ? this.spillTo : this.spillTo();
      const spill = createWriteStream(this.spillPath);
      spill.on('error', (error) => {
        this.spillError ??= error;
      });
      if (this.written > 0) spill.write(Buffer.concat([...this.head, ...this.tail]));
      this.spill = spill;
    }
    this.written += buf.length;
    if (this.spill && !this.spillError && !this.closing) this.spill.write(buf);
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

  /**
   * Ends the spill file. Resolves to its path when the output was truncated (the file holds all of it;
   * the caller then owns and removes it); otherwise, or when writing it failed, removes it and resolves
   * to undefined. Without a spill file, resolves to undefined.
   */
  close(): Promise<string | undefined> {
    this.closing ??= this.closeSpill();
    return this.closing;
  }

  private async closeSpill(): Promise<string | undefined> {
    const spill = this.spill;
    const path = this.spillPath;
    if (!spill || !path) return undefined; // never outgrew the buffer: no file was made
    await new Promise<void>((resolve) => {
      if (spill.destroyed || spill.closed) resolve();
      else spill.end(() => resolve());
      spill.once('error', () => resolve());
      spill.once('close', () => resolve());
    });
    if (this.truncated && !this.spillError) return path;
    await rm(path, { force: true });
    return undefined;
  }

  /**
   * The live view of a running job's output (see LiveOutput): the last `maxBytes` of the stream, cut at a
   * character boundary, and how many bytes the stream holds in all.
   */
  view(maxBytes: number): { text: string; bytes: number } {
    const kept = this.dropped > 0 ? this.tail : [...this.head, ...this.tail];
    let last = Buffer.concat(kept);
    if (last.length > maxBytes) {
      last = last.subarray(last.length - maxBytes);
      let skip = 0; // UTF-8 continuation bytes of a character cut in two
      while (skip < last.length && skip < 3 && (last[skip]! & 0xc0) === 0x80) skip++;
      last = last.subarray(skip);
    }
    return { text: last.toString('utf8'), bytes: this.written };
  }

  /** Bytes written so far (the whole stream, kept or not). */
  get bytes(): number {
    return this.written;
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
