/** Small helpers shared by the text-header formats (PLY, PCD, S3DIS). */

/** A format error that names the file and, when known, the line or field. */
export class PointCloudFormatError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly line?: number,
  ) {
    super(`${file}${line !== undefined ? `: line ${line}` : ''}: ${detail}`);
    this.name = 'PointCloudFormatError';
  }
}

/** Reads one '\n'-terminated line as latin1 from `bytes` at `pos`; null at the end. */
export function readLine(bytes: Uint8Array, pos: number): { text: string; next: number } | null {
  if (pos >= bytes.length) return null;
  let end = pos;
  while (end < bytes.length && bytes[end] !== 0x0a) end++;
  let stop = end;
  if (stop > pos && bytes[stop - 1] === 0x0d) stop--; // tolerate CRLF headers
  let text = '';
  for (let i = pos; i < stop; i++) text += String.fromCharCode(bytes[i]!);
  return { text, next: end < bytes.length ? end + 1 : end };
}

/**
 * Iterates the whitespace-separated number tokens of a text body line by line without building
 * per-line arrays: calls `onLine(lineNumber, start, end)` for each non-empty line so the caller
 * can parse tokens with `parseTokens`.
 */
export function forEachLine(
  text: string,
  firstLineNumber: number,
  onLine: (line: number, start: number, end: number) => boolean | undefined,
): void {
  let pos = 0;
  let line = firstLineNumber;
  const n = text.length;
  while (pos < n) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    let stop = end;
    if (stop > pos && text.charCodeAt(stop - 1) === 13) stop--;
    // skip blank lines
    let k = pos;
    while (k < stop && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    if (k < stop && onLine(line, pos, stop) === false) return;
    pos = end + 1;
    line++;
  }
}

/** Splits text[start, end) into numbers; returns how many were written into out (up to out.length + 1). */
export function parseTokens(text: string, start: number, end: number, out: Float64Array): number {
  let count = 0;
  let i = start;
  while (i < end) {
    let c = text.charCodeAt(i);
    while (i < end && (c === 32 || c === 9)) c = text.charCodeAt(++i);
    if (i >= end) break;
    const s = i;
    while (i < end && c !== 32 && c !== 9) c = text.charCodeAt(++i);
    if (count < out.length) out[count] = Number(text.slice(s, i));
    else if (count === out.length) return count + 1; // too many; report only that
    count++;
  }
  return count;
}

/** Node's fs, loaded lazily so the parsers also work on bytes in a browser. */
export async function readBytes(path: string): Promise<Uint8Array> {
  const fs = await import('node:fs/promises');
  return new Uint8Array(await fs.readFile(path));
}
