/**
 * Expert capacity, token dropping and padding (Megatron's `get_capacity`,
 * `apply_router_token_dropping` and `pad_routing_map`). The permute stage calls these on the
 * router's [tokens, experts] probs and map; the choices are made on host values with
 * torch.topk's order (ties → lower token index), the probs stay differentiable.
 */
import { tf } from '@kiln/tensor';
import type { DropPolicy } from '../config.js';
import { topkIndices } from '@kiln/gpu-kernels';

/**
 * capacity = ceil(tokens / experts · factor), raised to minCapacity when given. `tokens`
 * counts routed copies (tokens × topk) when called for top-k routing.
 */
export function expertCapacity(tokens: number, experts: number, factor: number, minCapacity?: number | null): number {
  if (!(Number.isInteger(tokens) && tokens >= 0)) throw new Error(`expertCapacity: tokens must be an integer ≥ 0, got ${tokens}`);
  if (!(Number.isInteger(experts) && experts >= 1)) throw new Error(`expertCapacity: experts must be a positive integer, got ${experts}`);
  if (!(Number.isFinite(factor) && factor > 0)) throw new Error(`expertCapacity: factor must be a positive number, got ${factor}`);
  let capacity = Math.ceil((tokens / experts) * factor);
  if (minCapacity !== undefined && minCapacity !== null && capacity < minCapacity) capacity = minCapacity;
  return capacity;
}

/** Options of `applyTokenDropping`. */
export interface TokenDroppingOptions {
  /** Experts per token (capacity counts tokens × topk). */
  topk: number;
  /** Capacity factor; null/undefined = dropless (inputs returned unchanged). */
  capacityFactor: number | null | undefined;
  /** 'probs' keeps each expert's highest-probability tokens, 'position' its earliest. Default 'probs'. */
  dropPolicy?: DropPolicy;
  /** Give every expert exactly `capacity` rows (padding rows have probability 0). */
  padToCapacity?: boolean;
  /**
   * How 'position' breaks ties among routed tokens: 'torch' (default) = PyTorch's CPU top-k
   * order, exactly as Megatron's code runs on CPU; 'earliest' = lowest token index first.
   */
  positionTieBreak?: 'torch' | 'earliest';
}

/**
 * Per-expert capacity mask [tokens, experts] (1 = inside capacity) by the drop policy.
 * 'probs': torch.topk of the probability column. 'position': torch.topk of the 0/1 routing
 * column, as Megatron's code does — among the equal 1s PyTorch's CPU top-k picks in its
 * introselect order (see select.ts), which is what `positionTieBreak: 'torch'` reproduces;
 * 'earliest' keeps the routed tokens in index order (then the earliest unrouted ones when
 * padding), the policy's stated intent.
 */
function capacityMask(
  probs: Float32Array,
  map: Float32Array,
  numTokens: number,
  numExperts: number,
  capacity: number,
  policy: DropPolicy,
  tieBreak: 'torch' | 'earliest',
): Float32Array {
  const mask = new Float32Array(numTokens * numExperts);
  if (capacity > numTokens) {
    mask.fill(1);
    return mask;
  }
  for (let e = 0; e < numExperts; e++) {
    if (policy === 'probs' || tieBreak === 'torch') {
      const key = policy === 'probs' ? probs : map;
      for (const t of topkIndices(key, numTokens, capacity, e, numExperts, false)) mask[t * numExperts + e] = 1;
      continue;
    }
    let kept = 0;
    for (let t = 0; t < numTokens && kept < capacity; t++) {
      if (map[t * numExperts + e]) {
        mask[t * numExperts + e] = 1;
        kept++;
      }
    }
    for (let t = 0; t < numTokens && kept < capacity; t++) {
      if (!map[t * numExperts + e]) {
        mask[t * numExperts + e] = 1;
        kept++;
      }
    }
  }
  return mask;
}

/**
 * Megatron's `apply_router_token_dropping`: capacity = ceil(tokens·topk / E · factor); per
 * expert keep the top-`capacity` tokens by probability ('probs') or by position among the
 * routed tokens ('position', see `positionTieBreak`). Without padding the result is map ∧ capacity; with
 * `padToCapacity` it is the capacity mask itself, so each expert gets exactly `capacity` rows
 * (when capacity ≤ tokens), the extra ones with probability 0.
 */
export function applyTokenDropping(
  probs: tf.Tensor2D,
  routingMap: tf.Tensor2D,
  options: TokenDroppingOptions,
): { probs: tf.Tensor2D; routingMap: tf.Tensor2D; capacity: number | null } {
  if (probs.rank !== 2 || routingMap.rank !== 2 || probs.shape.join() !== routingMap.shape.join()) {
    throw new Error(`applyTokenDropping: probs [${probs.shape}] and routingMap [${routingMap.shape}] must both be [tokens, experts]`);
  }
  const policy = options.dropPolicy ?? 'probs';
  if (policy !== 'probs' && policy !== 'position') throw new Error(`applyTokenDropping: dropPolicy must be 'probs' or 'position', got '${String(policy)}'`);
  if (options.capacityFactor === null || options.capacityFactor === undefined) {
    if (options.padToCapacity) throw new Error('applyTokenDropping: padToCapacity needs a capacityFactor');
    return { probs, routingMap, capacity: null };
  }
  const [numTokens, numExperts] = probs.shape;
  const capacity = expertCapacity(numTokens * options.topk, numExperts, options.capacityFactor);
  return tf.tidy(() => {
    const p = Float32Array.from(probs.dataSync() as ArrayLike<number>);
    const m = Float32Array.from(tf.cast(routingMap, 'float32').dataSync() as ArrayLike<number>);
    const cap = capacityMask(p, m, numTokens, numExperts, capacity, policy, options.positionTieBreak ?? 'torch');
    const finalMap = options.padToCapacity ? cap : cap.map((v, i) => (v && m[i] ? 1 : 0));
    const mask = tf.tensor2d(finalMap, [numTokens, numExperts]);
    return {
      probs: tf.mul(probs, mask) as tf.Tensor2D,
      routingMap: tf.cast(mask, 'bool') as tf.Tensor2D,
      capacity,
    };
  });
}

/**
 * Megatron's `pad_routing_map` (moe_router_padding_for_quantization): for every expert, turn
 * the first (−count mod multiple) unrouted tokens into routed ones, so each expert's row count
 * is a multiple of `multiple` (as far as there are tokens). Returns a bool map; the padded
 * entries carry probability 0 in the router's probs.
 */
export function padRoutingMap(routingMap: tf.Tensor2D, multiple: number): tf.Tensor2D {
  if (!(Number.isInteger(multiple) && multiple >= 1)) throw new Error(`padRoutingMap: multiple must be a positive integer, got ${multiple}`);
  if (routingMap.rank !== 2) throw new Error(`padRoutingMap: routingMap must be [tokens, experts], got [${routingMap.shape}]`);
  const [numTokens, numExperts] = routingMap.shape;
  const m = Float32Array.from(tf.tidy(() => tf.cast(routingMap, 'float32')).dataSync() as ArrayLike<number>);
  for (let e = 0; e < numExperts; e++) {
    let count = 0;
    for (let t = 0; t < numTokens; t++) count += m[t * numExperts + e]! ? 1 : 0;
    let toPad = (((-count) % multiple) + multiple) % multiple;
    for (let t = 0; t < numTokens && toPad > 0; t++) {
      if (!m[t * numExperts + e]) {
        m[t * numExperts + e] = 1;
        toPad--;
      }
    }
  }
  return tf.tidy(() => tf.cast(tf.tensor2d(m, [numTokens, numExperts]), 'bool') as tf.Tensor2D);
}

/**
 * Row counts per expert rounded up to a multiple (for padding each expert's block of the
 * permuted rows with zero rows, the fused permute-and-pad way), and the padding added.
 */
export function padCountsToMultiple(counts: ArrayLike<number>, multiple: number): { padded: number[]; padding: number[] } {
  if (!(Number.isInteger(multiple) && multiple >= 1)) throw new Error(`padCountsToMultiple: multiple must be a positive integer, got ${multiple}`);
  const padded: number[] = [];
  const padding: number[] = [];
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (!(Number.isInteger(c) && c >= 0)) throw new Error(`padCountsToMultiple: counts[${i}] must be an integer ≥ 0, got ${c}`);
    const p = Math.ceil(c / multiple) * multiple;
    padded.push(p);
    padding.push(p - c);
  }
  return { padded, padding };
}
