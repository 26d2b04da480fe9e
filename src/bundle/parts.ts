import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/**
 * Writes one blob as parts of at most `partSize` bytes (`<path>.000`, `.001`, ...: FAT32 holds no
 * file of 4 GiB), hashing each part as it streams through. Parts are written as `<part>.tmp` and
 * renamed by commit(), once the whole blob checked out.
 */
export class PartWriter extends Writable {
  readonly #path: string;
  readonly #partSize: number;
  readonly parts: Array<{ path: string; digest: string; size: number }> = [];
  #fh: FileHandle | undefined;
  #hash: Hash | undefined;
  #size = 0;

  static partPath(path: string, index: number): string {
    return `${path}.${String(index).padStart(3, '0')}`;
  }

  constructor(path: string, partSize: number) {
    super();
    this.#path = path;
    this.#partSize = partSize;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeAll(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#closePart().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fh = this.#fh;
    this.#fh = undefined;
    (fh ? fh.close() : Promise.resolve()).then(() => cb(err), () => cb(err));
  }

  async #writeAll(chunk: Buffer): Promise<void> {
    while (chunk.length > 0) {
      if (!this.#fh) {
        this.#fh = await open(`${PartWriter.partPath(this.#path, this.parts.length)}.tmp`, 'w');
        this.#hash = createHash('sha256');
        this.#size = 0;
      }
      const take = chunk.subarray(0, this.#partSize - this.#size);
      await this.#fh.writeFile(take); // writes it all (write() may write part)
      this.#hash!.update(take);
      this.#size += take.length;
      chunk = chunk.subarray(take.length);
      if (this.#size === this.#partSize) await this.#closePart();
    }
  }

  async #closePart(): Promise<void> {
    if (!this.#fh) return;
    await this.#fh.sync();
    await this.#fh.close();
    this.#fh = undefined;
    this.parts.push({ path: PartWriter.partPath(this.#path, this.parts.length), digest: `sha256:${this.#hash!.digest('hex')}`, size: this.#size });
  }

  async commit(): Promise<void> {
    for (const p of this.parts) await rename(`${p.path}.tmp`, p.path);
  }

  async discard(): Promise<void> {
    for (let i = 0; i <= this.parts.length; i++) await rm(`${PartWriter.partPath(this.#path, i)}.tmp`, { force: true });
  }
}
