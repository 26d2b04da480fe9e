import { TOPIC_PREFIX, type RegisterRequest, type RegisterResponse } from '../../protocol/index.ts';
import type { SatelliteError } from '../../lib/errors.ts';
import { durable } from '../db/db.ts';
import { putSatellite, putStatus, putToken } from '../db/indexes.ts';
import type { SatelliteRecord } from '../db/records.ts';
import { gcError } from '../errors.ts';
import { mosquittoHash, randomSecret, sha256Hex } from '../secrets.ts';
import type { FleetContext } from './context.ts';
import { publishDesired, reconcileDesired } from './reconcile.ts';
import { newSatelliteId } from './satellites.ts';

/**
 * Zero-touch registration: the one-time token is the credential. A satellite token (re-)registers
 * that satellite and rotates its MQTT password; a site token creates a new satellite at the site.
 * The token is consumed in the same transaction that issues the credentials, so it works once.
 */
export async function register(ctx: FleetContext, req: RegisterRequest): Promise<RegisterResponse> {
  const hash = sha256Hex(req.token);
  const password = randomSecret();
  const passwordHash = mosquittoHash(password);
  const now = ctx.now();
  const at = now.toISOString();
  const outcome = await durable(ctx.db, (): { sat: SatelliteRecord; created: boolean } | SatelliteError => {
    const token = ctx.db.tokens.get(hash);
    if (!token) return gcError('TOKEN_UNKNOWN', 'registration token is unknown (never issued, revoked, or its satellite was deleted)');
    if (token.usedAt) return gcError('TOKEN_USED', `registration token ${token.id} was already used at ${token.usedAt}`);
    if (Date.parse(token.expiresAt) <= now.getTime()) return gcError('TOKEN_EXPIRED', `registration token ${token.id} expired at ${token.expiresAt}`);
    let sat: SatelliteRecord | undefined;
    let created = false;
    if (token.satelliteId !== null) {
      sat = ctx.db.satellites.get(token.satelliteId);
      if (!sat) return gcError('TOKEN_UNKNOWN', `registration token ${token.id} names a satellite that no longer exists`);
    } else {
      const name = req.hostname?.trim() || (token.site ? `${token.site}-satellite` : 'satellite');
      sat = { id: newSatelliteId(name), name, site: token.site, createdAt: at, registeredAt: null, hostname: null, version: null, mqttPasswordHash: null };
      created = true;
    }
    const next: SatelliteRecord = {
      ...sat,
      registeredAt: at,
      hostname: req.hostname ?? sat.hostname,
      version: req.version ?? sat.version,
      mqttPasswordHash: passwordHash,
    };
    putSatellite(ctx.db, next);
    putToken(ctx.db, hash, { ...token, usedAt: at, usedBy: next.id });
    // A re-registered satellite may have lost its disk: its report sequence starts again.
    const status = ctx.db.status.get(next.id);
    if (status?.state) putStatus(ctx.db, next.id, { ...status, state: null }, { before: status, site: next.site });
    return { sat: next, created };
  });
  if (!('sat' in outcome)) throw outcome;
  const { sat, created } = outcome;
  ctx.log.info({ satelliteId: sat.id, created, site: sat.site, hostname: sat.hostname }, 'satellite registered');
  await ctx.credentialsChanged([sat.id]);
  if (created) await reconcileDesired(ctx, [sat.id]);
  else publishDesired(ctx, sat.id);
  return {
    satelliteId: sat.id,
    name: sat.name,
    site: sat.site,
    mqtt: { url: ctx.publicMqttUrl, username: sat.id, password, topicPrefix: TOPIC_PREFIX },
    upstream: ctx.config.upstream ? { ...ctx.config.upstream } : null,
    ...(ctx.bundleKeyPem ? { bundleKey: ctx.bundleKeyPem } : {}),
  };
}
