#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { EXIT_CONFIG, loadSatelliteConfig } from '../config/index.ts';
import { createLogger } from '../daemon/logger.ts';
import { SystemdNotifier } from '../daemon/notify.ts';
import { StopSignals } from '../daemon/signals.ts';
import { beginRestartBackoff } from '../daemon/restart-backoff.ts';
import { startSatellite } from '../daemon/satellite.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { isStorageWriteFault } from '../store/index.ts';
import { VERSION } from '../version.ts';
import { startBanner } from './start-banner.ts';
// The commands' code loads only for its command (import() below): `serve` keeps none of it.
import { ADMIN_COMMANDS, ADMIN_USAGE, BUNDLE_USAGE, RUNTIME_USAGE, WEBHOOK_USAGE } from './usage.ts';

const USAGE = `usage: satellite <command> [options]

commands:
  serve              run the satellite (registry on the local disk store)
  config show        print the effective configuration as JSON
${ADMIN_USAGE}
${RUNTIME_USAGE}
${WEBHOOK_USAGE}
${BUNDLE_USAGE}

options:
  -c, --config FILE      JSON config file (default: $SATELLITE_CONFIG, else embedded defaults)
  -b, --board NAME|FILE  board profile under the config (default: $SATELLITE_BOARD, else the file's "board")
      --data-dir DIR     overrides dataDir
      --listen HOST:PORT overrides registry.listen
      --log-level LEVEL  overrides log.level
  -v, --version          print the version
  -h, --help             this text`;

/** SIGTERM gives in-flight work this long to finish or checkpoint; the unit's TimeoutStopSec is longer. */
const SHUTDOWN_DEADLINE_MS = 25_000;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        board: { type: 'string', short: 'b' },
        'data-dir': { type: 'string' },
        listen: { type: 'string' },
        'log-level': { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
        runtime: { type: 'string', multiple: true },
        root: { type: 'string' },
        content: { type: 'boolean' },
        json: { type: 'boolean' },
        wait: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        repair: { type: 'boolean' },
        socket: { type: 'string' },
        from: { type: 'string' },
        image: { type: 'string', multiple: true },
        output: { type: 'string', short: 'o' },
        username: { type: 'string' },
        'password-file': { type: 'string' },
        trust: { type: 'string' },
        'part-size': { type: 'string' },
        all: { type: 'boolean' },
        key: { type: 'string' },
        repository: { type: 'string' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  const [command, sub] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  // --socket alone is enough to reach a satellite: no config to read (it may not be readable).
  if (ADMIN_COMMANDS.has(command) && values.socket) return (await import('./admin-commands.ts')).adminCommand(command, values.socket, values);
  let config;
  try {
    config = await loadSatelliteConfig({
      file: values.config,
      board: values.board,
      overrides: { dataDir: values['data-dir'], listen: values.listen, logLevel: values['log-level'] },
    });
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
  if (ADMIN_COMMANDS.has(command)) return (await import('./admin-commands.ts')).adminCommand(command, config.admin.socket, values);
  if (command === 'runtime' && sub === 'webhook-config') return (await import('./webhook.ts')).webhookCommand('manifests', config);
  if (command === 'runtime') return (await import('./runtime.ts')).runtimeCommand(sub, config, values);
  if (command === 'webhook') return (await import('./webhook.ts')).webhookCommand(sub, config);
  if (command === 'bundle') return (await import('./bundle-commands.ts')).bundleCommand(sub, positionals[2], config, values);
  if (command !== 'serve') {
    console.error(`unknown command: ${[command, sub].filter(Boolean).join(' ')}\n\n${USAGE}`);
    return 2;
  }
  // SIGTERM during start-up (e.g. a first boot still waiting for Ground Control) aborts it; one
  // that lands once start-up is past its last abort check stops the running satellite cleanly.
  const signals = new StopSignals();
  const log = createLogger(config.log);
  const notify = new SystemdNotifier({ log: log.child({ module: 'systemd' }) });
  process.on('unhandledRejection', (err) => {
    // A write the disk refused (full, read-only), e.g. LMDB's commitError: reported where it failed; not a bug.
    if (isStorageWriteFault(err)) {
      log.error({ err }, 'write refused by a full or read-only disk');
      return;
    }
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  notify.starting(config.control ? 'starting (registering with Ground Control on first boot)' : 'starting');
  const backoff = await beginRestartBackoff({ dataDir: config.dataDir, config: config.restartBackoff, log, notify, signal: signals.signal });
  let runtime;
  try {
    if (signals.signal.aborted) throw new Error('stopped during the restart back-off');
    runtime = await startSatellite(config, log, signals.signal);
  } catch (err) {
    notify.close();
    if (signals.signal.aborted) {
      log.info('stopped during start-up');
      await backoff?.end();
      await notify.stopping('stopped during start-up');
      return 0;
    }
    // A bad config, a refused registration token or a damaged identity will not fix themselves.
    if (isSatelliteError(err) && ['CONFIG_INVALID', 'REGISTRATION_FAILED', 'IDENTITY_INVALID'].includes(err.code)) {
      // The operator's mistake, not a bug: one line saying what to fix, no stack trace.
      log.fatal({ code: err.code, reason: err.message }, 'satellite failed to start');
      console.error(`satellite: ${err.message}`);
      // systemd does not restart on 78; whoever fixes it and starts again should not wait.
      await backoff?.end().catch(() => undefined);
      return EXIT_CONFIG;
    }
    log.fatal({ err }, 'satellite failed to start');
    return 1;
  }
  log.info({ version: VERSION, dataDir: config.dataDir, board: config.board ?? null }, 'satellite started');
  if (process.stderr.isTTY) {
    const viaNpm = process.env.npm_lifecycle_event === 'start' || process.env.npm_lifecycle_event === 'satellite';
    process.stderr.write(`${startBanner({ address: runtime.address, tls: !!config.registry.tls, configFile: values.config, dataDir: config.dataDir, viaNpm, socket: config.admin.socket, overridden: !!(values['data-dir'] || values.board || process.env.SATELLITE_DATA_DIR || process.env.RUNTIME_DIRECTORY) })}\n`);
  }
  const rt = runtime;
  // Ready once the registry listens and the store is open; the watchdog pings come from a timer
  // on this event loop and only while the registry listens and the index reads.
  void notify.ready(rt.statusLine(), () => rt.liveness(), () => rt.statusLine());
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, deadlineMs: SHUTDOWN_DEADLINE_MS }, 'stopping');
      void notify.stopping(`stopping (${signal})`);
      const deadline = setTimeout(() => {
        log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown deadline passed; exiting');
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      rt.close().then(
        async () => {
          clearTimeout(deadline);
          await backoff?.end().catch((err: unknown) => log.warn({ err }, 'cannot record the clean stop'));
          resolve(0);
        },
        (err: unknown) => {
          clearTimeout(deadline);
          log.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    signals.onStop(stop);
  });
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
