/** Where a running local stack tells agents started in the same checkout how to join it. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Unless `CRONPLANE_LOCAL_STACK_FILE` moves it (agent/config.ts `localStackFile`), so that a second stack
 * (e.g. a test's) leaves the user's alone.
 */
export const DEFAULT_LOCAL_STACK_FILE = join(REPO_ROOT, '.cronplane', 'local.json');
