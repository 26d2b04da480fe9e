import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { bootstrapAdminTokens } from './admin-tokens.ts';
import { ApiServer } from './api/server.ts';
import { LiveHub } from './api/live.ts';
import { EmbeddedBroker } from './broker/embedded.ts';
import { BrokerLink } from './broker/link.ts';
import { MosquittoPasswordFile } from './broker/mosquitto.ts';
import type { GroundControlConfig } from './config.ts';
import { openGcDb } from './db/db.ts';
import { republishPendingCommands } from './fleet/commands.ts';
import type { FleetContext } from './fleet/context.ts';
import { reconcileDesired, republishAllDesired } from './fleet/reconcile.ts';
import { ReportRecorder } from './fleet/reports.ts';
import { loadSiteKey } from './fleet/site-secret.ts';
import { randomSecret } from './secrets.ts';
import { SecretBox } from './secret-box.ts';
import { loadBundleKey } from './bundle-key.ts';
import { GcMetrics } from './metrics.ts';
import { WebhookDeliverer } from './webhooks/deliverer.ts';
import { ensurePrivateDir, tightenFiles } from '../lib/private-files.ts';

export interface GroundControlRuntime {
  apiPort: number;
  /** The embedded broker's port; undefined with an external broker. */
  brokerPort: number | undefined;
  publicMqttUrl: string;
  /** Why Ground Control is not healthy (API not listening, LMDB unreadable), else undefined. */
  liveness(): string | undefined;
  close(): Promise<void>;
}

/** Loopback for a wildcard listen address: where our own client reaches the embedded broker. */
function localHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts Ground Control: LMDB, admin tokens, the broker (embedded) or the password file
 * (external), our MQTT link, a reconcile pass, then the API. close() stops in reverse order.
 */
export async function startGroundControl(config: GroundControlConfig, log: Logger): Promise<GroundControlRuntime> {
  // 0700 dir, 0600 files whatever the umask: the database holds credential hashes and sealed
  // messages, the key file what unseals them (docs/security.md).
  const dbDir = join(config.dataDir, 'db');
  await ensurePrivateDir(config.dataDir);
  await ensurePrivateDir(dbDir);
  const box = await SecretBox.open(config.dataDir);
  const db = openGcDb(dbDir);
  await tightenFiles(dbDir);
  await tightenFiles(config.dataDir);
  const stops: Array<() => Promise<void>> = [async () => db.root.close()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        log.error({ err }, 'error while stopping');
      }
    }
  };
  try {
    await bootstrapAdminTokens(db, config, log);
    const siteKey = await loadSiteKey(config.dataDir, log);
    const bundleKey = await loadBundleKey(config.dataDir);
    if (bundleKey.created) log.info({ keyId: bundleKey.keyId }, 'bundle signing key generated');
    // Secrets first: a bad secret file fails the start-up before anything listens.
    const webhooks = await WebhookDeliverer.open(db, log.child({ module: 'webhooks' }), config.events);

    let brokerPort: number | undefined;
    let linkUrl: string;
    let publicMqttUrl: string;
    let linkPassword = config.broker.password;
    let passwordFile: MosquittoPasswordFile | undefined;
    let embedded: EmbeddedBroker | undefined;
    if (!config.broker.url) {
      linkPassword = randomSecret();
      const broker = new EmbeddedBroker({
        db,
        box,
        log: log.child({ module: 'broker' }),
        listen: config.broker.embedded,
        limits: config.broker.limits,
        internal: { username: config.broker.username, password: linkPassword },
      });
      const address = await broker.start();
      embedded = broker;
      stops.push(() => broker.close());
      brokerPort = address.port;
      linkUrl = `mqtt://${urlHost(localHost(config.broker.embedded.host))}:${address.port}`;
      const publicHost = config.broker.embedded.host === '0.0.0.0' || config.broker.embedded.host === '::' ? hostname() : config.broker.embedded.host;
      publicMqttUrl = config.publicMqttUrl ?? `mqtt://${urlHost(publicHost)}:${address.port}`;
    } else {
      linkUrl = config.broker.url;
      publicMqttUrl = config.publicMqttUrl ?? config.broker.url;
      if (config.broker.passwordFile) {
        passwordFile = new MosquittoPasswordFile({
          db,
          log: log.child({ module: 'mosquitto' }),
          path: config.broker.passwordFile,
          reloadCommand: config.broker.reloadCommand,
          groundControl: config.broker.password !== undefined ? { username: config.broker.username, password: config.broker.password } : undefined,
          probeUrl: config.broker.url,
        });
        const file = passwordFile;
        // A broker that is not up yet does not stop Ground Control (the link retries too): the
        // file is written, and the next change writes it again and confirms the reload.
        await file.sync().catch((err: unknown) => {
          if (!isSatelliteError(err, 'UNAVAILABLE')) throw err;
          log.warn({ err: err.message }, 'mosquitto did not confirm the password file reload');
        });
      }
    }

    // The console's live feed: told of every recorded change, streams them to open pages.
    const live = new LiveHub({ db, log: log.child({ module: 'live' }), config: config.api.live });
    const linkLog = log.child({ module: 'link' });
    const link = new BrokerLink({
      url: linkUrl,
      username: config.broker.username,
      password: linkPassword,
      clientId: config.broker.clientId,
      log: linkLog,
      onMessage: (topicName, payload) => recorder.record(topicName, payload),
      onFreshSession: () => {
        const desired = republishAllDesired(fleet);
        const commands = republishPendingCommands(fleet);
        linkLog.info({ desired, commands }, 'desired states and pending commands republished');
      },
    });
    const fleet: FleetContext = {
      db,
      config,
      log: log.child({ module: 'fleet' }),
      publisher: link,
      credentialsChanged: passwordFile ? (ids) => passwordFile.sync(ids) : async (ids) => embedded?.revokeStale(ids),
      now: () => new Date(),
      siteKey,
      bundleKeyPem: bundleKey.publicKeyPem,
      publicMqttUrl,
      secrets: box,
      changes: live,
    };
    const metrics = new GcMetrics(fleet, { broker: embedded, webhooks });
    fleet.metrics = metrics;
    const recorder = new ReportRecorder(fleet);
    await link.start();
    stops.push(() => link.close());
    // The config (upstream) may have changed since the last run: recompute everyone.
    await reconcileDesired(fleet, [...db.satellites.getKeys({})]);

    const api = new ApiServer({
      fleet,
      log: log.child({ module: 'api' }),
      listen: config.api.listen,
      maxBodyBytes: config.api.maxBodyBytes,
      maxJsonDepth: config.api.maxJsonDepth,
      register: config.api.register,
      metrics,
      live,
    });
    const apiAddress = await api.start();
    stops.push(() => api.close());
    await webhooks.start();
    stops.push(() => webhooks.close());
    const liveness = () => {
      if (!api.listening) return 'API is not listening';
      // A cheap read through LMDB: throws once the environment is closed or broken.
      for (const _ of db.satellites.getKeys({ limit: 1 })) break;
      return undefined;
    };
    return { apiPort: apiAddress.port, brokerPort, publicMqttUrl, liveness, close: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
