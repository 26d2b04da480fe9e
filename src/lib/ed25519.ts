import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import { errnoCode, SatelliteError } from './errors.ts';
import { writeFileAtomic } from './fs-atomic.ts';
import { PRIVATE_FILE_MODE } from './private-files.ts';

/** An Ed25519 signing key and what others need to check its signatures. */
export interface SigningKey {
  privateKey: KeyObject;
  /** PKIX "PUBLIC KEY" PEM: what a verifier is given. */
  publicKeyPem: string;
  /** sha256:<hex> of the public key's DER: names the key in a signature document. */
  keyId: string;
}

/** sha256 of the SPKI DER of a public key (PEM or KeyObject). */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  return `sha256:${createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/**
 * Reads an Ed25519 private key (PKCS#8 PEM) from `file`, creating it (mode 0600) when absent.
 * An existing file is tightened to 0600: only its owner may sign. `create: false` only reads.
 */
export async function loadOrCreateSigningKey(file: string, opts: { create?: boolean } = {}): Promise<SigningKey & { created: boolean }> {
  let pem: string | undefined;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw new SatelliteError('CONFIG_INVALID', `${file}: cannot read the signing key: ${errnoCode(err) ?? String(err)}`, { cause: err });
  }
  let created = false;
  let privateKey: KeyObject;
  if (pem === undefined && opts.create === false) throw new SatelliteError('CONFIG_INVALID', `${file}: no signing key (it is created when the service first starts)`);
  if (pem === undefined) {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    await writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, PRIVATE_FILE_MODE);
    created = true;
  } else {
    try {
      privateKey = createPrivateKey(pem);
    } catch (err) {
      throw new SatelliteError('CONFIG_INVALID', `${file}: not a PEM private key`, { cause: err });
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new SatelliteError('CONFIG_INVALID', `${file}: not an Ed25519 key (${privateKey.asymmetricKeyType})`);
    await chmod(file, PRIVATE_FILE_MODE);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, keyId: keyIdOf(publicKey), created };
}

export function signEd25519(data: Buffer, key: KeyObject): Buffer {
  return sign(null, data, key);
}

/** True when `signature` over `data` verifies with the public key (PEM); false for any other key type or a bad PEM. */
export function verifyEd25519(data: Buffer, signature: Buffer, publicKeyPem: string): boolean {
  try {
    const key = createPublicKey(publicKeyPem);
    return key.asymmetricKeyType === 'ed25519' && verify(null, data, key, signature);
  } catch {
    return false;
  }
}
