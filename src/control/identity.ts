import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '../lib/errors.ts';
import { writeFileAtomic } from '../lib/fs-atomic.ts';
import { validate } from '../lib/validate.ts';
import { ControlErrorCode, controlError } from './errors.ts';

/**
 * Who this satellite is and how it reaches its broker: from registration (kept in identity.json)
 * or from explicit config. Holds secrets: never log it whole.
 */
export interface Identity {
  satelliteId: string;
  name?: string;
  site?: string | null;
  mqtt: { url: string; username?: string; password?: string; topicPrefix?: string; clientId?: string };
  /** Upstream (robot) credentials handed out at registration; null when Ground Control has none. */
  upstream: { url: string; username?: string; password?: string } | null;
  /** Ground Control's bundle signing public key (PEM), from registration: signed bundles are checked with it. */
  bundleKey?: string;
  groundControlUrl?: string;
  registeredAt?: string;
  /** 'registration' (identity.json) or 'config' (explicit mqtt section). */
  source: 'registration' | 'config';
}

const str = { type: 'string' } as const;

export const identityFileSchema = {
  $id: 'identity-file',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'satelliteId', 'mqtt', 'upstream'],
  properties: {
    version: { const: 1 },
    satelliteId: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    name: str,
    site: { type: ['string', 'null'] },
    mqtt: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, username: str, password: str, topicPrefix: str, clientId: str },
    },
    upstream: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', minLength: 1 }, username: str, password: str },
    },
    bundleKey: str,
    groundControlUrl: str,
    registeredAt: str,
  },
} as const;

type IdentityFile = Omit<Identity, 'source'> & { version: 1 };

/** The stored identity, or undefined when there is none yet. A damaged file is IDENTITY_INVALID. */
export async function loadIdentity(file: string): Promise<Identity | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw controlError(ControlErrorCode.identityInvalid, `cannot read identity file ${file}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw controlError(ControlErrorCode.identityInvalid, `identity file ${file} is not JSON; delete it to register again`, { cause: err });
  }
  const { version: _v, ...rest } = validate<IdentityFile>(identityFileSchema, doc, `identity file ${file}`, ControlErrorCode.identityInvalid);
  return { ...rest, source: 'registration' };
}

/** Writes identity.json atomically, readable by the satellite's user only (it holds credentials). */
export async function saveIdentity(file: string, identity: Identity): Promise<void> {
  const { source: _s, ...rest } = identity;
  const doc: IdentityFile = { version: 1, ...rest };
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o600);
}
