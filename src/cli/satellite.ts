#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { EXIT_CONFIG, loadSatelliteConfig } from '../config/index.ts';
import { createLogger } from '../daemon/logger.ts';
import { startSatellite } from '../daemon/satellite.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { VERSION } from '../version.ts';
import { RUNTIME_USAGE, runtimeCommand } from './runtime.ts';

const USAGE = `usage: satellite <command> [options]

commands:
  serve              run the satellite (registry on the local disk store)
  config show        print the effective configuration as JSON
${RUNTIME_USAGE}

options:
  -c, --config FILE  JSON config file (default: $SATELLITE_CONFIG, else embedded defaults)
  -v, --version      print the version
  -h, --help         this text`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
      runtime: { type: 'string', multiple: true },
      root: { type: 'string' },
      content: { type: 'boolean' },
    },
  });
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  const [command, sub] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  let config;
  try {
    config = await loadSatelliteConfig({ file: values.config });
  } catch (err) {
    if (isSatelliteError(err, 'CONFIG_INVALID')) {
      console.error(err.message);
      return EXIT_CONFIG;
    }
    throw err;
  }
  if (command === 'config' && sub === 'show') {
    console.log(JSON.stringify(config, null, 2));
    return 0;
  }
  if (command === 'runtime') return runtimeCommand(sub, config, values);
  if (command !== 'serve') {
    console.error(`unknown command: ${[command, sub].filter(Boolean).join(' ')}\n\n${USAGE}`);
    return 2;
  }
  const log = createLogger(config.log.level);
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  // SIGTERM during start-up (e.g. a first boot still waiting for Ground Control) aborts it.
  const starting = new AbortController();
  const abortStart = () => starting.abort();
  process.once('SIGTERM', abortStart);
  process.once('SIGINT', abortStart);
  let runtime;
  try {
    runtime = await startSatellite(config, log, starting.signal);
  } catch (err) {
    if (starting.signal.aborted) {
      log.info('stopped during start-up');
      return 0;
    }
    log.fatal({ err }, 'satellite failed to start');
    // A bad config, a refused registration token or a damaged identity will not fix themselves.
    return isSatelliteError(err) && ['CONFIG_INVALID', 'REGISTRATION_FAILED', 'IDENTITY_INVALID'].includes(err.code) ? EXIT_CONFIG : 1;
  } finally {
    process.off('SIGTERM', abortStart);
    process.off('SIGINT', abortStart);
  }
  log.info({ version: VERSION, dataDir: config.dataDir }, 'satellite started');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      runtime.close().then(resolve, (err) => {
        log.error({ err }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
