import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { OutputBuffer } from '../../../../shared/executions/output-buffer.ts';

describe('OutputBuffer', () => {
  it('keeps everything under the limits', () => {
    const b = new OutputBuffer(4, 4);
    b.write('abc');
    b.write('def');
    expect(b.toString()).toBe('abcdef');
    expect(b.truncated).toBe(false);
  });

  it('keeps head and tail, never more than the limits, and says what it dropped', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme-ascii', maxLength: 50 }), { maxLength: 40 }),
        (chunks) => {
          const b = new OutputBuffer(16, 32);
          for (const c of chunks) b.write(c);
          const all = chunks.join('');
          if (all.length <= 48) {
            expect(b.toString()).toBe(all);
          } else {
            expect(b.truncated).toBe(true);
            expect(b.toString().startsWith(all.slice(0, 16))).toBe(true);
            expect(b.toString().endsWith(all.slice(-32))).toBe(true);
            expect(b.toString()).toContain(`[${all.length - 48} bytes omitted]`);
          }
        },
      ),
    );
  });

  describe('spill file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cronplane-spill-test-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('keeps the whole stream in the file when the output is truncated', async () => {
      const path = join(dir, 'big.log');
      const b = new OutputBuffer(16, 32, path);
      const chunks = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 17)}\n`);
      for (const c of chunks) b.write(mixed(c));
      expect(b.truncated).toBe(true);
      expect(await b.close()).toBe(path);
      expect(readFileSync(path, 'utf8')).toBe(chunks.join(''));
      expect(await b.close()).toBe(path); // idempotent
    });

    it('removes the file when nothing was dropped', async () => {
      const path = join(dir, 'small.log');
      const b = new OutputBuffer(16, 32, path);
      b.write('short');
      b.write('x'.repeat(43)); // exactly head + tail: all of it still kept
      // No file while the buffer holds everything (most runs touch no file at all).
      expect(existsSync(path)).toBe(false);
      expect(await b.close()).toBeUndefined();
      expect(existsSync(path)).toBe(false);
      expect(b.toString()).toBe(`short${'x'.repeat(43)}`);
    });

    it('starts the file with all of the output when it first outgrows the buffer', async () => {
      const path = join(dir, 'switch.log');
      const b = new OutputBuffer(4, 4, path);
      b.write('0123');
      b.write('4567');
      expect(existsSync(path)).toBe(false);
      b.write('89');
      expect(b.truncated).toBe(true);
      expect(await b.close()).toBe(path);
      expect(readFileSync(path, 'utf8')).toBe('0123456789');
    });

    it('names the file only when the output first outgrows the buffer, once', async () => {
      const named: string[] = [];
      const name = () => {
        const path = join(dir, `named-${named.length}.log`);
        named.push(path);
        return path;
      };
      const small = new OutputBuffer(4, 4, name);
      small.write('01234567');
      expect(await small.close()).toBeUndefined();
      expect(named).toEqual([]);
      const big = new OutputBuffer(4, 4, name);
      for (const c of ['0123', '4567', '89', 'ab']) big.write(c);
      expect(named).toHaveLength(1);
      expect(await big.close()).toBe(named[0]);
      expect(readFileSync(named[0]!, 'utf8')).toBe('0123456789ab');
    });

    it('without a spill path closes to undefined', async () => {
      const b = new OutputBuffer(4, 4);
      b.write('0123456789');
      expect(await b.close()).toBeUndefined();
    });
  });
});

/** Alternates strings and buffers, as a child process' pipes would give. */
function mixed(chunk: string): Buffer | string {
  return chunk.length % 2 === 0 ? Buffer.from(chunk) : chunk;
}
