/**
 * Deterministic reuse of kiln-native's output arrays.
 *
 * Every tfjs kernel returns a fresh output. @kiln/native's allocF32 pool already avoids
 * page-faulting fresh memory, but it can only reuse a block after V8 has collected its
 * array, so a training step that drops ~100 MB of outputs still makes V8 run several full
 * collections per step, and a synchronous stretch of kernels gets none of its blocks back.
 * This recycler hands an output's memory back the moment tfjs disposes its tensor, which is
 * safe only when nothing outside the backend can still see the array. An array is
 * therefore recycled only if all of these held for its whole life:
 *  - it was allocated here for a kernel output (never a user's array);
 *  - it was registered for exactly one tensor, as itself (a second tensor on the same
 *    array, or another view of its memory, as tfjs-cpu's slice makes, rules it out);
 *  - it was never returned by readSync/read as itself: dataSync(), data(), arraySync(),
 *    bufferSync() and moving a tensor to another backend all go through those, so an
 *    array a user might hold is never reused (it is left to the garbage collector instead).
 * Anything else simply falls back to garbage collection, as without the recycler.
 *
 * Memory is kept in size classes, 8 per power of two (`capacityFor`), not by exact length:
 * a point-cloud model's shapes change from step to step (grid sampling and cropping leave a
 * different number of points each time), so its outputs are rarely the exact length of any
 * array freed before. Every block is allocated at its class's capacity, and `take(n)` hands
 * out a Float32Array of length n at offset 0 of a free block of n's class (at most 12.5 %
 * of it unused), or of one of the next `SPARE_CLASSES` classes up when its own has none.
 * Such an array's `.buffer` is longer than the array itself: the backend's readSync gives
 * callers a copy of those (native-backend.ts), because some code (tfjs-core's
 * `Tensor.bytes()`, for one) reads a typed array's whole buffer.
 *
 * The free blocks are bounded by `limitBytes`: when a release would exceed it, the blocks
 * freed longest ago go first (to the garbage collector), so a class that is never asked for
 * again does not hold memory for long.
 */

enum State {
  /** Handed out by take(), not registered yet. */
  Fresh = 0,
  /** Registered for one tensor as itself, never read out. */
  Owned = 1,
  /** Seen outside the one tensor: never recycled. */
  Escaped = 2,
  /** On a free list. */
  Free = 3,
}

interface Entry {
  /** The whole block: `capacityFor(n)` elements over the whole buffer. */
  block: Float32Array;
  /** What take() handed out last: `block` itself, or a view of its first n elements. */
  array: Float32Array;
  state: State;
  /** Neighbours in the eviction order while Free (older, newer). */
  older: Entry | undefined;
  newer: Entry | undefined;
}

export interface RecyclerStats {
  /** Bytes on the free lists (whole blocks). */
  cachedBytes: number;
  limitBytes: number;
  /** Outputs served from the free lists / allocated anew. */
  hits: number;
  misses: number;
  /** Blocks returned to the free lists when their tensor was disposed. */
  recycled: number;
  /** Disposed arrays not recycled because they had escaped (or been shared). */
  skipped: number;
  /** Free blocks dropped, oldest first, to stay within limitBytes. */
  evicted: number;
}

/**
 * The capacity (in elements) of the size class that serves arrays of n elements: n rounded
 * up to a multiple of 1/16 of the next power of two, i.e. 8 classes per power of two and at
 * most 12.5 % unused (exact up to 16 elements). Above 8,192 elements the classes are whole
 * 4 KiB pages and coincide with @kiln/native's allocF32 classes, so a block is one pool block.
 */
export function capacityFor(n: number): number {
  if (n <= 16) return n;
  const top = 2 ** Math.ceil(Math.log2(n));
  const step = top / 16;
  return Math.ceil(n / step) * step;
}

/**
 * How many classes above its own a request may take a free block from (at most about 30 %
 * of such a block unused) before a new block is allocated.
 */
const SPARE_CLASSES = 2;

export class OutputRecycler {
  /** Keyed by the ArrayBuffer so views and re-registrations are recognized. */
  private readonly entries = new WeakMap<ArrayBufferLike, Entry>();
  /**
   * Free blocks by capacity, in the order they were freed: reused from the end (the most
   * recently freed, still warm in cache), evicted from the front.
   */
  private readonly free = new Map<number, Entry[]>();
  /** Every free block, oldest release first, linked through `older`/`newer`: eviction is O(1). */
  private oldest: Entry | undefined;
  private newest: Entry | undefined;
  private readonly counters = { cachedBytes: 0, hits: 0, misses: 0, recycled: 0, skipped: 0, evicted: 0 };

  /** `allocate(capacity)`: a new block of exactly that many elements. */
  constructor(
    private readonly allocate: (capacity: number) => Float32Array,
    public limitBytes = 2 ** 30,
  ) {}

  /** An array of n elements (contents undefined) for a kernel to fill. */
  take(n: number): Float32Array {
    const capacity = capacityFor(n);
    let entry = this.free.get(capacity)?.pop();
    // Else a block of one of the next classes up: lengths that drift both ways then settle on
    // the blocks of the larger ones instead of keeping a set of blocks for every class.
    for (let c = capacity, up = 0; !entry && up < SPARE_CLASSES && c > 16; up++) {
      c = capacityFor(c + 1);
      entry = this.free.get(c)?.pop();
    }
    if (entry) {
      this.unlink(entry);
      this.counters.cachedBytes -= entry.block.byteLength;
      this.counters.hits++;
      entry.state = State.Fresh;
      if (entry.array.length !== n) entry.array = n === entry.block.length ? entry.block : new Float32Array(entry.block.buffer, 0, n);
      return entry.array;
    }
    this.counters.misses++;
    const block = this.allocate(capacity);
    const array = n === capacity ? block : new Float32Array(block.buffer, block.byteOffset, n);
    // Only whole-buffer blocks can be recognized by their buffer.
    if (block.byteOffset === 0 && block.byteLength === block.buffer.byteLength) {
      this.entries.set(block.buffer, { block, array, state: State.Fresh, older: undefined, newer: undefined });
    }
    return array;
  }

  /** The backend stored `values` for a tensor (write, move). */
  registered(values: unknown): void {
    const entry = this.entryOf(values);
    if (!entry) return;
    entry.state = entry.array === values && entry.state === State.Fresh ? State.Owned : State.Escaped;
  }

  /** `values` left the backend (readSync, read): never reuse it. */
  escaped(values: unknown): void {
    const entry = this.entryOf(values);
    if (entry) entry.state = State.Escaped;
  }

  /**
   * Whether `values` is an array this recycler handed out as a view of a longer block (its
   * `.buffer` holds more than its elements).
   */
  isPartialView(values: unknown): boolean {
    const entry = this.entryOf(values);
    return entry !== undefined && entry.array === values && entry.array !== entry.block;
  }

  /** The tensor that owned `values` was disposed and its data deleted. */
  released(values: unknown): void {
    const entry = this.entryOf(values);
    if (!entry) return;
    if (entry.array !== values || entry.state !== State.Owned || entry.block.byteLength > this.limitBytes) {
      this.counters.skipped++;
      entry.state = State.Escaped;
      return;
    }
    entry.state = State.Free;
    let list = this.free.get(entry.block.length);
    if (!list) {
      list = [];
      this.free.set(entry.block.length, list);
    }
    list.push(entry);
    entry.older = this.newest;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
    this.counters.cachedBytes += entry.block.byteLength;
    this.counters.recycled++;
    this.evictOldest();
  }

  /** Drops every cached block (the garbage collector frees them). */
  clear(): void {
    for (let e = this.oldest; e; ) {
      const next = e.newer;
      e.state = State.Escaped;
      e.older = undefined;
      e.newer = undefined;
      e = next;
    }
    this.free.clear();
    this.oldest = undefined;
    this.newest = undefined;
    this.counters.cachedBytes = 0;
  }

  stats(): RecyclerStats {
    return { ...this.counters, limitBytes: this.limitBytes };
  }

  /**
   * Drops the blocks released longest ago until the cache fits in limitBytes. The oldest free
   * block is also the oldest of its class, i.e. the front of its free list.
   */
  private evictOldest(): void {
    while (this.counters.cachedBytes > this.limitBytes && this.oldest) {
      const entry = this.oldest;
      this.unlink(entry);
      const list = this.free.get(entry.block.length)!;
      list.shift();
      if (list.length === 0) this.free.delete(entry.block.length);
      entry.state = State.Escaped;
      this.counters.cachedBytes -= entry.block.byteLength;
      this.counters.evicted++;
    }
  }

  /** Takes a free entry out of the eviction order. */
  private unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }

  private entryOf(values: unknown): Entry | undefined {
    if (!(values instanceof Float32Array)) return undefined;
    return this.entries.get(values.buffer);
  }
}
