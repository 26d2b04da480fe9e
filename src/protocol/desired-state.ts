import { createPublicKey } from 'node:crypto';
import { validate } from '../lib/validate.ts';
import { isDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';

/**
 * What should be on this satellite. Every source (a local file now, Ground Control over MQTT later)
 * produces this document; it applies whole or not at all.
 */
export interface DesiredState {
  /** Increases with every change; the satellite reports the last one fully applied. */
  generation: number;
  upstream: { url: string; username?: string; password?: string };
  /** Default platform filter, e.g. ["linux/arm64"]; absent = keep every platform. */
  platforms?: string[];
  images: DesiredImage[];
  /**
   * The satellites of this one's site that share blobs (src/peers), itself included, as Ground
   * Control knows them: ids and the peer URLs they reported. Absent = no site, or nobody to share with.
   */
  site?: SiteMembership;
  /**
   * Signature policies (docs/trust.md), one per Ground Control group that sets one. Verified offline
   * with these keys only: nothing is fetched from a transparency log or a certificate authority.
   */
  trust?: TrustPolicy[];
  /**
   * Ground Control's bundle public keys (Ed25519, PKIX PEM; docs/bundles.md, "Trust chain"): bundles
   * signed by one of them verify. Learned only from Ground Control's own channel (or a desired-state
   * file); when present they replace the key given at registration, so a rotation reaches every
   * satellite with its next desired state. Never taken from a bundle's copy of the desired state.
   */
  bundleKeys?: string[];
}

export interface TrustPolicy {
  /** The group that set it. */
  name: string;
  /** enforce: an image without a valid signature is not committed; warn: committed and flagged. */
  mode: 'enforce' | 'warn';
  /** PEM public keys (cosign.pub, PKIX "PUBLIC KEY"): ECDSA P-256 as cosign makes them, or RSA / Ed25519. */
  keys: string[];
  /** The repositories it covers; absent = every image of the document. */
  repositories?: string[];
}

export interface SiteMembership {
  name: string;
  members: Array<{ id: string; url: string }>;
  /**
   * The site's peer secret (Ground Control derives it from its key over the site and its members,
   * so it changes with the membership): members send it and require it on the peer endpoints.
   */
  secret?: string;
}

export interface DesiredImage {
  /** Repository on the upstream, e.g. "library/nginx" or "project/app". */
  repository: string;
  tags?: string[];
  /** Pinned digests: kept even when no tag points at them any more. */
  digests?: string[];
  /** Overrides the document's platform filter for this image. */
  platforms?: string[];
}

const PLATFORM = { type: 'string', pattern: '^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$' } as const;

/** The registry satellites sync from: in every desired state, and in Ground Control's config. */
export const upstreamTargetSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^https?://[^/\\s]+/?$' },
    username: { type: 'string', minLength: 1 },
    password: { type: 'string' },
  },
} as const;

/** A signature policy: in the desired state, and on a Ground Control group (without name and repositories). */
export const trustPolicySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'mode', 'keys'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    mode: { enum: ['enforce', 'warn'] },
    keys: { type: 'array', minItems: 1, maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 16384 } },
    repositories: { type: 'array', maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 255 } },
  },
} as const;

/** A group's signature policy in Ground Control: the group's name and images make it a TrustPolicy. */
export interface GroupTrust {
  mode: 'enforce' | 'warn';
  keys: string[];
}

export const groupTrustSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'keys'],
  properties: { mode: trustPolicySchema.properties.mode, keys: trustPolicySchema.properties.keys },
} as const;

/** Site names as Ground Control accepts them; member ids are satellite ids. */
export const siteMembershipSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'members'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    members: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'url'],
        properties: {
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          url: { type: 'string', pattern: '^https?://[^/\\s]+/?$' },
        },
      },
    },
    secret: { type: 'string', minLength: 32, maxLength: 256 },
  },
} as const;

export const desiredStateSchema = {
  $id: 'desired-state',
  type: 'object',
  additionalProperties: false,
  required: ['generation', 'upstream', 'images'],
  properties: {
    generation: { type: 'integer', minimum: 0 },
    upstream: upstreamTargetSchema,
    platforms: { type: 'array', items: PLATFORM, maxItems: 32 },
    images: {
      type: 'array',
      maxItems: 10000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['repository'],
        properties: {
          repository: { type: 'string', minLength: 1, maxLength: 255 },
          tags: { type: 'array', items: { type: 'string' }, maxItems: 1000 },
          digests: { type: 'array', items: { type: 'string' }, maxItems: 1000 },
          platforms: { type: 'array', items: PLATFORM, maxItems: 32 },
        },
      },
    },
    site: siteMembershipSchema,
    trust: { type: 'array', maxItems: 64, items: trustPolicySchema },
    bundleKeys: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string', minLength: 1, maxLength: 16384 } },
  },
} as const;

/** Validates a desired-state document; every problem is listed, with the key that has it. */
export function parseDesiredState(input: unknown, where = 'desired state'): DesiredState {
  const doc = validate<DesiredState>(desiredStateSchema, input, where, 'DESIRED_STATE_INVALID');
  const problems: string[] = [];
  doc.images.forEach((img, i) => {
    if (!isRepositoryName(img.repository)) problems.push(`/images/${i}/repository: invalid repository name ${img.repository}`);
    img.tags?.forEach((t, j) => isTag(t) || problems.push(`/images/${i}/tags/${j}: invalid tag ${t}`));
    img.digests?.forEach((d, j) => isDigest(d) || problems.push(`/images/${i}/digests/${j}: invalid digest ${d}`));
    if (!img.tags?.length && !img.digests?.length) problems.push(`/images/${i}: needs at least one tag or digest`);
  });
  doc.trust?.forEach((p, i) => {
    p.keys.forEach((pem, j) => {
      try {
        createPublicKey(pem);
      } catch {
        problems.push(`/trust/${i}/keys/${j}: not a PEM public key`);
      }
    });
  });
  doc.bundleKeys?.forEach((pem, i) => {
    let type: string | undefined;
    try {
      type = createPublicKey(pem).asymmetricKeyType;
    } catch {
      // reported below
    }
    if (type !== 'ed25519') problems.push(`/bundleKeys/${i}: not an Ed25519 PEM public key`);
  });
  if (problems.length > 0) {
    throw new SatelliteError('DESIRED_STATE_INVALID', `invalid ${where}:\n  ${problems.join('\n  ')}`, { detail: problems });
  }
  return doc;
}

