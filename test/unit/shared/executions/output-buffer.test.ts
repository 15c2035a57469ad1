import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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
});
