import { tf } from '@kiln/tensor';
import type { TokenOrder } from '../losses/load-balancing.js';
import type { RouterLosses, TopKRouter } from '../router/router.js';

export type { RouterLosses };

/** What the route step hands to the rest of the layer. */
export interface RouteOutput {
  /** [T, E] routing probabilities (zero where not routed), carrying the attached aux losses. */
  probs: tf.Tensor2D;
  /** [T, E] 0/1 routing map after capacity dropping/padding, row-major on the host (for the permutation plan). */
  routingMap: Uint8Array;
  /** Capacity per expert when a capacity factor is set. */
  capacity: number | null;
}

/** Side-channel options of one routing call. */
export interface RouteOptions {
  /** Jitter noise for the router input (pre-drawn with `drawInputJitter`, so recomputation sees the same noise). */
  jitter?: tf.Tensor | null;
  /** Sequence length, for the sequence-level aux loss (tokens in `order`). */
  seqLength?: number;
  /** Token order of `hidden`: 'sb' (Megatron's [seq, batch] flattened, the default) or 'bs' (batch-major rows). */
  order?: TokenOrder;
  /** Training (default) applies z-loss and aux losses and counts tokens; false is evaluation. */
  training?: boolean;
  /** Record statistics and update trackers (false while recomputing, so nothing counts twice). */
  record?: boolean;
}

/**
 * The layer's route step: the layer's router (`TopKRouter`) on `hidden`, with the gate
 * weight given as a tensor (the layer differentiates its weights as function inputs), and
 * the routing map read back to the host for the permutation plan.
 */
export function routeTokens(router: TopKRouter, hidden: tf.Tensor2D, weight: tf.Tensor2D, options: RouteOptions = {}): RouteOutput {
  let capacity: number | null = null;
  const out = tf.tidy(() => {
    const input = options.jitter ? (tf.mul(hidden, options.jitter) as tf.Tensor2D) : hidden;
    const logits = router.gating(input, weight);
    const training = options.training ?? true;
    const r = router.routing(logits, { seqLength: options.seqLength, order: options.order, training, record: training && (options.record ?? true) });
    capacity = r.capacity;
    return { probs: r.probs, map: r.routingMap };
  });
  const routingMap = Uint8Array.from(out.map.dataSync() as ArrayLike<number>);
  out.map.dispose();
  return { probs: out.probs, routingMap, capacity };
}
