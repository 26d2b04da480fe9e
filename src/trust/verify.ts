import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { TrustPolicy } from '../protocol/desired-state.ts';
import { withoutRegistryHost } from '../oci/names.ts';
import { trustError, TrustErrorCode } from './errors.ts';

export interface TrustKey {
  /** First 16 hex of the SHA-256 of the key's SPKI DER: names the key in status and logs. */
  id: string;
  key: KeyObject;
}

/** What a policy asks of one repository: the strictest mode and every key any policy trusts for it. */
export interface EffectivePolicy {
  mode: 'enforce' | 'warn';
  keys: TrustKey[];
  /** Names of the policies (Ground Control groups) that apply. */
  from: string[];
}

export function keyId(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** Parsed keys by PEM text: the proxy asks for a repository's policy on every pull it checks. */
const parsed = new Map<string, TrustKey>();
const PARSED_MAX = 256;

/** Reads PEM public keys (cosign.pub: PKIX "PUBLIC KEY"); a key that does not parse is an error naming it. */
export function loadKeys(pems: string[], where = 'trust'): TrustKey[] {
  return pems.map((pem, i) => {
    const known = parsed.get(pem);
    if (known) return known;
    try {
      const key = createPublicKey(pem);
      const k = { id: keyId(key), key };
      if (parsed.size >= PARSED_MAX) parsed.clear();
      parsed.set(pem, k);
      return k;
    } catch (err) {
      throw trustError(TrustErrorCode.keyInvalid, `${where} key ${i} is not a PEM public key: ${(err as Error).message}`, undefined, err);
    }
  });
}

/**
 * Whether a policy's repository entry covers a repository: the name itself, or a pattern where `*`
 * stands for any characters, `/` included (`prod/*`, `*`). Repository names never contain `*`, so
 * a plain name matches only itself.
 */
export function repositoryMatches(pattern: string, repository: string): boolean {
  if (!pattern.includes('*')) return pattern === repository;
  const escape = (part: string) => part.replace(/[.+?^$()|[\]{}\\]/g, '\\$&');
  const re = new RegExp(`^${pattern.split('*').map(escape).join('.*')}$`);
  return re.test(repository);
}

/**
 * The policy for a repository: every policy whose repositories include it (or that lists none).
 * Enforce wins over warn; keys are the union. undefined: no policy applies, nothing is checked.
 * Shared by sync (the desired state's policies) and the pull-through proxy (those plus its own).
 */
export function policyFor(policies: TrustPolicy[] | undefined, repository: string): EffectivePolicy | undefined {
  const applies = (policies ?? []).filter((p) => !p.repositories || p.repositories.some((r) => repositoryMatches(r, repository)));
  if (applies.length === 0) return undefined;
  const keys = new Map<string, TrustKey>();
  for (const p of applies) for (const k of loadKeys(p.keys, `trust policy ${p.name}`)) keys.set(k.id, k);
  return { mode: applies.some((p) => p.mode === 'enforce') ? 'enforce' : 'warn', keys: [...keys.values()], from: applies.map((p) => p.name) };
}

/** Names a policy's mode and key set: a verdict reached under another fingerprint is stale (a key rotation). */
export function policyFingerprint(policy: EffectivePolicy): string {
  return `${policy.mode}:${policy.keys.map((k) => k.id).sort().join(',')}`;
}

export type PayloadCheck = { ok: true; keyId: string } | { ok: false; reason: string };

/**
 * Checks one cosign simple-signing signature: the signature over the payload bytes with one of the
 * keys, then the payload's claims — `critical.image.docker-manifest-digest` equal to the image's
 * digest, `critical.identity.docker-reference` naming its repository (any registry host).
 */
export function verifyPayload(payload: Buffer, signatureB64: string, keys: TrustKey[], expect: { digest: string; repository: string }): PayloadCheck {
  const signature = Buffer.from(signatureB64, 'base64');
  const signer = keys.find((k) => {
    try {
      // Ed25519 signs the message itself; ECDSA (cosign's default P-256) and RSA sign its SHA-256.
      const algorithm = k.key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
      return verify(algorithm, payload, k.key, signature);
    } catch {
      return false;
    }
  });
  if (!signer) return { ok: false, reason: `signature does not verify with any trusted key (${keys.map((k) => k.id).join(', ') || 'none'})` };
  let doc: { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown }; identity?: { 'docker-reference'?: unknown } } };
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'signed payload is not JSON' };
  }
  const signed = doc.critical?.image?.['docker-manifest-digest'];
  if (signed !== expect.digest) return { ok: false, reason: `signed payload is for ${String(signed)}, not ${expect.digest}` };
  const identity = doc.critical?.identity?.['docker-reference'];
  if (typeof identity !== 'string' || !sameRepository(identity, expect.repository)) {
    return { ok: false, reason: `signed payload names ${String(identity)}, not repository ${expect.repository}` };
  }
  return { ok: true, keyId: signer.id };
}

/**
 * "127.0.0.1:5000/team/app:1.0", "docker.io/library/nginx" and "team/app" name repositories; the
 * registry host is whoever the image was signed for (upstream, mirror), so only the path must match.
 */
export function sameRepository(dockerReference: string, repository: string): boolean {
  let name = dockerReference.split('@')[0] ?? '';
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) name = name.slice(0, colon);
  const path = withoutRegistryHost(name);
  const strip = (r: string) => (r.startsWith('library/') ? r.slice('library/'.length) : r);
  return path === repository || strip(path) === strip(repository);
}
