import type { CommandArgs, CommandName, DesiredImage, DesiredState, GroupTrust, ImageReport, StateMessage } from '../../protocol/index.ts';

/** A satellite Ground Control knows. Ids are generated and never reused. */
export interface SatelliteRecord {
  id: string;
  name: string;
  site: string | null;
  createdAt: string;
  /** Set by the first successful registration. */
  registeredAt: string | null;
  hostname: string | null;
  version: string | null;
  /** Mosquitto-format ($7$) hash of the MQTT password; null until registered. */
  mqttPasswordHash: string | null;
}

/** A named image list; the item shape is the protocol's DesiredImage. */
export interface GroupRecord {
  name: string;
  images: DesiredImage[];
  platforms?: string[];
  /** Signature policy for the group's images (docs/trust.md); absent = not checked. */
  trust?: GroupTrust;
  createdAt: string;
  updatedAt: string;
}

/** A one-time registration token, stored by the SHA-256 of the secret. */
export interface TokenRecord {
  /** Public handle (a prefix of the hash) for listing and revoking. */
  id: string;
  /** Re-registration of an existing satellite, or null: a new satellite is created. */
  satelliteId: string | null;
  /** Site of the satellite a site token creates. */
  site: string | null;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
  usedBy: string | null;
}

/** The last desired state published to a satellite. */
export interface DesiredRecord {
  generation: number;
  /** SHA-256 of the content without the generation: same content, no new generation. */
  contentHash: string;
  state: DesiredState;
  publishedAt: string;
}

/** Index record (db/indexes.ts): what the status counts and reconcile need, without documents. */
export interface GenerationsRecord {
  /** Newest generation published, and the content hash of that desired state. */
  desired: number | null;
  desiredHash: string | null;
  /** Newest generation the satellite reported as received (state.desiredGeneration). */
  acknowledged: number | null;
  /** Newest generation it reported fully applied. */
  applied: number | null;
}

export interface ErrorNote {
  at: string;
  code: string;
  message: string;
  topic?: string;
}

/** What the satellite reported about itself over MQTT. */
export interface StatusRecord {
  /** at: the message's own time (a last will's is its connect time); receivedAt: when it arrived. */
  presence: { online: boolean; at: string; receivedAt: string; version?: string } | null;
  state: Omit<StateMessage, 'images' | 'type' | 'satelliteId'> & { imageCounts: Record<ImageReport['status'], number>; images: ImageReport[] } | null;
  lastSeenAt: string | null;
  events: { count: number; last: Array<{ at: string; level: string; code: string; message: string }> };
  errors: { count: number; last: ErrorNote | null };
}

export interface CommandRecord {
  id: string;
  satelliteId: string;
  name: CommandName;
  /** Only for commands that take arguments (verify: {repair}). */
  args?: CommandArgs;
  issuedAt: string;
  /** pending: not yet acknowledged by the broker; sent: on the broker; ok/failed: answered. */
  status: 'pending' | 'sent' | 'ok' | 'failed';
  answeredAt: string | null;
  duplicate: boolean | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export interface AdminTokenRecord {
  createdAt: string;
  /** Where it came from: env, file, cli, generated. */
  source: string;
}

/** One line of the event and audit log (fleet/events.ts), keyed by a sequence number. */
/** Where a webhook's delivery stands in the event log (webhooks/queue.ts). */
export interface WebhookCursorRecord {
  url: string;
  /** The last line delivered, given up or dropped; the queue is the matching lines after it. */
  seq: number;
  /** Failed attempts at the line after `seq` and when the first of them was. */
  attempts: number;
  firstAttemptAt: string | null;
}

export interface EventRecord {
  seq: number;
  at: string;
  /** audit: a change made through the API (actor set); satellite: a transition Ground Control saw. */
  kind: 'audit' | 'satellite';
  /** e.g. "POST /api/v1/groups", "satellite.offline", "image.failed" */
  action: string;
  /** "admin token 1a2b3c4d5e6f", "session 0a1b2c3d4e5f (admin token 1a2b3c4d5e6f)", "registration" */
  actor: string | null;
  satelliteId: string | null;
  /** HTTP status of an audited request. */
  status: number | null;
  message: string;
}
