import { tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';
import { reduceArrays } from '../comm/communicator.js';
import { type PermutePlan, type Permuter, permuteRows } from './permute.js';
import { type CommStep, type LocalStep, joinRows, splitRows } from './staged.js';

/** The six named phases of a token dispatcher, in pipeline order (Megatron's names). */
export const DISPATCHER_PHASES = [
  'dispatchPreprocess',
  'tokenDispatch',
  'dispatchPostprocess',
  'combinePreprocess',
  'tokenCombine',
  'combinePostprocess',
] as const;
export type DispatcherPhase = (typeof DISPATCHER_PHASES)[number];

/**
 * What the experts stage needs from a dispatcher: the rows for this rank's local experts in
 * expert-contiguous order and their group sizes.
 */
export interface LocalRouting {
  /** [tokens, totalExperts] 0/1 routing map of this rank's tokens (after drop/pad). */
  routingMap: Uint8Array;
  numTokens: number;
  /** Builds a permutation plan over `numTokens` rows for experts [offset, offset+count). */
  plan(routingMap: Uint8Array, numTokens: number, expertOffset: number, numExperts: number): PermutePlan;
}

/**
 * A token dispatcher over an expert-parallel group, as its six phases. Each phase is a step
 * of a StagedGraph: local phases are tf functions (differentiated by re-running them), the
 * two communication phases are asynchronous with explicit adjoints. Value names:
 * in `hidden`, `probs`; dispatch out `expertInput` (with `rowsPerLocalExpert()` group sizes);
 * combine in `expertOutput`, out `routedOutput` ([tokens, H] on this rank).
 */
export interface TokenDispatcher {
  readonly kind: 'alltoall' | 'allgather';
  /** Must be called (after routing, before the graph runs) with this micro-batch's routing. */
  setRouting(routing: LocalRouting): void;
  /** Group sizes of `expertInput` per local expert (known once tokenDispatch has run). */
  rowsPerLocalExpert(): Int32Array;
  dispatchSteps(): (LocalStep | CommStep)[];
  combineSteps(): (LocalStep | CommStep)[];
}

abstract class DispatcherBase {
  protected routing: LocalRouting | null = null;
  protected localRows: Int32Array | null = null;
  constructor(
    protected readonly comm: Communicator,
    protected readonly permuter: Permuter,
    protected readonly numExperts: number,
    protected readonly hidden: number,
  ) {
    if (numExperts % comm.size !== 0) throw new Error(`token dispatcher: ${numExperts} experts do not divide over ${comm.size} ranks`);
  }
  get numLocal(): number {
    return this.numExperts / this.comm.size;
  }
  get firstLocal(): number {
    return this.comm.rank * this.numLocal;
  }
  setRouting(routing: LocalRouting): void {
    this.routing = routing;
    this.localRows = null;
  }
  rowsPerLocalExpert(): Int32Array {
    if (!this.localRows) throw new Error('rowsPerLocalExpert: tokenDispatch has not run yet');
    return this.localRows;
  }
  protected need(): LocalRouting {
    if (!this.routing) throw new Error('token dispatcher: setRouting was not called for this micro-batch');
    return this.routing;
  }
}

/**
 * Megatron's MoEAlltoAllTokenDispatcher. Every rank permutes its tokens into global-expert
 * order, sends each rank the rows of that rank's experts (all-to-all-v; the per-expert counts
 * travel first), regroups what it received from [source rank][local expert] to
 * [local expert][source rank] order for the grouped GEMM, and reverses all of it on combine;
 * the unpermute applies the routing probabilities.
 */
export class AllToAllDispatcher extends DispatcherBase implements TokenDispatcher {
  readonly kind = 'alltoall' as const;
  private plan: PermutePlan | null = null;
  /** Rows this rank sends to each rank, and receives from each rank. */
  private sendCounts: number[] = [];
  private recvCounts: number[] = [];
  /** counts[src][local expert] received. */
  private recvPerExpert: number[][] = [];
  private sortIndex: Int32Array | null = null;
  private unsortIndex: Int32Array | null = null;

  override setRouting(routing: LocalRouting): void {
    super.setRouting(routing);
    this.plan = null;
  }

  dispatchSteps(): (LocalStep | CommStep)[] {
    const preprocess: LocalStep = {
      kind: 'local',
      name: 'dispatchPreprocess',
      inputs: ['hidden'],
      outputs: ['permuted'],
      run: ([hidden]) => {
        const r = this.need();
        this.plan ??= r.plan(r.routingMap, r.numTokens, 0, this.numExperts);
        return [this.permuter.permute(hidden as tf.Tensor2D, this.plan)];
      },
    };
    const dispatch: CommStep = {
      kind: 'comm',
      name: 'tokenDispatch',
      inputs: ['permuted'],
      outputs: ['received'],
      forward: async ([permuted]) => {
        const plan = this.plan!;
        const size = this.comm.size;
        const L = this.numLocal;
        // counts first: every rank learns how many rows per local expert each source sends
        const countChunks = Array.from({ length: size }, (_, r) => Float32Array.from(plan.rowsPerExpert.slice(r * L, (r + 1) * L)));
        this.sendCounts = countChunks.map((c) => c.reduce((a, b) => a + b, 0));
        // counts and rows leave together (the rows' split is known locally), so both are in
        // flight while this rank computes the shared experts
        const chunks = await splitRows(permuted!, this.sendCounts);
        const [got, rows] = await Promise.all([this.comm.allToAllV(countChunks), this.comm.allToAllV(chunks)]);
        this.recvPerExpert = got.map((c) => Array.from(c, (v) => Math.round(v)));
        this.recvCounts = this.recvPerExpert.map((c) => c.reduce((a, b) => a + b, 0));
        this.buildSortIndex();
        return [joinRows(rows, this.hidden)];
      },
      backward: async ([dReceived]) => {
        const back = await this.comm.allToAllV(await splitRows(dReceived!, this.recvCounts));
        return [joinRows(back, this.hidden)];
      },
    };
    const postprocess: LocalStep = {
      kind: 'local',
      name: 'dispatchPostprocess',
      inputs: ['received'],
      outputs: ['expertInput'],
      run: ([received]) => [this.comm.size === 1 ? received! : permuteRows(received as tf.Tensor2D, this.sortIndex!, this.unsortIndex!)],
    };
    return [preprocess, dispatch, postprocess];
  }

  combineSteps(): (LocalStep | CommStep)[] {
    const preprocess: LocalStep = {
      kind: 'local',
      name: 'combinePreprocess',
      inputs: ['expertOutput'],
      outputs: ['toReturn'],
      run: ([out]) => [this.comm.size === 1 ? out! : permuteRows(out as tf.Tensor2D, this.unsortIndex!, this.sortIndex!)],
    };
    const combine: CommStep = {
      kind: 'comm',
      name: 'tokenCombine',
      inputs: ['toReturn'],
      outputs: ['returned'],
      forward: async ([t]) => [joinRows(await this.comm.allToAllV(await splitRows(t!, this.recvCounts)), this.hidden)],
      backward: async ([d]) => [joinRows(await this.comm.allToAllV(await splitRows(d!, this.sendCounts)), this.hidden)],
    };
    const postprocess: LocalStep = {
      kind: 'local',
      name: 'combinePostprocess',
      inputs: ['returned', 'probs'],
      outputs: ['routedOutput'],
      run: ([returned, probs]) => [this.permuter.unpermute(returned as tf.Tensor2D, this.plan!, probs as tf.Tensor2D)],
    };
    return [preprocess, combine, postprocess];
  }

  /** [src][local expert] blocks → [local expert][src] blocks (Megatron's sort_chunks_by_idxs). */
  private buildSortIndex(): void {
    const size = this.comm.size;
    const L = this.numLocal;
    const blockStart: number[][] = [];
    let o = 0;
    for (let s = 0; s < size; s++) {
      blockStart.push([]);
      for (let l = 0; l < L; l++) {
        blockStart[s]!.push(o);
        o += this.recvPerExpert[s]![l]!;
      }
    }
    const sort = new Int32Array(o);
    const local = new Int32Array(L);
    let p = 0;
    for (let l = 0; l < L; l++) {
      for (let s = 0; s < size; s++) {
        const n = this.recvPerExpert[s]![l]!;
        for (let i = 0; i < n; i++) sort[p++] = blockStart[s]![l]! + i;
        local[l]! += n;
      }
    }
    const unsort = new Int32Array(o);
    for (let i = 0; i < o; i++) unsort[sort[i]!] = i;
    this.sortIndex = sort;
    this.unsortIndex = unsort;
    this.localRows = local;
  }
}

/**
 * Megatron's MoEAllGatherTokenDispatcher. Every rank all-gathers the hidden states, probs and
 * routing maps of the whole group, runs its local experts on the rows routed to them,
 * unpermutes them (weighted by probs) into a [all tokens, H] partial sum, and a
 * reduce-scatter returns to each rank the sum for its own tokens. The adjoint of the
 * all-gather is a reduce-scatter and vice versa.
 */
export class AllGatherDispatcher extends DispatcherBase implements TokenDispatcher {
  readonly kind = 'allgather' as const;
  private tokenCounts: number[] = [];
  private plan: PermutePlan | null = null;

  dispatchSteps(): (LocalStep | CommStep)[] {
    const E = this.numExperts;
    const gather: CommStep = {
      kind: 'comm',
      name: 'tokenDispatch',
      inputs: ['hidden', 'probs'],
      outputs: ['hiddenAll', 'probsAll'],
      forward: async ([hidden, probs]) => {
        const r = this.need();
        // read everything first: collectives must be issued in the same order on every rank
        const h = (await hidden!.data()) as Float32Array;
        const p = (await probs!.data()) as Float32Array;
        const [hs, ps, maps] = await Promise.all([this.comm.allGather(h), this.comm.allGather(p), this.comm.allGather(Float32Array.from(r.routingMap))]);
        this.tokenCounts = hs.map((h) => h.length / this.hidden);
        const mapAll = new Uint8Array(maps.reduce((a, m) => a + m.length, 0));
        let o = 0;
        for (const m of maps) for (const v of m) mapAll[o++] = v ? 1 : 0;
        const total = this.tokenCounts.reduce((a, b) => a + b, 0);
        this.plan = r.plan(mapAll, total, this.firstLocal, this.numLocal);
        this.localRows = this.plan.rowsPerExpert;
        return [joinRows(hs, this.hidden), joinRows(ps, E)];
      },
      backward: async ([dHiddenAll, dProbsAll]) => {
        const dh = await splitRows(dHiddenAll!, this.tokenCounts);
        const dp = await splitRows(dProbsAll!, this.tokenCounts);
        const [rh, rp] = await Promise.all([this.comm.allToAllV(dh), this.comm.allToAllV(dp)]);
        const sh = reduceArrays(rh);
        const sp = reduceArrays(rp);
        return [tf.tensor2d(sh, [sh.length / this.hidden, this.hidden]), tf.tensor2d(sp, [sp.length / E, E])];
      },
    };
    const postprocess: LocalStep = {
      kind: 'local',
      name: 'dispatchPostprocess',
      inputs: ['hiddenAll'],
      outputs: ['expertInput'],
      run: ([h]) => [this.permuter.permute(h as tf.Tensor2D, this.plan!)],
    };
    // Megatron's all-gather preprocess only reshapes; kept as a named (identity) phase.
    const preprocess: LocalStep = { kind: 'local', name: 'dispatchPreprocess', inputs: ['hidden'], outputs: ['hiddenLocal'], run: ([h]) => [tf.clone(h!)] };
    gather.inputs = ['hiddenLocal', 'probs'];
    return [preprocess, gather, postprocess];
  }

  combineSteps(): (LocalStep | CommStep)[] {
    const preprocess: LocalStep = {
      kind: 'local',
      name: 'combinePreprocess',
      inputs: ['expertOutput', 'probsAll'],
      outputs: ['partial'],
      run: ([out, probs]) => [this.permuter.unpermute(out as tf.Tensor2D, this.plan!, probs as tf.Tensor2D)],
    };
    const combine: CommStep = {
      kind: 'comm',
      name: 'tokenCombine',
      inputs: ['partial'],
      outputs: ['combined'],
      forward: async ([partial]) => [await this.reduceScatterRows(partial!, this.hidden)],
      backward: async ([d]) => [joinRows(await this.comm.allGather((await d!.data()) as Float32Array), this.hidden)],
    };
    const postprocess: LocalStep = { kind: 'local', name: 'combinePostprocess', inputs: ['combined'], outputs: ['routedOutput'], run: ([c]) => [tf.clone(c!)] };
    return [preprocess, combine, postprocess];
  }

  private async reduceScatterRows(t: tf.Tensor, width: number): Promise<tf.Tensor2D> {
    const received = await this.comm.allToAllV(await splitRows(t, this.tokenCounts));
    const sum = reduceArrays(received);
    return tf.tensor2d(sum, [sum.length / width, width]);
  }
}
