#!/usr/bin/env node
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiCallError, ApiClient, UsageError, runApiCommand } from '../groundcontrol/client.ts';
import { SystemdNotifier } from '../daemon/notify.ts';
import { StopSignals } from '../daemon/signals.ts';
import { beginRestartBackoff } from '../daemon/restart-backoff.ts';
import { isSatelliteError } from '../lib/errors.ts';
import { VERSION } from '../version.ts';

const GC_BUNDLE_USAGE = `  bundle create --satellite ID | --group NAME -o DIR [--part-size SIZE] [-c FILE]
                                           a signed bundle of exactly the images that satellite (or group)
                                           should hold, from the upstream (docs/bundles.md); parts over
                                           SIZE (default 2GiB, e.g. 100MiB)
  bundle key [-c FILE]                     print the bundle signing public key (PEM)`;

const USAGE = `usage: groundcontrol <command> [options]

server:
  serve [-c FILE]                          run Ground Control (API + broker or broker link)
  admin-token create [-c FILE | --data-dir DIR]
                                           add an admin token and print it (once)
  mosquitto-acl [--user NAME]              print the Mosquitto ACL for an external broker
  mosquitto-conf                           print the mosquitto.conf settings for large fleets
${GC_BUNDLE_USAGE}

API (--url URL or $GROUNDCONTROL_URL, --token T or $GROUNDCONTROL_TOKEN; --json for scripts):
  satellite add NAME [--site S] [--ttl SECONDS]   create; prints its id and registration token
  satellite ls [FILTER]
  satellite show ID
  satellite rm ID
  satellite token ID [--ttl SECONDS]              new registration token (rotates MQTT password)
  satellite site ID SITE|-                        move to a site (- for none)
  group apply -f FILE                             create/replace from {name, images, platforms?}
  group ls | group show NAME | group rm NAME
  assign GROUP --satellite ID | --site SITE
  unassign GROUP --satellite ID | --site SITE
  token create [--site S] [--ttl SECONDS]         registering with it creates a satellite
  token ls
  status [FILTER]                                 fleet counts and one page of satellites
  command ID NAME [--wait SECONDS] [--repair]     NAME: sync-now, gc, report, verify (re-hash every
                                                  blob; --repair quarantines bad ones and re-syncs)
  commands ID
  events [--follow] [--satellite ID] [--type T[,T]] [--since 10m|ISO] [--limit N]
                                                  the event and audit log, oldest first; --follow
                                                  prints new lines as they come (Ctrl-C ends)

FILTER (status, satellite ls): --site S, --group G, --state online|offline|unknown|in-sync|
  out-of-sync; one page of --limit N (default 100, at most 1000) in id order, the next one with
  --after ID (printed at the end), or --all pages.

options:
  -c, --config FILE  JSON config (default: $GROUNDCONTROL_CONFIG)
  -v, --version      print the version
  -h, --help         this text`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        site: { type: 'string' },
        satellite: { type: 'string' },
        group: { type: 'string' },
        state: { type: 'string' },
        limit: { type: 'string' },
        after: { type: 'string' },
        all: { type: 'boolean' },
        ttl: { type: 'string' },
        file: { type: 'string', short: 'f' },
        wait: { type: 'string' },
        repair: { type: 'boolean' },
        follow: { type: 'boolean', short: 'F' },
        type: { type: 'string' },
        since: { type: 'string' },
        user: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'part-size': { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
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
  if (command === 'serve') return serve(values.config);
  if (command === 'admin-token' && sub === 'create') return adminToken(values.config, values['data-dir']);
  if (command === 'bundle') {
    const config = await loadConfig(values.config);
    if (!config) return (await server()).EXIT_CONFIG;
    return (await import('./groundcontrol-bundle.ts')).gcBundleCommand(sub, config, values);
  }
  if (command === 'mosquitto-acl') {
    const { mosquittoAcl } = await server();
    process.stdout.write(mosquittoAcl(values.user));
    return 0;
  }
  if (command === 'mosquitto-conf') {
    const { mosquittoFleetSettings } = await server();
    process.stdout.write(mosquittoFleetSettings());
    return 0;
  }
  const url = values.url ?? process.env.GROUNDCONTROL_URL ?? 'http://127.0.0.1:8480';
  const api = new ApiClient(url, values.token ?? process.env.GROUNDCONTROL_TOKEN);
  // Ctrl-C (or SIGTERM) ends `events --follow` cleanly; other commands keep the default action.
  const stop = new AbortController();
  if (values.follow) for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  try {
    return await runApiCommand(api, positionals, { ...values, json: values.json ?? false, all: values.all ?? false, signal: stop.signal }, { out: (s) => console.log(s), err: (s) => console.error(s) });
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ApiCallError) {
      console.error(`error ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

// The server side (aedes, LMDB, pino) loads only for the commands that need it.
const server = () => import('../groundcontrol/index.ts');

async function loadConfig(file: string | undefined) {
  const { loadGroundControlConfig } = await server();
  try {
    return await loadGroundControlConfig({ file });
  } catch (err) {
    if (isSatelliteError(err, 'CONFIG_INVALID')) {
      console.error(err.message);
      return undefined;
    }
    throw err;
  }
}

async function serve(file: string | undefined): Promise<number> {
  const { EXIT_CONFIG, createGcLogger, startGroundControl } = await server();
  const config = await loadConfig(file);
  if (!config) return EXIT_CONFIG;
  // One SIGTERM/SIGINT listener from here on: a signal during the back-off cuts it short, one
  // during start-up stops Ground Control cleanly as soon as it is up (never the default action).
  const signals = new StopSignals();
  const log = createGcLogger(config.log);
  const notify = new SystemdNotifier({ log: log.child({ module: 'systemd' }) });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let runtime;
  notify.starting('starting');
  const backoff = await beginRestartBackoff({ dataDir: config.dataDir, config: config.restartBackoff, log, notify, signal: signals.signal });
  if (signals.signal.aborted) {
    notify.close();
    await backoff?.end();
    await notify.stopping('stopped during the restart back-off');
    return 0;
  }
  try {
    runtime = await startGroundControl(config, log);
  } catch (err) {
    notify.close();
    log.fatal({ err }, 'groundcontrol failed to start');
    if (!isSatelliteError(err, 'CONFIG_INVALID')) return 1;
    await backoff?.end().catch(() => undefined);
    return EXIT_CONFIG;
  }
  log.info({ version: VERSION, dataDir: config.dataDir, apiPort: runtime.apiPort, brokerPort: runtime.brokerPort, publicMqttUrl: runtime.publicMqttUrl }, 'groundcontrol started');
  const rt = runtime;
  const statusLine = `API on :${rt.apiPort}; MQTT ${rt.brokerPort !== undefined ? `embedded on :${rt.brokerPort}` : 'external'}`;
  // Ready once the API listens and LMDB is open; pings only while both hold (see daemon/notify.ts).
  void notify.ready(statusLine, () => rt.liveness());
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      void notify.stopping(`stopping (${signal})`);
      runtime.close().then(
        async () => {
          log.info('stopped');
          await backoff?.end().catch((err: unknown) => log.warn({ err }, 'cannot record the clean stop'));
          resolve();
        },
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          resolve();
        },
      );
    };
    signals.onStop(stop);
  });
  return 0;
}

async function adminToken(file: string | undefined, dataDir: string | undefined): Promise<number> {
  const { EXIT_CONFIG, createAdminToken, openGcDb } = await server();
  let dir = dataDir;
  if (!dir) {
    const config = await loadConfig(file);
    if (!config) return EXIT_CONFIG;
    dir = config.dataDir;
  }
  const db = openGcDb(join(dir, 'db'));
  try {
    console.log(await createAdminToken(db, 'cli'));
  } finally {
    await db.root.close();
  }
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
