import { DOWNSTREAM, UPSTREAM, parseTopic } from '../../protocol/index.ts';

/** Who is on an MQTT connection: Ground Control itself (every right) or one satellite. */
/** (passwordHash: what it logged in with, to cut the session when that is revoked.) */
export type Principal = { kind: 'groundcontrol' } | { kind: 'satellite'; id: string; passwordHash?: string };

/**
 * The embedded broker's rules, the same as the documented Mosquitto ACL: a satellite publishes
 * only on its own upstream topics (results, state, presence, events) and subscribes only to its
 * own downstream topics (desired, commands), by exact name — no wildcards.
 */
export function mayPublish(p: Principal, topicName: string): boolean {
  if (p.kind === 'groundcontrol') return true;
  const t = parseTopic(topicName);
  return t !== undefined && t.satelliteId === p.id && UPSTREAM.includes(t.channel);
}

export function maySubscribe(p: Principal, filter: string): boolean {
  if (p.kind === 'groundcontrol') return true;
  const t = parseTopic(filter);
  return t !== undefined && t.satelliteId === p.id && DOWNSTREAM.includes(t.channel);
}

/** Checked again on delivery (also for messages queued in a persistent session). */
export function mayReceive(p: Principal, topicName: string): boolean {
  return maySubscribe(p, topicName);
}
