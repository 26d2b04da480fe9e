import type { Logger } from 'pino';
import type { GroundControlConfig } from '../config.ts';
import type { GcDb } from '../db/db.ts';
import type { SecretBox } from '../secret-box.ts';

/** How the fleet reaches the broker; the broker link implements it. */
export interface Publisher {
  /**
   * Publishes at QoS 1. Resolves when the broker acknowledged it; while disconnected the
   * message waits in the client's queue, so callers do not block on it.
   */
  publish(topic: string, payload: Buffer, opts: { retain: boolean }): Promise<void>;
  readonly connected: boolean;
  /** Publishes so far by topic channel (desired, commands, ...): acknowledged or failed. */
  readonly published?: ReadonlyMap<string, { ok: number; failed: number }>;
}

/** What the fleet tells the metrics as it works (metrics.ts implements it). */
export interface FleetMetrics {
  /** A satellite message was recorded, `lagSeconds` after the time the satellite put in it. */
  reportRecorded(type: string, lagSeconds: number): void;
}

/**
 * Told when these satellites' MQTT credentials changed (set, rotated or deleted; the record in
 * LMDB is already committed). Resolves once the broker applies them: the external broker's
 * password file is updated and reloaded (batched), the embedded broker cuts sessions of revoked
 * credentials. Only the named satellites are looked at.
 */
export type CredentialsHook = (satelliteIds: readonly string[]) => Promise<void>;

/** Told which satellites' status changed once it is durable (the console's live feed, api/live.ts). */
export interface ChangeSink {
  satellitesChanged(ids: Iterable<string>): void;
}

/** Everything the fleet functions need, passed explicitly. */
export interface FleetContext {
  db: GcDb;
  config: GroundControlConfig;
  log: Logger;
  publisher: Publisher;
  credentialsChanged: CredentialsHook;
  now: () => Date;
  /** Key of the site peer secrets (site-secret.ts): <dataDir>/site-key. */
  siteKey: Buffer;
  /** Public key (PEM) of the bundle signing key (bundle-key.ts): told to satellites at registration and in every desired state. */
  bundleKeyPem?: string;
  /** The broker URL satellites are told to use (config publicMqttUrl, else derived). */
  publicMqttUrl: string;
  /** Keyed fingerprints of secrets the fleet must not store (the upstream password). */
  secrets: SecretBox;
  metrics?: FleetMetrics | undefined;
  /** Where status changes are announced (undefined: nobody listens). */
  changes?: ChangeSink | undefined;
}
