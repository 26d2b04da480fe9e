import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type forgeNs from 'node-forge';
import type { Logger } from 'pino';
import { SatelliteError, errnoCode } from '../lib/errors.ts';
import { writeFileAtomic } from '../lib/fs-atomic.ts';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../lib/private-files.ts';

/** File names in the CA directory: the key never leaves the device, the certificate is what clients trust. */
export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';

type Forge = typeof forgeNs;

const CA_YEARS = 10;
const LEAF_DAYS = 90;
/** A leaf is re-issued when it has less than this left. */
const LEAF_RENEW_MS = 7 * 24 * 3600 * 1000;

interface Leaf {
  context: SecureContext;
  certPem: string;
  notAfter: number;
}

/**
 * The site CA: created on first start (RSA 3072, key 0600 in its own 0700 directory), loaded after.
 * Issues short-lived leaf certificates for the hosts the HTTPS proxy terminates and for the webhook;
 * leaves share one key that lives in memory only.
 */
export class SiteCa {
  readonly certPem: string;
  readonly dir: string;
  readonly #forge: Forge;
  readonly #cert: forgeNs.pki.Certificate;
  readonly #key: forgeNs.pki.rsa.PrivateKey;
  readonly #leafKeyPem: string;
  readonly #leafPublic: forgeNs.pki.rsa.PublicKey;
  readonly #leaves = new Map<string, Leaf>();

  private constructor(forge: Forge, dir: string, certPem: string, keyPem: string) {
    this.#forge = forge;
    this.dir = dir;
    this.certPem = certPem;
    this.#cert = forge.pki.certificateFromPem(certPem);
    this.#key = forge.pki.privateKeyFromPem(keyPem);
    const leaf = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#leafKeyPem = leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const leafKey = forge.pki.privateKeyFromPem(this.#leafKeyPem);
    this.#leafPublic = forge.pki.setRsaPublicKey(leafKey.n, leafKey.e);
  }

  /** Loads the CA from `dir`, creating it (and the directory, 0700) when absent. */
  static async open(dir: string, log: Logger, commonName = 'Harbor Satellite site CA'): Promise<SiteCa> {
    // Loaded only when a CA is used: about 10 MiB of RSS a satellite without these listeners never pays.
    const forge = (await import('node-forge')).default;
    const keyPath = join(dir, CA_KEY_FILE);
    const certPath = join(dir, CA_CERT_FILE);
    await ensurePrivateDir(dir);
    let keyPem: string | undefined;
    let certPem: string | undefined;
    try {
      keyPem = await readFile(keyPath, 'utf8');
      certPem = await readFile(certPath, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw new SatelliteError('CA_UNREADABLE', `cannot read the site CA in ${dir}`, { cause: err });
      if (keyPem !== undefined) throw new SatelliteError('CA_UNREADABLE', `${keyPath} exists but ${certPath} does not: restore it or remove both`);
    }
    if (keyPem === undefined || certPem === undefined) {
      ({ keyPem, certPem } = createCa(forge, commonName));
      // Key first: a crash between the two leaves a key without a certificate, refused above, never the reverse.
      await writeFileAtomic(keyPath, keyPem, PRIVATE_FILE_MODE);
      await writeFileAtomic(certPath, certPem, 0o644);
      log.info({ cert: certPath, fingerprint: new X509Certificate(certPem).fingerprint256 }, 'site CA created');
    }
    try {
      return new SiteCa(forge, dir, certPem, keyPem);
    } catch (err) {
      throw new SatelliteError('CA_UNREADABLE', `the site CA in ${dir} is not a PEM certificate and RSA key`, { cause: err });
    }
  }

  /** SHA-256 fingerprint of the CA certificate (AA:BB:...). */
  get fingerprint(): string {
    return new X509Certificate(this.certPem).fingerprint256;
  }

  /** A TLS context presenting a certificate for `host` (DNS name or IP), issued now or cached. */
  contextFor(host: string): SecureContext {
    return this.#leaf([host]).context;
  }

  /** Certificate (PEM, leaf then CA) and key for `names` (DNS names or IPs), e.g. for a listener of its own. */
  keyPairFor(...names: string[]): { cert: string; key: string } {
    return { cert: this.#leaf(names).certPem + this.certPem, key: this.#leafKeyPem };
  }

  #leaf(names: string[]): Leaf {
    const host = names[0]!;
    const key = names.join(',');
    const cached = this.#leaves.get(key);
    if (cached && cached.notAfter - Date.now() > LEAF_RENEW_MS) return cached;
    const forge = this.#forge;
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.#leafPublic;
    cert.serialNumber = serial();
    const now = Date.now();
    cert.validity.notBefore = new Date(now - 3600_000); // a device clock a little behind still accepts it
    cert.validity.notAfter = new Date(now + LEAF_DAYS * 24 * 3600 * 1000);
    cert.setSubject([{ name: 'commonName', value: host.slice(0, 64) }]);
    cert.setIssuer(this.#cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.#key, forge.md.sha256.create());
    const certPem = forge.pki.certificateToPem(cert);
    const leaf: Leaf = {
      certPem,
      context: createSecureContext({ cert: certPem + this.certPem, key: this.#leafKeyPem, minVersion: 'TLSv1.2' }),
      notAfter: cert.validity.notAfter.getTime(),
    };
    // Bounded: the hosts are the operator's list (and the webhook's names), a handful.
    if (this.#leaves.size >= 256) this.#leaves.clear();
    this.#leaves.set(key, leaf);
    return leaf;
  }
}

function createCa(forge: Forge, commonName: string): { keyPem: string; certPem: string } {
  const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serial();
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = new Date(now.getTime() + CA_YEARS * 365 * 24 * 3600 * 1000);
  const name = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Harbor Satellite' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    // pathLen 0: it signs leaves only.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

/** A positive random serial (RFC 5280: at most 20 octets, positive). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}
