import { describe, expect, it } from 'vitest';
import { printLogs } from '../../../agent/logs.ts';

type View = {
  id: string;
  status: string;
  output: string;
  output_size: number | null;
  exit_code: number | null;
  reason: string | null;
};

/** An API whose execution goes through the given states, one per read after the first. */
function api(states: View[]) {
  let read = 0;
  return async (path: string) => {
    if (path.includes('?_limit=1')) return [states[0]];
    return states[Math.min(read++, states.length - 1)];
  };
}
const run = (output: string, size: number | null, status = 'running', exit: number | null = null): View => ({
  id: '1000.0.1',
  status,
  output,
  output_size: size,
  exit_code: exit,
  reason: status === 'failed' ? 'exit status 1' : null,
});

async function follow(states: View[]) {
  const out: string[] = [];
  const code = await printLogs(api(states), 'j', {
    follow: true,
    write: (t) => out.push(t),
    sleep: async () => {},
  });
  return { code, text: out.join(''), chunks: out };
}

describe('cronplane logs --follow', () => {
  it('prints each new part of the stream once, then the status', async () => {
    const r = await follow([
      run('a\n', 2),
      run('a\n', 2),
      run('a\nb\n', 4),
      run('a\nb\nc\n', 6, 'succeeded', 0),
    ]);
    expect(r.text).toBe('a\nb\nc\n[cronplane] j 1000.0.1: succeeded (exit code 0)\n');
    expect(r.chunks.slice(0, 3)).toEqual(['a\n', 'b\n', 'c\n']);
    expect(r.code).toBe(0);
  });

  it('says how much it missed when more than the window came between two reads', async () => {
    // The window (the last bytes) moved past what was printed: 4 bytes were never seen.
    const r = await follow([run('ab', 2), run('gh', 8), run('abcdefgh', 8, 'failed', 1)]);
    expect(r.text).toBe(
      'ab\n… [4 bytes not shown: more than came between two reads] …\ngh\n[cronplane] j 1000.0.1: failed (exit code 1): exit status 1\n',
    );
    expect(r.code).toBe(1);
  });

  it('does not print the stored output twice when it is not the stream (a processor replaced it)', async () => {
    const r = await follow([run('line\n', 5), run('Output in syslog', 5, 'succeeded', 0)]);
    expect(r.text).toMatch(/^line\n… \[the stored output is not the stream/);
    expect(r.text).not.toContain('Output in syslog');
  });

  it('prints a finished run whole without --follow, and its status', async () => {
    const out: string[] = [];
    const code = await printLogs(api([run('done\n', 5, 'succeeded', 0)]), 'j', {
      follow: false,
      write: (t) => out.push(t),
    });
    expect(out.join('')).toBe('done\n[cronplane] j 1000.0.1: succeeded (exit code 0)\n');
    expect(code).toBe(0);
  });
});
