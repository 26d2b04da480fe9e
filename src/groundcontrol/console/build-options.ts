import { join } from 'node:path';

/** The console's sources (plain browser JavaScript and CSS; tsc does not check them). */
export const CONSOLE_UI_DIR = join(import.meta.dirname, 'ui');
/** The files the console is served from, as built (esbuild) into <bundle dir>/console/. */
export const CONSOLE_FILES = ['app.js', 'app.css'] as const;

/**
 * esbuild options for the console: one ESM file for current browsers with preact and htm inside
 * (no CDN: the page works on an air-gapped network). Used by the release build (written to
 * disk) and by Ground Control run from source (built in memory on first request).
 */
export function consoleBuildOptions(outdir: string) {
  return {
    entryPoints: { app: join(CONSOLE_UI_DIR, 'app.js') },
    outdir,
    bundle: true,
    format: 'esm' as const,
    platform: 'browser' as const,
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: false,
    legalComments: 'none' as const,
    logLevel: 'warning' as const,
  };
}
