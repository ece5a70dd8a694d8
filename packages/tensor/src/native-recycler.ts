/**
 * Deterministic reuse of kiln-native's large output arrays.
 *
 * Every tfjs kernel returns a fresh output. @kiln/native's allocF32 pool already avoids
 * page-faulting fresh memory, but it can only reuse a block after V8 has collected its
 * array, so a training step that drops ~100 MB of outputs still makes V8 run several full
 * collections per step. This recycler hands an output back the moment tfjs disposes its
 * tensor, which is safe only when nothing outside the backend can still see the array. An
 * array is therefore recycled only if all of these held for its whole life:
 *  - it was allocated here for a kernel output (never a user's array);
 *  - it was registered for exactly one tensor, as itself (a second tensor on the same
 *    array, or a subarray view of it, as tfjs-cpu's slice makes, rules it out);
 *  - it was never returned by readSync/read: dataSync(), data(), arraySync(), bufferSync()
 *    and moving a tensor to another backend all go through those, so an array a user
 *    might hold is never reused (it is left to the garbage collector instead).
 * Anything else simply falls back to garbage collection, as without the recycler.
 *
 * The free arrays are bounded by `limitBytes`: when a release would exceed it, the arrays
 * freed longest ago go first (to the garbage collector). A model whose shapes change from
 * step to step (point clouds of varying size) would otherwise fill the cache with sizes it
 * never asks for again, and V8, which counts those bytes, would collect ever more often.
 */

enum State {
  /** Allocated, not registered yet. */
  Fresh = 0,
  /** Registered for one tensor as itself, never read out. */
  Owned = 1,
  /** Seen outside the one tensor: never recycled. */
  Escaped = 2,
  /** On a free list. */
  Free = 3,
}

interface Entry {
  array: Float32Array;
  state: State;
  /** Which release put it on its free list (its place in the eviction order). */
  released: number;
}

export interface RecyclerStats {
  /** Bytes on the free lists. */
  cachedBytes: number;
  limitBytes: number;
  /** Outputs served from the free lists / allocated anew. */
  hits: number;
  misses: number;
  /** Arrays returned to the free lists when their tensor was disposed. */
  recycled: number;
  /** Disposed arrays not recycled because they had escaped (or been shared). */
  skipped: number;
  /** Free arrays dropped, oldest first, to stay within limitBytes. */
  evicted: number;
}

export class OutputRecycler {
  /** Keyed by the ArrayBuffer so views and re-registrations are recognized. */
  private readonly entries = new WeakMap<ArrayBufferLike, Entry>();
  /** Free arrays by length, most recently freed last (reused first: warm in cache). */
  private readonly free = new Map<number, Entry[]>();
  /**
   * Every release in order, oldest first (from `head`), for eviction. An entry taken (or
   * released again) since no longer matches its slot and is skipped when reached: eviction
   * and reuse are both O(1).
   */
  private order: { entry: Entry; release: number }[] = [];
  private head = 0;
  private releases = 0;
  private readonly counters = { cachedBytes: 0, hits: 0, misses: 0, recycled: 0, skipped: 0, evicted: 0 };

  constructor(
    private readonly allocate: (n: number) => Float32Array,
    public limitBytes = 2 ** 30,
  ) {}

  /** An array of n elements (contents undefined) for a kernel to fill. */
  take(n: number): Float32Array {
    const list = this.free.get(n);
    let entry = list?.pop();
    while (entry && entry.state !== State.Free) entry = list?.pop(); // evicted meanwhile
    if (entry) {
      this.counters.cachedBytes -= entry.array.byteLength;
      this.counters.hits++;
      entry.state = State.Fresh;
      return entry.array;
    }
    this.counters.misses++;
    const array = this.allocate(n);
    // Only whole-buffer arrays can be recognized by their buffer.
    if (array.byteOffset === 0 && array.byteLength === array.buffer.byteLength) {
      this.entries.set(array.buffer, { array, state: State.Fresh, released: -1 });
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

  /** The tensor that owned `values` was disposed and its data deleted. */
  released(values: unknown): void {
    const entry = this.entryOf(values);
    if (!entry) return;
    if (entry.array !== values || entry.state !== State.Owned || entry.array.byteLength > this.limitBytes) {
      this.counters.skipped++;
      entry.state = State.Escaped;
      return;
    }
    entry.state = State.Free;
    let list = this.free.get(entry.array.length);
    if (!list) {
      list = [];
      this.free.set(entry.array.length, list);
    }
    list.push(entry);
    entry.released = this.releases++;
    this.order.push({ entry, release: entry.released });
    this.counters.cachedBytes += entry.array.byteLength;
    this.counters.recycled++;
    this.evictOldest();
  }

  /** Drops every cached array (the garbage collector frees them). */
  clear(): void {
    for (const list of this.free.values()) for (const entry of list) entry.state = State.Escaped;
    this.free.clear();
    this.order = [];
    this.head = 0;
    this.counters.cachedBytes = 0;
  }

  stats(): RecyclerStats {
    return { ...this.counters, limitBytes: this.limitBytes };
  }

  /** Frees the arrays released longest ago until the cache fits in limitBytes. */
  private evictOldest(): void {
    while (this.counters.cachedBytes > this.limitBytes && this.head < this.order.length) {
      const { entry, release } = this.order[this.head++]!;
      if (entry.state !== State.Free || entry.released !== release) continue; // reused since, or already gone
      entry.state = State.Escaped; // its free-list slot is skipped by take()
      this.counters.cachedBytes -= entry.array.byteLength;
      this.counters.evicted++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  private entryOf(values: unknown): Entry | undefined {
    if (!(values instanceof Float32Array)) return undefined;
    return this.entries.get(values.buffer);
  }
}
