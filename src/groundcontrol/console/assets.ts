import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SatelliteError } from '../../lib/errors.ts';
import { CONSOLE_FILES, consoleBuildOptions } from './build-options.ts';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** The page's shell: everything else is app.js (same origin: the CSP allows nothing else). */
const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ground Control</title>
<link rel="stylesheet" href="/console/app.css">
<script type="module" src="/console/app.js"></script>
</head>
<body><div id="app"><noscript>The Ground Control console needs JavaScript.</noscript></div></body>
</html>
`;

/** Security headers of every console answer. */
export const CONSOLE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
} as const;

function asset(name: string, body: Buffer): Asset {
  return { body, type: TYPES[name] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/**
 * The console's static files. The release bundle ships them built in <bundle dir>/console/
 * (scripts/release/bundle.ts); run from source, they are built in memory by esbuild on the first
 * request. Either way they are loaded once and served from memory.
 */
export class ConsoleAssets {
  readonly #log: Logger;
  #loading: Promise<Map<string, Asset>> | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The asset (index.html, app.js, app.css) or undefined for any other name. */
  async get(name: string): Promise<Asset | undefined> {
    if (!(name in TYPES)) return undefined;
    this.#loading ??= this.#load().catch((err: unknown) => {
      this.#loading = undefined;
      throw err;
    });
    return (await this.#loading).get(name);
  }

  async #load(): Promise<Map<string, Asset>> {
    const files = new Map<string, Asset>([['index.html', asset('index.html', Buffer.from(INDEX_HTML))]]);
    if (process.env.HARBOR_SATELLITE_BUNDLE === '1') {
      const dir = join(import.meta.dirname, 'console');
      for (const name of CONSOLE_FILES) files.set(name, asset(name, await readFile(join(dir, name))));
      return files;
    }
    const started = Date.now();
    // A variable specifier: the release bundle must not pull esbuild in (it ships built files).
    const specifier = 'esbuild';
    let esbuild: typeof import('esbuild');
    try {
      esbuild = (await import(specifier)) as typeof import('esbuild');
    } catch (err) {
      throw new SatelliteError('UNAVAILABLE', 'console assets are not built and esbuild is not installed (npm ci)', { cause: err, statusCode: 503 });
    }
    const result = await esbuild.build({ ...consoleBuildOptions('/console-build'), write: false });
    for (const out of result.outputFiles) {
      const name = out.path.split('/').at(-1) ?? '';
      files.set(name, asset(name, Buffer.from(out.contents)));
    }
    this.#log.info({ ms: Date.now() - started, bytes: [...files.values()].reduce((n, a) => n + a.body.length, 0) }, 'console assets built');
    return files;
  }
}
