/**
 * LZF (liblzf by Marc Lehmann), the compression of PCD's binary_compressed. The stream is a
 * sequence of runs, each starting with a control byte c:
 *   c < 32           literal: the next c + 1 bytes are copied;
 *   c >= 32          back-reference: length L = c >> 5 (if 7, add the next byte), then
 *                    distance = ((c & 31) << 8) + next byte + 1; copy L + 2 bytes from
 *                    `distance` bytes back (the copy may overlap its own output).
 */

/** Decompresses `input` into exactly `outputLength` bytes; throws on a corrupt stream. */
export function lzfDecompress(input: Uint8Array, outputLength: number, what = 'LZF stream'): Uint8Array {
  const out = new Uint8Array(outputLength);
  let ip = 0;
  let op = 0;
  const inLen = input.length;
  while (ip < inLen) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (op + len > outputLength) throw new Error(`${what}: literal run overflows the declared size ${outputLength} at input byte ${ip - 1}`);
      if (ip + len > inLen) throw new Error(`${what}: literal run of ${len} bytes runs past the end of the input at byte ${ip - 1}`);
      out.set(input.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= inLen) throw new Error(`${what}: truncated back-reference length at input byte ${ip}`);
        len += input[ip++]!;
      }
      if (ip >= inLen) throw new Error(`${what}: truncated back-reference at input byte ${ip}`);
      const ref = op - ((ctrl & 0x1f) << 8) - input[ip++]! - 1;
      len += 2;
      if (ref < 0) throw new Error(`${what}: back-reference points ${op - ref} bytes back, before the start of the output`);
      if (op + len > outputLength) throw new Error(`${what}: back-reference overflows the declared size ${outputLength}`);
      // Byte by byte: the source may overlap the bytes being written (run-length copies).
      for (let k = 0; k < len; k++) out[op + k] = out[ref + k]!;
      op += len;
    }
  }
  if (op !== outputLength) throw new Error(`${what}: decompressed ${op} bytes, header declares ${outputLength}`);
  return out;
}

const HASH_LOG = 14;
const HASH_SIZE = 1 << HASH_LOG;
const MAX_LIT = 32;
const MAX_OFF = 1 << 13;
const MAX_REF = (1 << 8) + (1 << 3);

/**
 * Compresses with a greedy hash of 3-byte prefixes (liblzf's scheme). Output is valid LZF for
 * any decoder; it need not equal liblzf's bytes. Incompressible data grows by 1 byte per 32.
 */
export function lzfCompress(input: Uint8Array): Uint8Array {
  const n = input.length;
  const out = new Uint8Array(n + Math.ceil(n / MAX_LIT) + 16);
  const table = new Int32Array(HASH_SIZE).fill(-1);
  let ip = 0;
  let op = 1; // room for the first literal's control byte
  let lit = 0;
  const flushLit = (): void => {
    out[op - lit - 1] = lit - 1;
  };
  while (ip < n) {
    let matched = false;
    if (ip + 2 < n) {
      const v = (input[ip]! << 16) | (input[ip + 1]! << 8) | input[ip + 2]!;
      const h = (Math.imul(v, 2654435761) >>> (32 - HASH_LOG)) & (HASH_SIZE - 1);
      const ref = table[h]!;
      table[h] = ip;
      const off = ip - ref - 1;
      if (
        ref >= 0 &&
        off < MAX_OFF &&
        input[ref] === input[ip] &&
        input[ref + 1] === input[ip + 1] &&
        input[ref + 2] === input[ip + 2]
      ) {
        let len = 3;
        const maxLen = Math.min(MAX_REF, n - ip);
        while (len < maxLen && input[ref + len] === input[ip + len]) len++;
        // close the pending literal run (or drop its unused control byte)
        if (lit > 0) flushLit();
        else op--;
        lit = 0;
        const l = len - 2;
        if (l < 7) {
          out[op++] = (l << 5) | (off >> 8);
        } else {
          out[op++] = (7 << 5) | (off >> 8);
          out[op++] = l - 7;
        }
        out[op++] = off & 0xff;
        ip += len;
        op++; // control byte of the next literal run
        matched = true;
      }
    }
    if (!matched) {
      out[op++] = input[ip++]!;
      lit++;
      if (lit === MAX_LIT) {
        flushLit();
        lit = 0;
        op++;
      }
    }
  }
  if (lit > 0) flushLit();
  else op--;
  return out.slice(0, op);
}
