import { access } from 'node:fs/promises';
import { chromium, type Browser } from 'playwright-core';
import { defer, type Teardown } from './cleanup.ts';

/** Debian's chromium; playwright never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Launches headless Debian chromium (fails loudly when it is missing); closed after the test. */
export async function launchChromium(t: Teardown): Promise<Browser> {
  await access(CHROMIUM).catch(() => {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/install-test-peers.sh)`);
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  defer(t, () => browser.close());
  return browser;
}
