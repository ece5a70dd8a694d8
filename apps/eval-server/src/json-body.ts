/**
 * The JSON body parser: refuses nesting deeper than MAX_JSON_DEPTH before parsing (deeply
 * nested bodies used to overflow the stack of the parser's and validator's recursion: a 500
 * instead of a 400), then refuses object keys that name built-in properties of JavaScript
 * objects (`__proto__`, `constructor`, `toString`, ...) anywhere in the body: stored in a
 * config and read back by a client, they would shadow or replace what every object has.
 */

export const MAX_JSON_DEPTH = 64;

const RESERVED_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype).concat('prototype'));

export class JsonBodyError extends Error {
  readonly statusCode = 400;
}

/** Deepest nesting of arrays and objects in `text`, stopping once past `limit`. */
export function nestingDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return deepest;
}

function checkKeys(value: unknown, path: string): void {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkKeys(v, `${path}/${i}`);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      if (RESERVED_KEYS.has(key)) throw new JsonBodyError(`${path}/${key}: the key '${key}' is not allowed (it names a built-in property of JavaScript objects)`);
      checkKeys((value as Record<string, unknown>)[key], `${path}/${key}`);
    }
  }
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new JsonBodyError('the body is empty; send a JSON document');
  if (nestingDepth(text) > MAX_JSON_DEPTH) throw new JsonBodyError(`the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new JsonBodyError(`the body is not valid JSON: ${(err as Error).message}`);
  }
  checkKeys(value, 'body');
  return value;
}
