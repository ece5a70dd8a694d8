/**
 * Adam with its update loop in plain JavaScript over Float32Arrays. On the pure-JS `cpu`
 * backend every tfjs elementwise op walks its own broadcasting index path, so tf.train.adam
 * spends ~10 such ops per parameter per step; one fused loop here is an order of magnitude
 * faster and the arithmetic is the same (Kingma & Ba, with bias correction).
 *
 * On a GPU backend (webgpu) the parameters stay on the device: the same update, rows with a
 * zero gradient and zero first moment left untouched, runs as tensor ops there.
 */
import { hostArray, tf } from '@kiln/tensor';

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

/** The moments of a parameter kept on a GPU device. */
interface DeviceSlot {
  m: tf.Variable;
  v: tf.Variable;
}

export class JsAdam {
  private readonly slots = new Map<tf.Variable, Slot>();
  private readonly deviceSlots = new Map<tf.Variable, DeviceSlot>();
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
      // CPU-memory backends: the arrays are read in place (no device transfer).
      const g = hostArray(gradTensor);
      const current = hostArray(variable);
      if (!(g instanceof Float32Array) || !(current instanceof Float32Array)) {
        this.deviceStep(variable, gradTensor, step, c2);
        continue;
      }
      const p = Float32Array.from(current);
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

  /** The update of `apply` as tensor ops, for parameters on a GPU device. */
  private deviceStep(variable: tf.Variable, grad: tf.Tensor, step: number, c2: number): void {
    let slot = this.deviceSlots.get(variable);
    if (!slot) {
      slot = { m: tf.variable(tf.zerosLike(variable), false), v: tf.variable(tf.zerosLike(variable), false) };
      this.deviceSlots.set(variable, slot);
    }
    const { m, v } = slot;
    tf.tidy(() => {
      const active = tf.logicalOr(tf.notEqual(grad, 0), tf.notEqual(m, 0));
      const m1 = tf.where(active, tf.add(tf.mul(m, this.b1), tf.mul(grad, 1 - this.b1)), m);
      const v1 = tf.where(active, tf.add(tf.mul(v, this.b2), tf.mul(tf.square(grad), 1 - this.b2)), v);
      const update = tf.div(tf.mul(m1, step), tf.add(tf.sqrt(tf.div(v1, c2)), this.eps));
      variable.assign(tf.where(active, tf.sub(variable, update), variable));
      m.assign(m1);
      v.assign(v1);
    });
  }

  /** Frees the moments kept on a device. */
  dispose(): void {
    for (const { m, v } of this.deviceSlots.values()) tf.dispose([m, v]);
    this.deviceSlots.clear();
  }
}
