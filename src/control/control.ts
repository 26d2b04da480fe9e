import type { Logger } from 'pino';
import { isSatelliteError } from '../lib/errors.ts';
import { Channel, decodeMessage, encodeMessage, parseTopic, topic, type EventMessage, type SiteMembership } from '../protocol/index.ts';
import type { RunReport } from '../sync/index.ts';
import { ControlClient, type ConnectionStatus } from './client.ts';
import { CommandRunner } from './commands.ts';
import type { ControlConfig } from './config-schema.ts';
import { MqttDesiredStateSource } from './desired-source.ts';
import { ControlErrorCode, clip, controlError } from './errors.ts';
import type { Identity } from './identity.ts';
import { Outbox, type OutboxStats } from './outbox.ts';
import type { ControlStore, SyncPort, VerifyPort } from './ports.ts';
import { refusal, verifyResult } from './verify-result.ts';
import { lastWill, presenceMessage } from './presence.ts';
import { obtainIdentity, readCa } from './registration.ts';
import { Reporter } from './reports.ts';
import type { ReportSources } from './report-inputs.ts';

/** A report goes out when free space moved by this share of the disk since the last one. */
const DISK_STEP_PERCENT = 5;

export interface ControlOptions {
  /** The validated `control` config section (defaults filled in). */
  config: ControlConfig;
  dataDir: string;
  log: Logger;
  store: ControlStore;
  version: string;
  /** Reported at registration; default os.hostname(). */
  hostname?: string;
  /** Aborts registration retries (first boot while Ground Control is unreachable). */
  signal?: AbortSignal;
  /** Reported in every state report: where the site's other satellites reach this one (src/peers). */
  peerUrl?: string | undefined;
  /** Every accepted desired state's site membership (undefined = none), for blob sharing. */
  onSite?: ((site: SiteMembership | undefined) => void) | undefined;
}

export interface ControlStatus {
  satelliteId: string;
  connection: ConnectionStatus;
  outbox: OutboxStats;
  /** Newest desired generation received over MQTT in this process. */
  receivedGeneration: number | null;
}

/**
 * Obtains the satellite's identity (explicit config, stored identity.json, or zero-touch
 * registration on first boot) and builds the control plane, not yet connected. Then:
 * pass `control.source` to the SyncEngine, start the engine, and call `control.start(engine)`.
 */
export async function createControl(opts: ControlOptions): Promise<Control> {
  const { config } = opts;
  const identity = await obtainIdentity({
    config,
    dataDir: opts.dataDir,
    log: opts.log,
    version: opts.version,
    hostname: opts.hostname,
    signal: opts.signal,
  });
  const caKey = config.mqtt?.caFile ? 'control.mqtt.caFile' : 'control.caFile';
  const caFile = config.mqtt?.caFile ?? config.caFile;
  const ca = caFile ? await readCa(caFile, caKey) : undefined;
  return new Control(opts, identity, ca);
}

/**
 * The satellite side of the MQTT control plane: desired state in, commands in, state reports,
 * command results, events and presence out (through the durable outbox).
 */
export class Control {
  readonly identity: Identity;
  /** Give this to the SyncEngine as its `source`. */
  readonly source: MqttDesiredStateSource;
  readonly #opts: ControlOptions;
  readonly #log: Logger;
  readonly #client: ControlClient;
  readonly #outbox: Outbox;
  readonly #reporter: Reporter;
  readonly #commands: CommandRunner;
  #sync: SyncPort | undefined;
  #verify: VerifyPort | undefined;
  #unsubscribe: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ControlOptions, identity: Identity, ca?: Buffer) {
    const { config, store } = opts;
    const id = identity.satelliteId;
    this.identity = identity;
    this.#opts = opts;
    this.#log = opts.log.child({ satelliteId: id });
    this.#client = new ControlClient({
      url: identity.mqtt.url,
      clientId: identity.mqtt.clientId ?? `satellite-${id}`,
      username: identity.mqtt.username,
      password: identity.mqtt.password,
      ca,
      keepaliveSeconds: config.keepaliveSeconds,
      connectTimeoutMs: config.connectTimeoutMs,
      reconnectMinMs: config.reconnectMinMs,
      reconnectMaxMs: config.reconnectMaxMs,
      subscriptions: [topic(id, Channel.desired), topic(id, Channel.commands)],
      will: () => lastWill(id, opts.version),
      log: this.#log,
      onConnect: () => this.#onConnect(),
      onMessage: (t, payload) => this.#onMessage(t, payload),
    });
    this.#outbox = new Outbox({
      store,
      log: this.#log,
      maxEntries: config.maxOutbox,
      maxReports: config.maxQueuedReports,
      publish: (item) => this.#client.publish(item.topic, item.payload, { retain: item.retain }),
      isConnected: () => this.#client.connected,
      overflowEvent: (count) => this.#eventItem('warn', ControlErrorCode.outboxOverflow, `${count} results/events were dropped: the outbox was full while offline`),
    });
    this.source = new MqttDesiredStateSource({
      satelliteId: id,
      log: this.#log,
      onAccept: (state) => {
        this.#reporter.request();
        opts.onSite?.(state.site);
      },
      onReject: (err) => {
        const code = isSatelliteError(err) ? err.code : ControlErrorCode.messageInvalid;
        const level = code === ControlErrorCode.desiredStale ? 'warn' : 'error';
        this.publishEvent(level, code, `desired message rejected: ${err.message}`).catch((e: unknown) => this.#log.warn({ err: e }, 'event not queued'));
      },
    });
    this.#reporter = new Reporter({
      satelliteId: id,
      version: opts.version,
      store,
      outbox: this.#outbox,
      log: this.#log,
      intervalSeconds: config.reportIntervalSeconds,
      received: () => this.source.newestGeneration,
      isConnected: () => this.#client.connected,
      peerUrl: opts.peerUrl,
      publishNow: (t, payload) => this.#client.publish(t, payload, { retain: true }),
      trigger: { progressStepPercent: config.reportProgressStepPercent, progressStepBytes: config.reportProgressStepBytes, diskStepPercent: DISK_STEP_PERCENT },
    });
    this.#commands = new CommandRunner({
      satelliteId: id,
      store,
      outbox: this.#outbox,
      log: this.#log,
      maxIds: config.commandIdsMax,
      maxAgeMs: config.commandIdsMaxAgeDays * 86_400_000,
      handlers: {
        'sync-now': async () => summarizeRun(await this.#requireSync().runOnce()),
        gc: async () => ({ ...(await store.collectGarbage()) }),
        report: async () => ({ seq: await this.#reporter.report() }),
        verify: async (args) => {
          if (!this.#verify) throw controlError(ControlErrorCode.closed, 'blob verification is not available in this process');
          const started = Date.now();
          return { ...verifyResult(await this.#verify(args.repair === true), Date.now() - started) };
        },
      },
      // A verify of a big store takes minutes: reports and syncs must not wait behind it.
      beside: ['verify'],
    });
  }

  /**
   * Connects (in the background: the satellite works offline) and starts reporting. Call after
   * sync.start(); `sources` are the other domains' counters the reports carry (report-inputs.ts).
   */
  async start(sync: SyncPort, sources?: ReportSources, commands?: { verify?: VerifyPort }): Promise<void> {
    if (this.#sync) throw new Error('control already started');
    this.#sync = sync;
    this.#verify = commands?.verify;
    this.source.setCurrent(() => sync.desired?.generation);
    this.#reporter.start(sync, sources);
    // A run that changed nothing (same result, statuses, generations) is no news on a metered link.
    this.#unsubscribe = sync.onRun(() => this.#reporter.check());
    this.#commands.resume();
    this.#client.start();
  }

  status(): ControlStatus {
    return {
      satelliteId: this.identity.satelliteId,
      connection: this.#client.status(),
      outbox: this.#outbox.stats(),
      receivedGeneration: this.source.newestGeneration,
    };
  }

  /** Queues a state report now (durably); resolves with its seq. */
  report(): Promise<number> {
    return this.#reporter.report();
  }

  /** Queues an event for Ground Control (durably), e.g. a disk-full warning. */
  publishEvent(level: EventMessage['level'], code: string, message: string): Promise<void> {
    return this.#outbox.enqueue(() => [this.#eventItem(level, code, message)]);
  }

  /**
   * Graceful stop: no new work, flush the outbox and publish offline (retained) while connected,
   * then DISCONNECT (the broker keeps the session). Bounded by closeTimeoutMs. Call before
   * sync.close() and store.close(); what was not sent stays in the outbox for the next start.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#reporter.close();
      this.#unsubscribe?.();
      await this.#commands.close();
      const timeoutMs = this.#opts.config.closeTimeoutMs;
      const id = this.identity.satelliteId;
      await this.#client.close(async () => {
        await this.#outbox.drain(Math.floor(timeoutMs * 0.6));
        await this.#client.publish(topic(id, Channel.presence), encodeMessage(presenceMessage(id, false, this.#opts.version)), { retain: true });
        return true;
      }, timeoutMs);
      await this.#outbox.close();
      this.#log.info(this.#outbox.stats(), 'control plane stopped');
    })();
    return this.#closing;
  }

  #requireSync(): SyncPort {
    if (!this.#sync) throw controlError(ControlErrorCode.closed, 'control plane not started');
    return this.#sync;
  }

  #onConnect(): void {
    const id = this.identity.satelliteId;
    // Presence first, directly: a queued "online" from an earlier connection would be stale.
    this.#client
      .publish(topic(id, Channel.presence), encodeMessage(presenceMessage(id, true, this.#opts.version)), { retain: true })
      .catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, 'online presence not acknowledged'));
    this.#outbox.connected();
    this.#reporter.request();
  }

  async #onMessage(topicName: string, payload: Buffer): Promise<void> {
    const id = this.identity.satelliteId;
    const parsed = parseTopic(topicName);
    if (!parsed || parsed.satelliteId !== id) {
      this.#log.warn({ topic: clip(topicName, 200) }, 'message on an unexpected topic ignored');
      return;
    }
    if (parsed.channel === Channel.desired) {
      this.source.handle(topicName, payload);
      return;
    }
    if (parsed.channel !== Channel.commands) {
      this.#log.warn({ topic: topicName }, 'message on an unexpected channel ignored');
      return;
    }
    let command;
    try {
      command = decodeMessage(topicName, payload, { channel: Channel.commands, satelliteId: id }).message;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'command rejected');
      const code = isSatelliteError(err) ? err.code : ControlErrorCode.messageInvalid;
      await this.publishEvent('error', code, `command rejected: ${(err as Error).message}`);
      // With an id, Ground Control gets an answer too: its command ends failed with the reason.
      const answer = refusal(payload, id, (err as Error).message);
      if (answer) await this.#commands.refuse(answer.id, answer.name, { code: answer.code, message: answer.message });
      return;
    }
    await this.#commands.accept(command);
  }

  #eventItem(level: EventMessage['level'], code: string, message: string) {
    const id = this.identity.satelliteId;
    const event: EventMessage = { type: 'event', satelliteId: id, level, code: clip(code, 100), message: clip(message, 4000), at: new Date().toISOString() };
    return { kind: 'event' as const, topic: topic(id, Channel.events), payload: encodeMessage(event).toString('utf8'), retain: false };
  }
}

/** The result of a sync-now command: the run report, its error list cut to the first 20. */
function summarizeRun(r: RunReport): Record<string, unknown> {
  return { ...r, errorCount: r.errors.length, errors: r.errors.slice(0, 20).map((e) => ({ ...e, message: clip(e.message, 500) })) };
}
