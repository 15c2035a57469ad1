/**
 * The web UI's assets: TypeScript source in web/src (type-checked by the project's tsc, linted by biome),
 * bundled by esbuild into web/dist (git-ignored) whenever the output is missing or older than a source
 * file, and served as static files by the local stack and by `cronplane ui`.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { REPO_ROOT } from './stack-file.ts';

export const UI_SOURCE_DIR = join(REPO_ROOT, 'web');
export const UI_OUT_DIR = join(REPO_ROOT, 'web', 'dist');
/** Copied as they are; web/src/app.ts becomes app.js. */
const STATIC_FILES = ['index.html', 'style.css'];

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

async function newestSourceMtime(srcDir: string): Promise<number> {
  const files = [
    ...STATIC_FILES.map((f) => join(srcDir, f)),
    ...(await readdir(join(srcDir, 'src'), { recursive: true })).map((f) => join(srcDir, 'src', f)),
  ];
  const times = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs));
  return Math.max(...times);
}

async function mtimeOr0(file: string): Promise<number> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return 0;
  }
}

let building: Promise<void> | undefined;

/** Builds the UI into `outDir` unless it is there and newer than every source file. */
export async function ensureUiBuilt(outDir = UI_OUT_DIR, srcDir = UI_SOURCE_DIR): Promise<void> {
  while (building) await building;
  const stamp = join(outDir, 'app.js');
  if ((await mtimeOr0(stamp)) >= (await newestSourceMtime(srcDir))) return;
  building = (async () => {
    // Not a static import: the agent bundle (scripts/bundle-agent.mjs) carries cli.ts, and esbuild, a
    // native tool, is only for checkouts that serve the UI.
    const name = 'esbuild';
    const esbuild = (await import(name)) as typeof import('esbuild');
    // Built aside and renamed in, file by file: another process (a parallel test file) may be serving
    // outDir meanwhile, and must never read a half-written app.js.
    await mkdir(outDir, { recursive: true });
    const tmp = await mkdtemp(join(outDir, '.build-'));
    try {
      for (const f of STATIC_FILES) await copyFile(join(srcDir, f), join(tmp, f));
      await esbuild.build({
        entryPoints: [join(srcDir, 'src', 'app.ts')],
        outfile: join(tmp, 'app.js'),
        bundle: true,
        format: 'esm',
        target: 'es2022',
        sourcemap: 'linked',
        logLevel: 'silent',
      });
      // app.js last: its mtime is what says the build is complete and current.
      for (const f of [...STATIC_FILES, 'app.js.map', 'app.js']) await rename(join(tmp, f), join(outDir, f));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  })();
  try {
    await building;
  } finally {
    building = undefined;
  }
}

/**
 * Serves `/` (a redirect) and `/ui/...` from the built UI; `false` for any other path. Unknown paths
 * under /ui/ get the page (the app routes by hash).
 */
export async function serveUi(path: string, res: ServerResponse, outDir = UI_OUT_DIR): Promise<boolean> {
  if (path === '/') {
    res.writeHead(302, { Location: '/ui/' }).end();
    return true;
  }
  if (path !== '/ui' && !path.startsWith('/ui/')) return false;
  await ensureUiBuilt(outDir);
  const rel = normalize(path.replace(/^\/ui\/?/, '') || 'index.html').replace(/^(\.\.[/\\])+/, '');
  const headers = { 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' };
  try {
    const file = await readFile(join(outDir, rel));
    res
      .writeHead(200, { ...headers, 'Content-Type': MIME[extname(rel)] ?? 'application/octet-stream' })
      .end(file);
  } catch {
    const index = await readFile(join(outDir, 'index.html'));
    res.writeHead(200, { ...headers, 'Content-Type': MIME['.html']! }).end(index);
  }
  return true;
}
