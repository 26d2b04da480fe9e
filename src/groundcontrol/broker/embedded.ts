import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import type { Logger } from 'pino';
import { SatelliteError } from '../../lib/errors.ts';
import type { BrokerLimitsConfig, ListenConfig } from '../config.ts';
import type { GcDb } from '../db/db.ts';
import { sameSecretHash, verifyMosquittoHash } from '../secrets.ts';
import { mayPublish, mayReceive, maySubscribe, type Principal } from './authorizer.ts';
import { LmdbPersistence } from './persistence.ts';
import type { SecretBox } from '../secret-box.ts';
import { ConnectionGuard, type GuardedConnection } from './connection-guard.ts';
import { MAX_PAYLOAD_BYTES } from '../../protocol/index.ts';

// A payload just over the contract's limit still reaches Ground Control, which rejects and counts
// it; anything far larger is cut at the socket before it is buffered.
const MAX_PACKET_BYTES = 2 * MAX_PAYLOAD_BYTES;

// CONNACK return codes of MQTT 3.1.1 [MQTT-3.2.2.3].
const BAD_USERNAME_OR_PASSWORD = 4;
const IDENTIFIER_REJECTED = 2;

function authError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

/** Client ids a satellite may use: its id, or "satellite-<id>" (the satellite's default). */
export function satelliteClientIds(id: string): string[] {
  return [id, `satellite-${id}`];
}

/**
 * The built-in MQTT broker (aedes) on its own port: satellites log in with their id and the
 * password from registration (checked against the stored hash), Ground Control's own client with
 * a per-process secret. Sessions and retained messages live in LMDB (LmdbPersistence).
 */
export class EmbeddedBroker {
  readonly #db: GcDb;
  readonly #box: SecretBox;
  readonly #log: Logger;
  readonly #listen: ListenConfig;
  readonly #internal: { username: string; password: string };
  readonly #principals = new WeakMap<Client, Principal>();
  readonly #guard: ConnectionGuard;
  readonly #guarded = new WeakMap<Client, GuardedConnection>();
  #aedes: Aedes | undefined;
  #server: Server | undefined;

  constructor(opts: { db: GcDb; box: SecretBox; log: Logger; listen: ListenConfig; limits: BrokerLimitsConfig; internal: { username: string; password: string } }) {
    this.#db = opts.db;
    this.#box = opts.box;
    this.#log = opts.log;
    this.#listen = opts.listen;
    this.#internal = opts.internal;
    this.#guard = new ConnectionGuard({ limits: opts.limits, maxPacketBytes: MAX_PACKET_BYTES, log: opts.log });
  }

  /** Open MQTT connections and those not logged in yet (the metrics). */
  get connections(): { open: number; pending: number } {
    return this.#guard.counts;
  }

  async start(): Promise<AddressInfo> {
    const options: AedesOptions = {
      persistence: new LmdbPersistence(this.#db, this.#log, this.#box),
      // Satellite ids are up to 63 characters; MQTT 3.1's 23 is too short.
      maxClientsIdLength: 64,
      drainTimeout: 30_000,
      authenticate: (client, username, password, done) => {
        const principal = this.#authenticate(client, username, password);
        if (principal instanceof Error) {
          this.#log.warn({ clientId: client.id, username, reason: principal.message }, 'mqtt login refused');
          done(principal as Error & { returnCode: never }, false);
          return;
        }
        this.#principals.set(client, principal);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        const p = client ? this.#principals.get(client) : { kind: 'groundcontrol' as const };
        if (p && mayPublish(p, packet.topic)) return done(null);
        this.#log.warn({ clientId: client?.id, topic: packet.topic.slice(0, 300) }, 'mqtt publish refused');
        done(new Error(`not allowed to publish on ${packet.topic}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        const p = this.#principals.get(client);
        if (p && maySubscribe(p, sub.topic)) return done(null, sub);
        this.#log.warn({ clientId: client.id, topic: sub.topic.slice(0, 300) }, 'mqtt subscribe refused');
        done(null, null); // SUBACK 0x80 for this filter; the connection stays
      },
      authorizeForward: (client, packet) => {
        const p = this.#principals.get(client);
        return p && mayReceive(p, packet.topic) ? packet : null;
      },
    };
    const aedes = await Aedes.createBroker(options);
    this.#aedes = aedes;
    aedes.on('clientError', (client, err) => this.#log.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    aedes.on('client', (client) => {
      // Logged in: no longer pending, and full-size packets from now on.
      this.#guarded.get(client)?.loggedIn();
      this.#log.debug({ clientId: client.id }, 'mqtt client connected');
    });
    aedes.on('clientDisconnect', (client) => this.#log.debug({ clientId: client.id }, 'mqtt client disconnected'));
    const server = createServer((socket) => {
      const conn = this.#guard.admit(socket);
      if (conn) this.#guarded.set(aedes.handle(conn.stream), conn);
    });
    this.#server = server;
    server.listen(this.#listen.port, this.#listen.host);
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw new SatelliteError('LISTEN_FAILED', `broker cannot listen on ${this.#listen.host}:${this.#listen.port}: ${(err as Error).message}`, { cause: err });
      }),
    ]);
    const address = server.address() as AddressInfo;
    this.#log.info({ address: address.address, port: address.port }, 'broker listening');
    return address;
  }

  #authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Principal | Error {
    const secret = password?.toString('utf8') ?? '';
    if (!username) return authError('no username', BAD_USERNAME_OR_PASSWORD);
    if (username === this.#internal.username) {
      return sameSecretHash(secret, this.#internal.password) ? { kind: 'groundcontrol' } : authError('bad password', BAD_USERNAME_OR_PASSWORD);
    }
    const sat = this.#db.satellites.get(username);
    if (!sat?.mqttPasswordHash || !verifyMosquittoHash(secret, sat.mqttPasswordHash)) {
      return authError('unknown satellite or bad password', BAD_USERNAME_OR_PASSWORD);
    }
    // A satellite's session is its own: a free client id would let it take over another's session.
    if (!satelliteClientIds(username).includes(client.id)) {
      return authError(`client id must be ${satelliteClientIds(username).join(' or ')}`, IDENTIFIER_REJECTED);
    }
    return { kind: 'satellite', id: sat.id, passwordHash: sat.mqttPasswordHash };
  }

  /**
   * Disconnects these satellites if their credentials changed since they logged in (deleted, or
   * password rotated by a new registration): a login is checked once, so a revoked one must be
   * cut. Logins are authenticated from LMDB, so nothing else is needed for a new satellite. A
   * satellite's session can only use its own client ids, so only those are looked up.
   */
  revokeStale(satelliteIds: readonly string[]): void {
    const aedes = this.#aedes as (Aedes & { clients: Record<string, Client> }) | undefined;
    if (!aedes) return;
    for (const id of satelliteIds) {
      for (const clientId of satelliteClientIds(id)) {
        const client = aedes.clients[clientId];
        if (!client) continue;
        const p = this.#principals.get(client);
        if (p?.kind !== 'satellite' || p.id !== id) continue;
        if (this.#db.satellites.get(id)?.mqttPasswordHash === p.passwordHash) continue;
        this.#log.info({ satelliteId: id }, 'mqtt session of revoked credentials closed');
        client.close();
      }
    }
  }

  /** Stops accepting, disconnects every client, closes the broker. */
  async close(): Promise<void> {
    const server = this.#server;
    const aedes = this.#aedes;
    this.#server = undefined;
    this.#aedes = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
    this.#guard.close();
  }
}
