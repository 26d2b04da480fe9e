import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { errnoCode } from '../lib/errors.ts';
import { keyIdOf, signEd25519, verifyEd25519 } from '../lib/ed25519.ts';
import { bundleError } from './layout.ts';

/**
 * bundle.sig: Ground Control's Ed25519 signature over the exact bytes of bundle.json (the contents
 * list: every image, and every file's digest and size). The list pins every byte of the bundle by
 * digest, so one signature over it covers the whole stick.
 */
export const SIGNATURE_FILE = 'bundle.sig';
export const SIGNATURE_FORMAT = 'harbor-satellite-bundle-signature/1';

export interface BundleSignature {
  format: typeof SIGNATURE_FORMAT;
  algorithm: 'ed25519';
  /** sha256 of the signing public key's DER (lib/ed25519.ts keyIdOf). */
  keyId: string;
  /** base64 */
  signature: string;
}

export interface BundleSigner {
  keyId: string;
  privateKey: KeyObject;
}

export function signContents(bytes: Buffer, signer: BundleSigner): Buffer {
  const doc: BundleSignature = { format: SIGNATURE_FORMAT, algorithm: 'ed25519', keyId: signer.keyId, signature: signEd25519(bytes, signer.privateKey).toString('base64') };
  return Buffer.from(`${JSON.stringify(doc, null, 1)}\n`);
}

/** What the import knows and requires about bundle signatures. */
export interface SignatureRequirement {
  /** Ground Control public keys (PEM) a bundle may be signed by. */
  keys: string[];
  /** Refuse an unsigned bundle (else it is imported on its digests alone, reported "unsigned"). */
  required: boolean;
}

export type ContentsVerdict = { status: 'verified'; keyId: string } | { status: 'unsigned' } | { status: 'unverified'; keyId: string };

/**
 * Checks bundle.sig over `bytes` (bundle.json as read). A signature that does not verify with a known
 * key is always refused (a tampered list, or a bundle from another Ground Control); an absent one only
 * when signatures are required. A signed bundle with no key known to check it is "unverified" unless required.
 */
export async function checkContentsSignature(dir: string, bytes: Buffer, req: SignatureRequirement): Promise<ContentsVerdict> {
  let text: string | undefined;
  try {
    text = await readFile(join(dir, SIGNATURE_FILE), 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw bundleError('BUNDLE_SIGNATURE_INVALID', `${SIGNATURE_FILE} unreadable: ${(err as Error).message}`);
  }
  if (text === undefined) {
    if (req.required) throw bundleError('BUNDLE_UNSIGNED', `${dir} has no ${SIGNATURE_FILE} and this satellite requires bundles signed by Ground Control`);
    return { status: 'unsigned' };
  }
  let doc: BundleSignature;
  try {
    doc = JSON.parse(text) as BundleSignature;
  } catch {
    throw bundleError('BUNDLE_SIGNATURE_INVALID', `${SIGNATURE_FILE} is not JSON`);
  }
  if (doc.format !== SIGNATURE_FORMAT || doc.algorithm !== 'ed25519' || typeof doc.signature !== 'string' || typeof doc.keyId !== 'string') {
    throw bundleError('BUNDLE_SIGNATURE_INVALID', `${SIGNATURE_FILE} is not a ${SIGNATURE_FORMAT} document`);
  }
  if (req.keys.length === 0) {
    if (req.required) throw bundleError('BUNDLE_KEY_MISSING', 'signed bundles are required but no Ground Control key is known (register, or set sync.bundleKeyFile)');
    return { status: 'unverified', keyId: doc.keyId };
  }
  const signature = Buffer.from(doc.signature, 'base64');
  const key = req.keys.find((pem) => verifyEd25519(bytes, signature, pem));
  if (!key) {
    throw bundleError('BUNDLE_SIGNATURE_INVALID', `bundle.json does not verify with ${req.keys.length === 1 ? "Ground Control's key" : `any of ${req.keys.length} Ground Control keys`} (signed by ${doc.keyId}): tampered, or from another Ground Control`, { keyId: doc.keyId });
  }
  return { status: 'verified', keyId: keyIdOf(key) };
}
