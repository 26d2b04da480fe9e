import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireBinary } from './bin.ts';
import { defer, type Teardown } from './cleanup.ts';
import { makeTempDir } from './tmp.ts';

const run = promisify(execFile);

export interface TokenIssuerOptions {
  /** Basic credentials the issuer accepts; a wrong password is answered 401 (docker token spec). */
  users?: Record<string, string>;
  /**
   * Actions granted to requests without credentials. Default: none when `users` is given (tokens
   * carry no access, so the registry answers 401 insufficient_scope), else pull and push.
   */
  anonymousActions?: string[];
  /** Answer 401 (Basic challenge) to requests without credentials instead of an access-less token. */
  refuseAnonymous?: boolean;
  /** Actions an authenticated user may get, intersected with what they ask for; default all. */
  userActions?: string[];
  service?: string;
  issuer?: string;
  /** expires_in in the response and token lifetime; default 300 s. */
  expiresInSeconds?: number;
  /** Leave expires_in out of the response (clients must assume 60 s). */
  omitExpiresIn?: boolean;
  /** Which JSON field carries the token; default 'token'. */
  tokenField?: 'token' | 'access_token' | 'both';
  /**
   * How the JWT names its key: 'x5c' (the cert, verified against rootcertbundle) or 'kid' (the
   * libtrust key ID of a cert's key in rootcertbundle). Default 'x5c'.
   */
  keyHeader?: 'x5c' | 'kid';
}

/** One token request as the issuer saw it. */
export interface TokenRequest {
  account: string | undefined;
  /** The authenticated user, undefined for anonymous. */
  user: string | undefined;
  service: string | null;
  scopes: string[];
  /** The HTTP status answered. */
  status: number;
  /** The access granted (empty when refused or anonymous without rights). */
  access: TokenAccess[];
}

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenIssuer {
  /** Token endpoint: http://127.0.0.1:PORT/token */
  realm: string;
  service: string;
  issuer: string;
  /** PEM cert file to give the registry as `rootcertbundle`. */
  rootCertBundle: string;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Token requests answered so far (any status). */
  requests(): number;
  /** Every token request so far, oldest first. */
  log(): TokenRequest[];
  /** Makes a token for `access` directly (e.g. to hand-craft requests in a test). */
  mint(access: TokenAccess[], subject?: string): string;
  stop(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * libtrust key ID, as distribution 2.8 computes it for every key of rootcertbundle: sha256 of the
 * DER SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12 groups of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const sum = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of sum) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

/** Parses docker scopes "repository:name:pull,push" (the name may itself contain ':' only for other types). */
function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

function basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const idx = decoded.indexOf(':');
  if (idx < 0) return undefined;
  return { user: decoded.slice(0, idx), password: decoded.slice(idx + 1) };
}

/**
 * A Docker token issuer (docker token spec: GET realm?service=&scope=) for tests, on a free
 * 127.0.0.1 port. It signs ES256 JWTs with a fresh P-256 key whose self-signed cert (made with the
 * openssl CLI) is the registry's rootcertbundle. Stopped after the test.
 */
export async function startTokenIssuer(t: Teardown, opts: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const dir = await makeTempDir(t, 'hs-token-');
  const keyFile = join(dir, 'issuer.key');
  const certFile = join(dir, 'issuer.crt');
  await run(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=harbor-satellite test token issuer', '-keyout', keyFile, '-out', certFile,
  ]);
  const privateKey = createPrivateKey(await readFile(keyFile));
  const cert = new X509Certificate(await readFile(certFile));
  const kid = libtrustKeyId(createPublicKey(privateKey));

  const service = opts.service ?? 'test-registry';
  const issuer = opts.issuer ?? 'test-issuer';
  const lifetime = opts.expiresInSeconds ?? 300;
  const users = opts.users;
  const anonymousActions = opts.anonymousActions ?? (users ? [] : ['pull', 'push']);
  const log: TokenRequest[] = [];

  const mint = (access: TokenAccess[], subject = ''): string => {
    const header =
      (opts.keyHeader ?? 'x5c') === 'x5c'
        ? { typ: 'JWT', alg: 'ES256', x5c: [cert.raw.toString('base64')] }
        : { typ: 'JWT', alg: 'ES256', kid };
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + lifetime,
      // A little back-dating: the registry rejects tokens not yet valid by its clock.
      nbf: now - 5,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 signatures are r||s (IEEE P1363), not DER.
    const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(signature)}`;
  };

  const answer = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/token') {
      answer(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` }] });
      return;
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const entry: TokenRequest = {
      account: url.searchParams.get('account') ?? undefined,
      user: undefined,
      service: url.searchParams.get('service'),
      scopes,
      status: 200,
      access: [],
    };
    log.push(entry);
    const creds = basicCredentials(req);
    let allowed = anonymousActions;
    if (creds || opts.refuseAnonymous) {
      if (!creds || !users || users[creds.user] !== creds.password) {
        entry.status = 401;
        answer(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, {
          'WWW-Authenticate': 'Basic realm="test token issuer"',
        });
        return;
      }
      entry.user = creds.user;
      allowed = opts.userActions ?? ['pull', 'push', 'delete', '*'];
    }
    if (entry.service !== service) {
      entry.status = 400;
      answer(res, 400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${entry.service}` }] });
      return;
    }
    for (const scope of scopes) {
      const wanted = parseScope(scope);
      if (!wanted || wanted.type !== 'repository') continue;
      const actions = wanted.actions.filter((a) => allowed.includes(a));
      if (actions.length) entry.access.push({ type: wanted.type, name: wanted.name, actions });
    }
    const token = mint(entry.access, entry.user ?? '');
    const tokenField = opts.tokenField ?? 'token';
    answer(res, 200, {
      ...(tokenField !== 'access_token' ? { token } : {}),
      ...(tokenField !== 'token' ? { access_token: token } : {}),
      ...(opts.omitExpiresIn ? {} : { expires_in: lifetime }),
      issued_at: new Date().toISOString(),
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  defer(t, stop);
  const url = `http://127.0.0.1:${port}`;
  return {
    realm: `${url}/token`,
    service,
    issuer,
    rootCertBundle: certFile,
    url,
    requests: () => log.length,
    log: () => log.map((e) => ({ ...e })),
    mint,
    stop,
  };
}
