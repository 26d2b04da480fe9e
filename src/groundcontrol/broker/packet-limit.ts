import { Transform, type TransformCallback } from 'node:stream';
import { SatelliteError } from '../../lib/errors.ts';

/**
 * Passes MQTT bytes through unchanged while reading each fixed header [MQTT-2.2]: a packet whose
 * Remaining Length exceeds maxBytes fails the stream before its body is buffered anywhere (aedes'
 * parser has no size limit of its own: it keeps every byte of a declared length until the packet is
 * complete). The limit can be raised once the client has logged in (ConnectionGuard).
 */
export class PacketLimit extends Transform {
  #max: number;
  /** Body bytes of the current packet still to pass; -1 while reading a fixed header. */
  #skip = -1;
  #headerBytes = 0;
  #length = 0;
  #multiplier = 1;

  constructor(maxBytes: number) {
    super();
    this.#max = maxBytes;
  }

  /** Applies from the next fixed header on. */
  set maxBytes(n: number) {
    this.#max = n;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
        if (this.#skip === 0) this.#skip = -1;
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.#headerBytes++ === 0) continue; // packet type and flags
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      if (byte & 0x80) {
        if (this.#headerBytes > 5) return done(new SatelliteError('PACKET_MALFORMED', 'malformed MQTT remaining length'));
        continue;
      }
      if (this.#length > this.#max) return done(new SatelliteError('PACKET_TOO_LARGE', `MQTT packet of ${this.#length} bytes exceeds ${this.#max}`));
      this.#skip = this.#length === 0 ? -1 : this.#length;
      this.#headerBytes = 0;
      this.#length = 0;
      this.#multiplier = 1;
    }
    done(null, chunk);
  }
}
