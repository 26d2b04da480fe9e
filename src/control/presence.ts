import { Channel, encodeMessage, topic, type PresenceMessage } from '../protocol/index.ts';

/** The retained presence message: online on connect, offline on close and as the last will. */
export function presenceMessage(satelliteId: string, online: boolean, version: string): PresenceMessage {
  return { type: 'presence', satelliteId, online, at: new Date().toISOString(), version };
}

/** MQTT last will: the broker publishes it (retained, QoS 1) when the connection dies without DISCONNECT. */
export function lastWill(satelliteId: string, version: string): { topic: string; payload: Buffer; qos: 1; retain: true } {
  return { topic: topic(satelliteId, Channel.presence), payload: encodeMessage(presenceMessage(satelliteId, false, version)), qos: 1, retain: true };
}
