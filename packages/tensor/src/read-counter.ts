/**
 * Counting device→host reads. A training step that reads a tensor back to the host
 * synchronously stalls a GPU (and fails on webgpu in Node); one that reads asynchronously
 * still waits for the device. `countReads` wraps the active backend while `fn` runs and
 * reports every read, with where it came from, so a test can hold a step to "no reads but
 * the logged loss".
 *
 * What counts as a read depends on where the backend keeps tensors:
 * - a GPU backend (webgpu): every call of the backend's `read`/`readSync` for data that is
 *   on the device, whoever makes it (user code, an op, a kernel);
 * - a CPU-memory backend (`cpu`, `kiln-native`): every read a tensor method asks the engine
 *   for (`data`, `dataSync`, `array`, `arraySync`, `buffer`, `bufferSync`, `print`), which
 *   is what would be a device read on a GPU backend. Kernels reading their inputs' host
 *   arrays are not reads.
 */
import { isHostMemoryBackend } from './host-array.js';
import { tf } from './tf.js';

export interface ReadRecord {
  kind: 'sync' | 'async';
  /** Shape of the tensor read. */
  shape: number[];
  /** The first stack frames outside tfjs, to find the reading code. */
  site: string;
}

export interface ReadCount {
  /** Blocking reads (`dataSync`, `arraySync`, a backend `readSync`). */
  sync: number;
  /** Awaited reads (`data`, `array`, a backend `read`). */
  async: number;
  /** Each read, in order. */
  reads: ReadRecord[];
}

type ReadSync = (dataId: object) => unknown;
type ReadAsync = (dataId: object) => Promise<unknown>;
interface Readable {
  readSync: ReadSync;
  read: ReadAsync;
}
interface DataInfo {
  shape?: number[];
  values?: unknown;
  resource?: unknown;
}

function callSite(): string {
  // Lines 1-3 are this function, `record` and the wrapped read; then come tfjs and the caller.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40; // tfjs's own frames come first
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const frames = stack.split('\n').slice(4);
  const outside = frames.filter((f) => !/node_modules|node:internal|\(native\)/.test(f));
  return outside
    .slice(0, 3)
    .map((f) => f.trim().replace(/^at /, ''))
    .join(' < ');
}

/** Where a GPU backend keeps a tensor's bookkeeping (webgpu: `tensorMap`). */
function deviceInfo(backend: object, dataId: object): DataInfo | undefined {
  const map = (backend as { tensorMap?: { get(id: object): DataInfo | undefined } }).tensorMap;
  return map?.get(dataId);
}

/**
 * Runs `fn` and counts the device→host reads it makes on the active backend (see the
 * module comment for what counts). Reads of other backends are not seen.
 */
export async function countReads<T>(fn: () => T | Promise<T>): Promise<{ result: T; count: ReadCount }> {
  const count: ReadCount = { sync: 0, async: 0, reads: [] };
  const backend = tf.backend() as unknown as Readable & object;
  const onHost = isHostMemoryBackend(backend);
  // The engine for CPU-memory backends (tensor methods go through it), the backend itself
  // for GPU ones (kernels call it directly).
  const target = (onHost ? tf.engine() : backend) as unknown as Readable;
  const own = { readSync: Object.hasOwn(target, 'readSync'), read: Object.hasOwn(target, 'read') };
  const { readSync, read } = target;
  const tensorInfo = (tf.engine() as unknown as { state: { tensorInfo: { get(id: object): { shape?: number[] } | undefined } } }).state.tensorInfo;
  const shapeOf = (dataId: object): number[] => tensorInfo.get(dataId)?.shape ?? deviceInfo(backend, dataId)?.shape ?? [];
  const counts = (dataId: object): boolean => {
    if (onHost) return true;
    const info = deviceInfo(backend, dataId);
    // webgpu serves data that is already on the host (uploaded, not yet used on the device,
    // or read before) without a transfer.
    return info === undefined || info.values == null;
  };
  const record = (kind: 'sync' | 'async', dataId: object) => {
    count[kind]++;
    count.reads.push({ kind, shape: shapeOf(dataId), site: callSite() });
  };
  target.readSync = function (this: unknown, dataId: object) {
    if (counts(dataId)) record('sync', dataId);
    return readSync.call(this, dataId);
  };
  target.read = function (this: unknown, dataId: object) {
    if (counts(dataId)) record('async', dataId);
    return read.call(this, dataId);
  };
  try {
    const result = await fn();
    return { result, count };
  } finally {
    const t = target as unknown as Record<string, unknown>;
    if (own.readSync) t.readSync = readSync;
    else delete t.readSync;
    if (own.read) t.read = read;
    else delete t.read;
  }
}

/** One line per read, for an assertion message. */
export function describeReads(count: ReadCount): string {
  if (count.reads.length === 0) return 'no reads';
  return count.reads.map((r) => `${r.kind} read of [${r.shape.join(', ')}] at ${r.site}`).join('\n');
}
