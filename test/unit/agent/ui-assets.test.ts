/** The UI is bundled when its output is missing or older than a source file, and only then. */
import { mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureUiBuilt } from '../../../agent/ui-assets.ts';

describe('ensureUiBuilt', () => {
  it('builds when missing, keeps a current build, rebuilds when a source is newer', async () => {
    const src = mkdtempSync(join(tmpdir(), 'web-'));
    const out = join(src, 'dist');
    mkdirSync(join(src, 'src', 'views'), { recursive: true });
    writeFileSync(join(src, 'index.html'), '<!doctype html>');
    writeFileSync(join(src, 'style.css'), 'body{}');
    writeFileSync(join(src, 'src', 'views', 'text.ts'), "export const text: string = 'one';");
    writeFileSync(join(src, 'src', 'app.ts'), "import { text } from './views/text.ts';\nconsole.log(text);");

    await ensureUiBuilt(out, src);
    const first = readFileSync(join(out, 'app.js'), 'utf8');
    expect(first).toContain('"one"');
    expect(first).not.toContain(': string');
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toBe('<!doctype html>');
    const built = statSync(join(out, 'app.js')).mtimeMs;

    await ensureUiBuilt(out, src);
    expect(statSync(join(out, 'app.js')).mtimeMs).toBe(built);

    // A nested source edited after the build.
    writeFileSync(join(src, 'src', 'views', 'text.ts'), "export const text: string = 'two';");
    const later = new Date(built + 5000);
    utimesSync(join(src, 'src', 'views', 'text.ts'), later, later);
    await ensureUiBuilt(out, src);
    expect(readFileSync(join(out, 'app.js'), 'utf8')).toContain('"two"');
  });
});
