import { COMMAND_NAMES, MAX_VERIFY_LISTED, type VerifyResult } from '../protocol/index.ts';
import type { VerifyReport } from '../store/index.ts';
import { COMMAND_INVALID, COMMAND_UNKNOWN, isCommandName } from './commands.ts';

/**
 * The result of a `verify` command: complete counts, and the first MAX_VERIFY_LISTED images and
 * blobs by name, so a store with thousands of bad blobs still fits one result message (a few KB).
 */
export function verifyResult(r: VerifyReport, durationMs: number): VerifyResult {
  return {
    blobsChecked: r.blobs,
    bytesChecked: r.bytes,
    corrupt: r.bad.filter((b) => b.problem === 'corrupt').length,
    missing: r.bad.filter((b) => b.problem === 'missing').length,
    imagesAffected: r.brokenImages.length,
    repaired: r.repaired ? r.bad.length : 0,
    images: r.brokenImages.slice(0, MAX_VERIFY_LISTED).map((i) => `${i.repository}${i.reference.startsWith('sha256:') ? '@' : ':'}${i.reference}`.slice(0, 300)),
    blobs: r.bad.slice(0, MAX_VERIFY_LISTED).map((b) => ({ digest: b.digest, problem: b.problem })),
    durationMs,
  };
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * A command that failed decoding but names this satellite and carries an id: what to answer
 * (COMMAND_UNKNOWN for a name this version lacks, else COMMAND_INVALID with the decoder's reason).
 * Undefined when nothing can be answered (not JSON, no id, another satellite's).
 */
export function refusal(payload: Buffer, satelliteId: string, reason: string): { id: string; name: string; code: string; message: string } | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { type, id, name, satelliteId: sid } = doc as Record<string, unknown>;
  if (type !== 'command' || sid !== satelliteId || typeof id !== 'string' || !ID.test(id)) return undefined;
  const shown = typeof name === 'string' && NAME.test(name) ? name : 'invalid';
  if (typeof name === 'string' && !isCommandName(name)) {
    return { id, name: shown, code: COMMAND_UNKNOWN, message: `this satellite does not know the command "${shown}" (it runs ${COMMAND_NAMES.join(', ')}); upgrade it to use this command` };
  }
  return { id, name: shown, code: COMMAND_INVALID, message: `command refused: ${reason}` };
}
