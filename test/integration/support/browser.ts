/** Chromium for the UI tests (Debian's package, or CRONPLANE_CHROMIUM) and where their screenshots go. */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../../agent/stack-file.ts';

/** Git-ignored; the reviewer looks at these. */
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

export function launchChromium(): Promise<Browser> {
  const executablePath =
    process.env.CRONPLANE_CHROMIUM || execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  return chromium.launch({
    executablePath,
    headless: true,
    // No sandbox as root; no background connections to Google's hosts on a closed network.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}
