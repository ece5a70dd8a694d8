/**
 * Megatron-Core's rank generator (megatron/core/parallel_state.py: RankGenerator and
 * generate_masked_orthogonal_rank_groups) and the Parallel Folding of attention
 * (tp-cp-dp-pp) and experts (etp-ep-edp-pp) onto the same ranks.
 *
 * global rank = Σ_d idx_d · stride_d, strides = prefix products of the sizes in `order`; the
 * groups of a mask such as "tp-pp" vary the masked dimensions and fix the others. Groups come
 * in Megatron's order: group index = the unmasked indices read as a mixed-radix number
 * (first dimension fastest), members in the same way over the masked dimensions.
 */

export type ParallelDim = 'tp' | 'pp' | 'dp' | 'ep' | 'cp';

const DIMS: readonly ParallelDim[] = ['tp', 'pp', 'dp', 'ep', 'cp'];

function prefixProduct(a: number[], init = 1): number[] {
  const r = [init];
  let v = init;
  for (const x of a) {
    v *= x;
    r.push(v);
  }
  return r;
}

function decompose(index: number, shape: number[]): number[] {
  const stride = prefixProduct(shape);
  const idx = shape.map((s, i) => Math.floor(index / stride[i]!) % s);
  const back = idx.reduce((acc, x, i) => acc + x * stride[i]!, 0);
  if (back !== index) throw new Error(`idx [${idx}] with shape [${shape}] does not recompose index ${index}`);
  return idx;
}

/**
 * Megatron's generate_masked_orthogonal_rank_groups: all groups of the dimensions where
 * mask[i] is true, for sizes `parallelSize` in order.
 */
export function generateMaskedOrthogonalRankGroups(worldSize: number, parallelSize: number[], mask: boolean[]): number[][] {
  if (parallelSize.length !== mask.length) throw new Error(`mask length ${mask.length} differs from ${parallelSize.length} sizes`);
  const maskedShape = parallelSize.filter((_, i) => mask[i]);
  const unmaskedShape = parallelSize.filter((_, i) => !mask[i]);
  const globalStride = prefixProduct(parallelSize);
  const maskedStride = globalStride.filter((_, i) => i < mask.length && mask[i]);
  const unmaskedStride = globalStride.filter((_, i) => i < mask.length && !mask[i]);
  const groupSize = prefixProduct(maskedShape).at(-1)!;
  const numGroups = Math.floor(worldSize / groupSize);
  const ranks: number[][] = [];
  for (let g = 0; g < numGroups; g++) {
    const gIdx = decompose(g, unmaskedShape);
    const base = gIdx.reduce((acc, x, i) => acc + x * unmaskedStride[i]!, 0);
    const group: number[] = [];
    for (let r = 0; r < groupSize; r++) {
      const rIdx = decompose(r, maskedShape);
      group.push(base + rIdx.reduce((acc, x, i) => acc + x * maskedStride[i]!, 0));
    }
    ranks.push(group);
  }
  return ranks;
}

export interface RankGeneratorOptions {
  tp: number;
  ep: number;
  dp: number;
  pp: number;
  cp: number;
  /** Dimensions from fastest to slowest varying, e.g. 'tp-cp-ep-dp-pp'. */
  order: string;
  /** Added to every rank (for generators over a slice of the world). Default 0. */
  rankOffset?: number;
}

/** Megatron's RankGenerator. */
export class RankGenerator {
  readonly tp: number;
  readonly ep: number;
  readonly dp: number;
  readonly pp: number;
  readonly cp: number;
  readonly rankOffset: number;
  readonly worldSize: number;
  /** The order with every dimension of size 1 that it did not name appended (as Megatron). */
  readonly order: string;
  readonly orderedSize: number[];
  private readonly nameToSize: Record<ParallelDim, number>;

  constructor(options: RankGeneratorOptions) {
    const { tp, ep, dp, pp, cp, order } = options;
    for (const [name, v] of Object.entries({ tp, ep, dp, pp, cp })) {
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`RankGenerator: ${name} must be a positive integer, got ${String(v)}`);
    }
    const rankOffset = options.rankOffset ?? 0;
    if (!(Number.isInteger(rankOffset) && rankOffset >= 0)) throw new Error(`RankGenerator: rankOffset must be an integer ≥ 0, got ${rankOffset}`);
    if (ep !== 1 && cp !== 1) {
      throw new Error(
        `RankGenerator: ep (${ep}) and cp (${cp}) cannot both be > 1 in one rank generator: cp belongs to the attention generator, ep to the expert generator`,
      );
    }
    if (typeof order !== 'string' || order.length === 0) throw new Error('RankGenerator: order must be a string such as tp-cp-ep-dp-pp');
    this.tp = tp;
    this.ep = ep;
    this.dp = dp;
    this.pp = pp;
    this.cp = cp;
    this.rankOffset = rankOffset;
    this.worldSize = tp * dp * pp * cp * ep;
    this.nameToSize = { tp, pp, dp, ep, cp };
    let ord = order.toLowerCase();
    const tokens = ord.split('-');
    for (const t of tokens) {
      if (!DIMS.includes(t as ParallelDim)) throw new Error(`RankGenerator: unknown dimension '${t}' in order '${order}'`);
    }
    if (new Set(tokens).size !== tokens.length) throw new Error(`RankGenerator: order '${order}' names a dimension twice`);
    for (const name of DIMS) {
      if (!tokens.includes(name)) {
        if (this.nameToSize[name] !== 1) {
          throw new Error(`RankGenerator: the size of ${name} is ${this.nameToSize[name]}, but the order '${order}' does not name it`);
        }
        ord = `${ord}-${name}`;
      }
    }
    this.order = ord;
    this.orderedSize = ord.split('-').map((t) => this.nameToSize[t as ParallelDim]);
  }

  /** Mask over the order for a token such as 'tp-dp'. */
  getMask(order: string, token: string): boolean[] {
    const ordered = order.split('-');
    const mask = ordered.map(() => false);
    for (const t of token.split('-')) {
      const i = ordered.indexOf(t);
      if (i < 0) throw new Error(`RankGenerator.getRanks: unknown dimension '${t}' in '${token}' (order '${order}')`);
      mask[i] = true;
    }
    return mask;
  }

  /** All groups of the dimensions in `token` (e.g. 'tp', 'dp-cp', 'tp-ep-pp'), in Megatron's order. */
  getRanks(token: string): number[][] {
    const mask = this.getMask(this.order, token.toLowerCase());
    const ranks = generateMaskedOrthogonalRankGroups(this.worldSize, this.orderedSize, mask);
    if (this.rankOffset > 0) for (const g of ranks) for (let i = 0; i < g.length; i++) g[i]! += this.rankOffset;
    return ranks;
  }

  /** The group of `token` that contains `rank`. */
  groupOf(token: string, rank: number): number[] {
    const g = this.getRanks(token).find((grp) => grp.includes(rank));
    if (!g) throw new Error(`RankGenerator: rank ${rank} is outside [${this.rankOffset}, ${this.rankOffset + this.worldSize})`);
    return g;
  }
}

export interface ParallelFoldingOptions {
  worldSize: number;
  tp?: number;
  pp?: number;
  cp?: number;
  ep?: number;
  /** Expert tensor-parallel size; defaults to tp. */
  etp?: number;
  /** Default 'tp-cp-ep-dp-pp'. */
  order?: string;
  rankOffset?: number;
}

/**
 * Parallel Folding as Megatron's initialize_model_parallel builds it: an attention generator
 * (tp, cp, dp = world / (tp·cp·pp), pp; ep 1) and an expert generator (tp = etp, ep,
 * dp = expert-data-parallel = world / (etp·ep·pp), pp; cp 1) over the same order and ranks,
 * with Megatron's checks (world divisible by both model sizes, identical pipeline groups,
 * equal data-parallel sizes when pp is not last in the order).
 */
export class ParallelFolding {
  readonly attention: RankGenerator;
  readonly expert: RankGenerator;
  readonly dp: number;
  readonly edp: number;

  constructor(options: ParallelFoldingOptions) {
    const { worldSize } = options;
    const tp = options.tp ?? 1;
    const pp = options.pp ?? 1;
    const cp = options.cp ?? 1;
    const ep = options.ep ?? 1;
    const etp = options.etp ?? tp;
    const order = options.order ?? 'tp-cp-ep-dp-pp';
    if (!(Number.isInteger(worldSize) && worldSize >= 1)) throw new Error(`ParallelFolding: worldSize must be a positive integer, got ${worldSize}`);
    const modelSize = tp * pp * cp;
    if (worldSize % modelSize !== 0) throw new Error(`ParallelFolding: worldSize (${worldSize}) is not divisible by tp·pp·cp = ${modelSize}`);
    const expertModelSize = etp * ep * pp;
    if (worldSize % expertModelSize !== 0) {
      throw new Error(`ParallelFolding: worldSize (${worldSize}) is not divisible by etp·ep·pp = ${expertModelSize}`);
    }
    this.dp = worldSize / modelSize;
    this.edp = worldSize / expertModelSize;
    this.attention = new RankGenerator({ tp, ep: 1, dp: this.dp, pp, cp, order, rankOffset: options.rankOffset });
    this.expert = new RankGenerator({ tp: etp, ep, dp: this.edp, pp, cp: 1, order, rankOffset: options.rankOffset });
    if (!(order.endsWith('pp') || pp === 1 || this.edp === this.dp)) {
      throw new Error('ParallelFolding: when pp is not last in the order, the data-parallel sizes of attention and experts must be equal');
    }
    const a = JSON.stringify(this.attention.getRanks('pp'));
    const e = JSON.stringify(this.expert.getRanks('pp'));
    if (a !== e) throw new Error(`ParallelFolding: pipeline groups differ between attention ${a} and experts ${e}`);
  }

  /** Attention-side groups (Megatron's names): tp, cp, dp, pp, dp-cp, tp-cp, tp-dp-cp, tp-pp … */
  attentionGroups(token: string): number[][] {
    return this.attention.getRanks(token);
  }

  /** Expert-side groups: 'ep', 'etp' (= tp), 'edp' (= dp), and combinations such as 'etp-ep'. */
  expertGroups(token: string): number[][] {
    const mapped = token
      .toLowerCase()
      .split('-')
      .map((t) => (t === 'etp' ? 'tp' : t === 'edp' ? 'dp' : t))
      .join('-');
    return this.expert.getRanks(mapped);
  }
}
