/**
 * Named parameters and the few layers the backbone is built from. Weights live in a
 * `ParamStore` (name → tf.Variable) and layers take the store as an argument, so the same
 * forward code runs a student, its EMA teacher or a frozen copy without rebuilding.
 *
 * LayerNorm and SiLU are `@kiln/gpu-kernels`' fused ops (one kernel forward, one backward);
 * a linear layer is one fused matMul + bias. The remaining broadcasts are written as rank-1
 * matMuls (`rows`, `cols`): on tfjs's `cpu` backend a broadcasting elementwise op walks
 * indices element by element and costs about 10× a same-shape op, an outer product through
 * matMul does not.
 */
import { emaUpdate as emaStep, layerNorm as fusedLayerNorm, silu as fusedSilu } from '@kiln/gpu-kernels';
import { type Rng, type Tensor, tf } from '@kiln/tensor';

export type ParamStore = Map<string, tf.Variable>;

/** Looks a parameter up, naming it when it is missing. */
export function param(store: ParamStore, name: string): tf.Variable {
  const v = store.get(name);
  if (!v) throw new Error(`parameter '${name}' is missing from the store (${store.size} parameters)`);
  return v;
}

/** Creates (or replaces) a trainable parameter. */
export function addParam(store: ParamStore, name: string, value: Tensor): tf.Variable {
  const v = tf.variable(value, true, undefined, 'float32');
  value.dispose();
  store.get(name)?.dispose();
  store.set(name, v);
  return v;
}

/** A copy of every parameter, trainable or not (a teacher, a frozen reference). */
export function cloneParams(store: ParamStore, trainable = false): ParamStore {
  const out: ParamStore = new Map();
  for (const [k, v] of store) out.set(k, tf.variable(v.clone(), trainable));
  return out;
}

/** Copies values from `src` into `dst` for every name in `dst` that `src` has. Returns the names copied. */
export function copyParams(dst: ParamStore, src: ParamStore | Map<string, Tensor>): string[] {
  const copied: string[] = [];
  for (const [k, v] of dst) {
    const s = src.get(k);
    if (!s) continue;
    if (s.shape.join() !== v.shape.join()) throw new Error(`copyParams: '${k}' has shape [${s.shape}] but [${v.shape}] is expected`);
    v.assign(s);
    copied.push(k);
  }
  return copied;
}

/** teacher ← m·teacher + (1 − m)·student, for every teacher parameter (one fused op each). */
export function emaUpdate(teacher: ParamStore, student: ParamStore, momentum: number): void {
  tf.tidy(() => {
    for (const [k, t] of teacher) t.assign(emaStep(t, param(student, k), momentum));
  });
}

export function disposeParams(store: ParamStore): void {
  for (const v of store.values()) v.dispose();
  store.clear();
}

export function countParams(store: ParamStore): number {
  let n = 0;
  for (const v of store.values()) n += v.size;
  return n;
}

/** [n, c] copies of a [c] vector: ones[n,1] · v[1,c]. */
export function rows(v: Tensor, n: number): Tensor {
  return tf.matMul(tf.ones([n, 1]), tf.reshape(v, [1, -1]));
}

/** [n, c] copies of a column [n, 1]: col · ones[1,c]. */
export function cols(col: Tensor, c: number): Tensor {
  return tf.matMul(tf.reshape(col, [-1, 1]), tf.ones([1, c]));
}

export function silu(x: Tensor): Tensor {
  return fusedSilu(x);
}

/** Glorot-uniform weight [inC, outC] and, optionally, a zero bias. */
export function initLinear(store: ParamStore, rng: Rng, name: string, inC: number, outC: number, bias = true, gain = 1): void {
  const limit = gain * Math.sqrt(6 / (inC + outC));
  addParam(store, `${name}.weight`, rng.uniform([inC, outC], -limit, limit));
  if (bias) addParam(store, `${name}.bias`, tf.zeros([outC]));
}

/** x [n, inC] · W (+ b), the bias added inside the matMul kernel. */
export function linear(store: ParamStore, name: string, x: Tensor): Tensor {
  const w = param(store, `${name}.weight`);
  const b = store.get(`${name}.bias`);
  return b ? tf.fused.matMul({ a: x, b: w, bias: b }) : tf.matMul(x, w);
}

export function initLayerNorm(store: ParamStore, name: string, c: number): void {
  addParam(store, `${name}.weight`, tf.ones([c]));
  addParam(store, `${name}.bias`, tf.zeros([c]));
}

/** LayerNorm over the channels of x [n, c] (eps 1e-5). */
export function layerNorm(store: ParamStore, name: string, x: Tensor): Tensor {
  return fusedLayerNorm(x, param(store, `${name}.weight`), param(store, `${name}.bias`), 1e-5);
}

/** Row-wise L2 normalisation of x [n, c]. */
export function l2Normalize(x: Tensor, eps = 1e-6): Tensor {
  const c = x.shape[1]!;
  const norm = tf.sqrt(tf.add(tf.matMul(tf.square(x), tf.ones([c, 1])), eps));
  return tf.div(x, cols(norm, c));
}

/** x in the forward pass, no gradient backwards (tfjs has no stop_gradient op). */
export function stopGradient(x: Tensor): Tensor {
  const f = tf.customGrad(((xs: Tensor) => ({ value: tf.clone(xs), gradFunc: (dy: Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x);
}
