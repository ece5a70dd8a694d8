/** Helpers shared by this package's tests (not exported from the package). */
import { createRng, initBackend, probeWebGpu, tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

/** Whether a WebGPU adapter exists; prints why not once, so skipped tests show in the log. */
export async function webGpuAvailable(): Promise<boolean> {
  const found = await probeWebGpu();
  if ('reason' in found) {
    console.log(`[skip] WebGPU tests skipped: ${found.reason}`);
    return false;
  }
  return true;
}

/** max |a − b| / (1 + max |b|): a scale-aware error that works on every backend (async read). */
export async function relErr(a: Tensor, b: Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const [x, y] = await Promise.all([a.data(), b.data()]);
  let m = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    m = Math.max(m, Math.abs(Number(x[i]) - Number(y[i])));
    s = Math.max(s, Math.abs(Number(y[i])));
  }
  return m / (1 + s);
}

/** Host data for tests: built once, turned into tensors on whichever backend is active. */
export interface HostArray {
  shape: number[];
  data: Float32Array | Int32Array;
}

export function hostNormal(shape: number[], seed: number, std = 1): HostArray {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float32Array.from(createRng(seed).normalArray(n, 0, std)) };
}

export function hostInt(values: ArrayLike<number>): HostArray {
  return { shape: [values.length], data: Int32Array.from(values) };
}

function toTensor(h: HostArray): Tensor {
  return tf.tensor(h.data, h.shape, h.data instanceof Int32Array ? 'int32' : 'float32');
}

/**
 * Outputs of `run` and the gradients of Σ_k ⟨out_k, w_k⟩ (w_k fixed random) in the inputs
 * named by `diff`, computed once with the op's reference on `cpu` and once with the kernel
 * on `backend`, from the same host data. Returns the worst relErr over all of them.
 */
export async function kernelVsReference(
  backend: string,
  inputs: Record<string, HostArray>,
  diff: readonly string[],
  run: (t: Record<string, Tensor>, reference: boolean) => Tensor | Tensor[],
): Promise<number> {
  const evaluate = async (reference: boolean): Promise<Float32Array[]> => {
    const ts: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) ts[k] = toTensor(v);
    const asList = (o: Tensor | Tensor[]) => (Array.isArray(o) ? o : [o]);
    const outs = asList(run(ts, reference));
    const weights = outs.map((o, i) => toTensor(hostNormal(o.shape, 1000 + i)));
    const f = (...xs: Tensor[]) => {
      const named = { ...ts };
      diff.forEach((k, i) => {
        named[k] = xs[i]!;
      });
      const ys = asList(run(named, reference));
      return tf.addN(ys.map((y, i) => tf.sum(tf.mul(y, weights[i]!))));
    };
    const grads = diff.length ? tf.grads(f)(diff.map((k) => ts[k]!)) : [];
    const all = [...outs, ...grads];
    const values = await Promise.all(all.map(async (t) => Float32Array.from(await t.data())));
    tf.dispose([...Object.values(ts), ...all, ...weights]);
    return values;
  };
  await tf.setBackend('cpu');
  const want = await evaluate(true);
  await tf.setBackend(backend);
  const got = await evaluate(false);
  await tf.setBackend('cpu');
  let worst = 0;
  want.forEach((w, i) => {
    const g = got[i]!;
    if (g.length !== w.length) throw new Error(`output ${i}: ${g.length} values, reference has ${w.length}`);
    let m = 0;
    let s = 0;
    for (let j = 0; j < w.length; j++) {
      m = Math.max(m, Math.abs(g[j]! - w[j]!));
      s = Math.max(s, Math.abs(w[j]!));
    }
    worst = Math.max(worst, m / (1 + s));
  });
  return worst;
}

/** The backends a kernel test runs on: `cpu`, plus `kiln-native` when its addon loads. */
export async function hostBackends(): Promise<string[]> {
  const names = ['cpu'];
  try {
    await initBackend({ env: { KILN_BACKEND: 'kiln-native' } });
    names.push('kiln-native');
  } catch (err) {
    console.log(`[skip] kiln-native kernel tests skipped: ${(err as Error).message}`);
  }
  await tf.setBackend('cpu');
  return names;
}
