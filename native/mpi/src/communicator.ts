/**
 * An MPI communicator with the collectives Kiln's parallel training needs. It has the
 * shape of `@kiln/moe-core`'s `Communicator` (allGather, allToAllV, allReduce, barrier),
 * so an expert-parallel layer runs over MPI unchanged, plus broadcast, all-to-all of equal
 * chunks, and `subgroups`: sub-communicators from rank lists (e.g. the groups of
 * `RankGenerator.getRanks`).
 *
 * Every rank must call the same collectives in the same order. Inputs are read by MPI's
 * thread while a call is pending: do not modify them until its promise settles.
 */
import type { MpiBinding } from './binding.js';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';
type Typed = Float32Array | Int32Array;

/** What to do when a collective fails: reject its promise, or end the whole job at once. */
export type OnCollectiveError = 'throw' | 'abort';

export class MpiCommunicator {
  constructor(
    private readonly binding: MpiBinding,
    /** The addon's handle; 0 is MPI_COMM_WORLD. */
    readonly handle: number,
    readonly rank: number,
    readonly size: number,
    private readonly onError: OnCollectiveError,
  ) {}

  private async guard<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (this.onError === 'abort') {
        // mpirun tears every rank down when one aborts: a clear message, then no hang.
        this.binding.abort(1, `${(err as Error).message} [rank ${this.rank} of communicator ${this.handle}, during ${what}]`);
      }
      throw err;
    }
  }

  /** Element-wise reduction over the ranks; `avg` divides the sum by the group size (floats only). */
  async allReduce<T extends Typed>(data: T, op: ReduceOp = 'sum'): Promise<T> {
    if (op === 'avg' && !(data instanceof Float32Array)) throw new TypeError('allReduce: avg needs a Float32Array');
    const out = await this.guard('allReduce', () => this.binding.allreduce(this.handle, data, op === 'avg' ? 'sum' : op));
    if (op === 'avg') for (let i = 0; i < out.length; i++) out[i]! /= this.size;
    return out;
  }

  /** Each rank's `data` (lengths may differ), indexed by rank. */
  async allGather<T extends Typed>(data: T): Promise<T[]> {
    const { data: flat, counts } = await this.guard('allGather', () => this.binding.allgatherv(this.handle, data));
    return splitByCounts(flat, counts);
  }

  /** `chunks[r]` goes to rank r (ragged allowed); entry r of the result came from rank r. */
  async allToAllV<T extends Typed>(chunks: T[]): Promise<T[]> {
    if (chunks.length !== this.size) {
      throw new RangeError(`allToAllV: got ${chunks.length} chunks for a communicator of ${this.size} ranks`);
    }
    const counts = Int32Array.from(chunks, (c) => c.length);
    const flat = concat(chunks);
    const { data, counts: received } = await this.guard('allToAllV', () => this.binding.alltoallv(this.handle, flat, counts));
    return splitByCounts(data, received);
  }

  /** All-to-all of equal chunks: `data` holds `size` chunks back to back. */
  async allToAll<T extends Typed>(data: T): Promise<T> {
    if (data.length % this.size !== 0) throw new RangeError(`allToAll: ${data.length} elements do not split into ${this.size} equal chunks`);
    const counts = new Int32Array(this.size).fill(data.length / this.size);
    return (await this.guard('allToAll', () => this.binding.alltoallv(this.handle, data, counts))).data;
  }

  /** `root`'s data on every rank (every rank passes an array of the same length). */
  broadcast<T extends Typed>(data: T, root = 0): Promise<T> {
    return this.guard('broadcast', () => this.binding.broadcast(this.handle, data, root));
  }

  barrier(): Promise<void> {
    return this.guard('barrier', () => this.binding.barrier(this.handle));
  }

  /**
   * Splits this communicator into sub-communicators from rank lists (e.g.
   * `RankGenerator.getRanks('dp')`), with `MPI_Comm_split`: a collective that every rank
   * calls with the same groups. Resolves to the communicator of the group this rank belongs
   * to (ranked in list order), or null when it is in none. The groups are compared across
   * ranks first (one all-gather), so a rank that passed different ones is named instead of
   * pairing collectives of different groups. `@kiln/moe-core`'s `Communicator.subgroups`.
   */
  async subgroups(groups: readonly (readonly number[])[]): Promise<MpiCommunicator | null> {
    const fingerprint = Int32Array.from([groups.length, ...groups.flatMap((g) => [g.length, ...g])]);
    const all = await this.allGather(fingerprint);
    const differ = all.flatMap((f, r) => (f.length === fingerprint.length && f.every((v, i) => v === fingerprint[i]) ? [] : [r]));
    if (differ.length > 0) {
      const err = new Error(`subgroups: rank ${this.rank} and rank(s) ${differ.join(', ')} passed different groups (${JSON.stringify(groups)} here)`);
      if (this.onError === 'abort') this.binding.abort(1, err.message);
      throw err;
    }
    const members = Int32Array.from(groups.flat());
    const sizes = Int32Array.from(groups, (g) => g.length);
    const made = await this.guard('subgroups', () => this.binding.split(this.handle, members, sizes));
    return made.comm < 0 ? null : new MpiCommunicator(this.binding, made.comm, made.rank, made.size, this.onError);
  }
}

function concat<T extends Typed>(parts: T[]): T {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const first = parts[0];
  const out = (first instanceof Int32Array ? new Int32Array(total) : new Float32Array(total)) as T;
  let at = 0;
  for (const p of parts) {
    if (first && p.constructor !== first.constructor) throw new TypeError('allToAllV: all chunks must have the same typed-array type');
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function splitByCounts<T extends Typed>(flat: T, counts: Int32Array): T[] {
  const out: T[] = [];
  let at = 0;
  for (const n of counts) {
    out.push(flat.subarray(at, at + n) as T);
    at += n;
  }
  return out;
}
