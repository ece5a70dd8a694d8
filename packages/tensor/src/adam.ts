/**
 * `adam()`: tf.train.adam with the whole per-weight update fused into one native kernel on
 * `kiln-native` (one pass over value, gradient and both moments instead of ~13 tfjs ops,
 * each with its own full-size output). It subclasses tfjs-core's AdamOptimizer, so state,
 * `getWeights`/`setWeights` (checkpoints and resume), `getConfig` and the serialized class
 * name ('Adam') are tfjs's own: state saved from either optimizer loads into the other.
 * On backends without the fused kernel it runs tfjs's own update unchanged.
 */
import type { NamedTensorMap, Variable } from '@tensorflow/tfjs-core';
import { hostArray } from './host-array.js';
import { FUSED_ADAM_KERNEL } from './native-backend-kernels.js';
import { tf } from './tf.js';

export interface AdamOptions {
  /** Step size (default 0.001, as tf.train.adam). */
  learningRate?: number;
  /** Decay of the first moment (default 0.9). */
  beta1?: number;
  /** Decay of the second moment (default 0.999). */
  beta2?: number;
  /** Added to the root of the second moment; default: the backend's epsilon (1e-7 on CPU). */
  epsilon?: number;
}

/** AdamOptimizer's private state, which this subclass updates exactly as tfjs does. */
interface AdamState {
  accBeta1: Variable;
  accBeta2: Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: Variable } | undefined)[];
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** True when the active backend has the fused Adam kernel. */
export function hasFusedAdam(backendName: string = tf.getBackend()): boolean {
  return tf.getKernel(FUSED_ADAM_KERNEL, backendName) !== undefined;
}

function check(name: string, value: number, ok: boolean, want: string): void {
  if (!Number.isFinite(value) || !ok) throw new RangeError(`adam: ${name} must be ${want}, got ${value}`);
}

/** The argument type of Optimizer.applyGradients (its NamedTensor is not exported). */
type VariableGradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

export class FusedAdamOptimizer extends tf.AdamOptimizer {
  override applyGradients(variableGradients: VariableGradients): void {
    if (!hasFusedAdam()) {
      super.applyGradients(variableGradients);
      return;
    }
    const s = this as unknown as AdamState;
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    tf.tidy(() => {
      // The same float32 scalars tfjs computes, read once for all weights. The fused kernel
      // exists only on kiln-native, whose tensors live in host memory: their arrays are read
      // in place, which is no device transfer.
      const oneMinusAccBeta1 = tf.sub(1, s.accBeta1);
      const oneMinusAccBeta2 = tf.sub(1, s.accBeta2);
      const c1 = hostScalar(oneMinusAccBeta1);
      const c2 = hostScalar(oneMinusAccBeta2);
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        if (!value) throw new Error(`adam: no variable named '${name}' is registered`);
        const slot = (list: AdamState['accumulatedFirstMoment'], suffix: string) => {
          const existing = list[i];
          if (existing) return existing.variable;
          const created = { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
          list[i] = created;
          return created.variable;
        };
        const m = slot(s.accumulatedFirstMoment, 'm');
        const v = slot(s.accumulatedSecondMoment, 'v');
        const gradient = Array.isArray(variableGradients)
          ? variableGradients[i]?.tensor
          : (variableGradients as NamedTensorMap)[name];
        if (gradient == null) return;
        let next: { value: tf.Tensor; m: tf.Tensor; v: tf.Tensor };
        if (value.dtype === 'float32' && gradient.dtype === 'float32' && gradient.size === value.size) {
          const [nv, nm, nvv] = tf.engine().runKernel(
            FUSED_ADAM_KERNEL,
            { value, grad: gradient, m, v },
            {
              learningRate: s.learningRate,
              beta1: s.beta1,
              beta2: s.beta2,
              epsilon: s.epsilon,
              oneMinusAccBeta1: c1,
              oneMinusAccBeta2: c2,
            },
          ) as tf.Tensor[];
          next = { value: nv!, m: nm!, v: nvv! };
        } else {
          next = referenceStep(s, value, gradient, m, v, oneMinusAccBeta1, oneMinusAccBeta2);
        }
        m.assign(next.m);
        v.assign(next.v);
        value.assign(next.value);
      });
      s.accBeta1.assign(tf.mul(s.accBeta1, s.beta1));
      s.accBeta2.assign(tf.mul(s.accBeta2, s.beta2));
    });
    this.incrementIterations();
  }
}

/** The value of a scalar on a CPU-memory backend, read from its host array in place. */
function hostScalar(t: tf.Tensor): number {
  const values = hostArray(t);
  if (!values) throw new Error(`adam: the fused update needs a CPU-memory backend, not '${tf.getBackend()}'`);
  return values[0]!;
}

/** tfjs-core's AdamOptimizer update for one weight, op for op (for inputs the kernel does not take). */
function referenceStep(
  s: AdamState,
  value: tf.Tensor,
  gradient: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  oneMinusAccBeta1: tf.Tensor,
  oneMinusAccBeta2: tf.Tensor,
) {
  const newM = tf.add(tf.mul(m, s.beta1), tf.mul(gradient, 1 - s.beta1));
  const newV = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(gradient), 1 - s.beta2));
  const mHat = tf.div(newM, oneMinusAccBeta1);
  const vHat = tf.div(newV, oneMinusAccBeta2);
  const newValue = tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), s.epsilon)), -s.learningRate), value);
  return { value: newValue, m: newM, v: newV };
}

/**
 * Adam with the same hyper-parameters, state and results (to float rounding) as
 * `tf.train.adam(learningRate, beta1, beta2, epsilon)`, fused into one kernel per weight on
 * `kiln-native`. Use it wherever tf.train.adam is used: `opt.minimize(loss)`,
 * `opt.applyGradients(grads)`, `await opt.getWeights()` / `setWeights()` for checkpoints.
 */
export function adam(options: AdamOptions = {}): FusedAdamOptimizer {
  const { learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon } = options;
  check('learningRate', learningRate, true, 'a finite number');
  check('beta1', beta1, beta1 >= 0 && beta1 < 1, 'in [0, 1)');
  check('beta2', beta2, beta2 >= 0 && beta2 < 1, 'in [0, 1)');
  if (epsilon !== undefined) check('epsilon', epsilon, epsilon >= 0, '>= 0');
  // tfjs's constructor treats null as "the backend's epsilon".
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon ?? (null as unknown as number));
}
