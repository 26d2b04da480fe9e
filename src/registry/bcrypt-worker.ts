// Runs in a worker thread (see password-verifier.ts): bcrypt in JavaScript costs tens of
// milliseconds of CPU per check, which must never block the registry's event loop.
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

export type BcryptRequest = { id: number; op: 'compare'; password: string; hash: string } | { id: number; op: 'hash'; password: string; cost: number };
export type BcryptReply = { id: number; ok: boolean; hash?: string; error?: string };

parentPort?.on('message', (msg: BcryptRequest) => {
  try {
    const reply: BcryptReply =
      msg.op === 'compare'
        ? // bcryptjs accepts $2y$ (Apache's spelling of $2b$) as $2b$.
          { id: msg.id, ok: bcrypt.compareSync(msg.password, msg.hash.replace(/^\$2y\$/, '$2b$')) }
        : { id: msg.id, ok: true, hash: bcrypt.hashSync(msg.password, msg.cost) };
    parentPort!.postMessage(reply);
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: (err as Error).message } satisfies BcryptReply);
  }
});
