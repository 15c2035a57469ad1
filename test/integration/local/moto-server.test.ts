/**
 * local/moto-server.py runs moto with patches; this checks the one that changes behaviour. moto 5.2.5's
 * `Queue.delete_message` rebuilt the message list without the lock sends take, so concurrent sends and
 * deletes lost sent messages and brought deleted ones back (moto as released: 4–6 of 400 sends lost and
 * ~260 deletes undone per run of the script below). The script drives moto's SQS model from threads,
 * in the project's virtual environment, with the launcher's patches applied. The send path's speed-up
 * changes no behaviour either; its test counts the work a send does instead of timing it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../agent/stack-file.ts';

describe('moto server as the local stack runs it', () => {
  it('loses no sent message and undoes no delete when sends and deletes race', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, '.venv', 'bin', 'python'),
      [join(REPO_ROOT, 'test', 'integration', 'local', 'moto_delete_race.py'), 'patched'],
      { cwd: REPO_ROOT },
    );
    // 400 sent and 400 deleted from the 400 already there: exactly the 400 new ones are left.
    expect(JSON.parse(stdout)).toEqual({ missing: 0, left: 400 });
  }, 60_000);

  it('sends without walking the queue, and still deduplicates FIFO sends and counts messages', async () => {
    const { stdout } = await promisify(execFile)(
      join(REPO_ROOT, '.venv', 'bin', 'python'),
      [join(REPO_ROOT, 'test', 'integration', 'local', 'moto_send_cost.py'), 'patched'],
      { cwd: REPO_ROOT },
    );
    expect(JSON.parse(stdout)).toEqual({
      // moto as released: 200, one walk over the whole queue per send (quadratic in the queue's depth).
      counter_reads: 0,
      fifo_kept: 2,
      fifo_refused: true,
      counters: { visible: 100, delayed: 100, plain_dedupe: null, fifo_dedupe: 'true' },
    });
  }, 60_000);
});
