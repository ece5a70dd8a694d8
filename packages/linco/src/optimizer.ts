/**
 * Adam with its update loop in plain JavaScript over Float32Arrays. On the pure-JS `cpu`
 * backend every tfjs elementwise op walks its own broadcasting index path, so tf.train.adam
 * spends ~10 such ops per parameter per step; one fused loop here is an order of magnitude
 * faster and the arithmetic is the same (Kingma & Ba, with bias correction).
 */
import { tf } from '@kiln/tensor';

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

interface Slot {
  m: Float32Array;
  v: Float32Array;
}

export class JsAdam {
  private readonly slots = new Map<tf.Variable, Slot>();
  private t = 0;
  private readonly lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;

  constructor(options: AdamOptions) {
    if (!(options.learningRate > 0)) throw new Error(`train.learningRate must be > 0, got ${options.learningRate}`);
    this.lr = options.learningRate;
    this.b1 = options.beta1 ?? 0.9;
    this.b2 = options.beta2 ?? 0.999;
    this.eps = options.epsilon ?? 1e-8;
  }

  /** Applies one step; `grads` maps variable name → gradient (as tf.variableGrads returns). */
  apply(variables: tf.Variable[], grads: Record<string, tf.Tensor>): void {
    this.t++;
    const c1 = 1 - this.b1 ** this.t;
    const c2 = 1 - this.b2 ** this.t;
    const step = this.lr / c1;
    for (const variable of variables) {
      const gradTensor = grads[variable.name];
      if (!gradTensor) continue;
      const g = gradTensor.dataSync() as Float32Array;
      const p = Float32Array.from(variable.dataSync() as Float32Array);
      let slot = this.slots.get(variable);
      if (!slot) {
        slot = { m: new Float32Array(p.length), v: new Float32Array(p.length) };
        this.slots.set(variable, slot);
      }
      const { m, v } = slot;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        if (gi === 0 && m[i] === 0) continue; // untouched embedding rows stay untouched
        m[i] = this.b1 * m[i]! + (1 - this.b1) * gi;
        v[i] = this.b2 * v[i]! + (1 - this.b2) * gi * gi;
        p[i]! -= (step * m[i]!) / (Math.sqrt(v[i]! / c2) + this.eps);
      }
      const next = tf.tensor(p, variable.shape, 'float32');
      variable.assign(next);
      next.dispose();
    }
  }
}
