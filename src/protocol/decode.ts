import { jsonDepth } from '../lib/json-depth.ts';
import { validate } from '../lib/validate.ts';
import { SatelliteError } from '../lib/errors.ts';
import {
  commandMessageSchema,
  desiredMessageSchema,
  eventMessageSchema,
  presenceMessageSchema,
  resultMessageSchema,
  stateMessageSchema,
  type CommandMessage,
  type DesiredMessage,
  type EventMessage,
  type PresenceMessage,
  type ResultMessage,
  type StateMessage,
} from './messages.ts';
import { Channel, MAX_PAYLOAD_BYTES, parseTopic, type ChannelName } from './topics.ts';

/** No message of the contract nests anywhere near this deep. */
const MAX_MESSAGE_DEPTH = 64;

interface ByChannel {
  desired: DesiredMessage;
  commands: CommandMessage;
  results: ResultMessage;
  state: StateMessage;
  presence: PresenceMessage;
  events: EventMessage;
}

const SCHEMAS: Record<ChannelName, object> = {
  [Channel.desired]: desiredMessageSchema,
  [Channel.commands]: commandMessageSchema,
  [Channel.results]: resultMessageSchema,
  [Channel.state]: stateMessageSchema,
  [Channel.presence]: presenceMessageSchema,
  [Channel.events]: eventMessageSchema,
};

/**
 * Decodes and validates one MQTT message. Throws MESSAGE_INVALID (with every problem) for a bad
 * topic, an oversized or non-JSON payload, a schema violation, or a satelliteId that is not the
 * topic's (a message for another satellite).
 */
export function decodeMessage<C extends ChannelName>(
  topicName: string,
  payload: Buffer,
  expect?: { channel?: C; satelliteId?: string },
): { satelliteId: string; channel: C; message: ByChannel[C] } {
  const parsed = parseTopic(topicName);
  if (!parsed) throw invalid(`unknown topic ${topicName.slice(0, 200)}`);
  if (expect?.channel && parsed.channel !== expect.channel) throw invalid(`expected a ${expect.channel} message on ${topicName}`);
  if (expect?.satelliteId && parsed.satelliteId !== expect.satelliteId) {
    throw invalid(`message for satellite ${parsed.satelliteId}, not ${expect.satelliteId}`);
  }
  if (payload.length > MAX_PAYLOAD_BYTES) throw invalid(`payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  const text = payload.toString('utf8');
  // Validation copies and walks the value recursively: refuse absurd nesting as invalid, not as a fault.
  if (jsonDepth(text, MAX_MESSAGE_DEPTH) > MAX_MESSAGE_DEPTH) throw invalid(`payload on ${topicName} nests deeper than ${MAX_MESSAGE_DEPTH} levels`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid(`payload on ${topicName} is not JSON`);
  }
  const message = validate<ByChannel[C]>(SCHEMAS[parsed.channel], doc, `${parsed.channel} message`, 'MESSAGE_INVALID');
  if ((message as { satelliteId: string }).satelliteId !== parsed.satelliteId) {
    throw invalid(`message names satellite ${(message as { satelliteId: string }).satelliteId} on ${parsed.satelliteId}'s topic`);
  }
  return { satelliteId: parsed.satelliteId, channel: parsed.channel as C, message };
}

export function encodeMessage(message: object): Buffer {
  return Buffer.from(JSON.stringify(message));
}

function invalid(message: string): SatelliteError {
  return new SatelliteError('MESSAGE_INVALID', message);
}
