import { defineOp, tf } from '@kiln/tensor';

interface CpuBackendLike {
  readSync(dataId: unknown): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

function checkH(h: tf.Tensor | undefined, name: string): void {
  if (h?.rank !== 2 || h.shape[1]! % 2 !== 0) throw new Error(`${name}: h must be [rows, 2F], got [${h?.shape}]`);
}

/**
 * d SwiGLU / d h for cotangent dy: the gate half gets dy·u·silu'(g), the up half dy·silu(g).
 * One pass over the rows on the CPU backends (tfjs's column split of h copies element by
 * element through index arithmetic and dominated the layer's time).
 */
export const swigluGradOp = defineOp<'h' | 'dy', Record<string, never>, tf.Tensor>({
  name: 'moeSwigluGrad',
  inputs: ['h', 'dy'] as const,
  nonDifferentiable: ['h', 'dy'] as const,
  validate: ({ h, dy }) => {
    checkH(h, 'moeSwigluGrad');
    if (!dy || dy.shape[0] !== h!.shape[0] || dy.shape[1]! * 2 !== h!.shape[1]) throw new Error(`moeSwigluGrad: dy [${dy?.shape}] does not match h [${h!.shape}]`);
  },
  reference: ({ h, dy }) =>
    tf.tidy(() => {
      const [g, u] = tf.split(h!, 2, 1);
      const s = tf.sigmoid(g!);
      const dSilu = tf.mul(s, tf.add(1, tf.mul(g!, tf.sub(1, s))));
      return tf.concat([tf.mul(tf.mul(dy!, u!), dSilu), tf.mul(dy!, tf.mul(g!, s))], 1);
    }),
  kernels: {
    cpu: ({ inputs, backend }) => {
        const b = backend as unknown as CpuBackendLike;
        const hi = inputs.h as tf.TensorInfo;
        const h = b.readSync(hi.dataId);
        const dy = b.readSync((inputs.dy as tf.TensorInfo).dataId);
        const [rows, width] = hi.shape as [number, number];
        const F = width / 2;
        const out = new Float32Array(rows * width);
        for (let r = 0; r < rows; r++) {
          const base = r * width;
          for (let j = 0; j < F; j++) {
            const g = h[base + j]!;
            const u = h[base + F + j]!;
            const s = sig(g);
            const d = dy[r * F + j]!;
            out[base + j] = d * u * s * (1 + g * (1 - s));
            out[base + F + j] = d * g * s;
          }
        }
        return b.makeTensorInfo([rows, width], 'float32', out);
    },
  },
});

/** SwiGLU on fc1's output [rows, 2F] → [rows, F]: silu(gate) · up, gate = first F columns. */
export const swigluOp = defineOp<'h', Record<string, never>, tf.Tensor>({
  name: 'moeSwiglu',
  inputs: ['h'] as const,
  validate: ({ h }) => checkH(h, 'moeSwiglu'),
  reference: ({ h }) =>
    tf.tidy(() => {
      const [g, u] = tf.split(h!, 2, 1);
      return tf.mul(tf.mul(g!, tf.sigmoid(g!)), u!);
    }),
  kernels: {
    cpu: ({ inputs, backend }) => {
        const b = backend as unknown as CpuBackendLike;
        const hi = inputs.h as tf.TensorInfo;
        const h = b.readSync(hi.dataId);
        const [rows, width] = hi.shape as [number, number];
        const F = width / 2;
        const out = new Float32Array(rows * F);
        for (let r = 0; r < rows; r++) {
          const base = r * width;
          for (let j = 0; j < F; j++) {
            const g = h[base + j]!;
            out[r * F + j] = g * sig(g) * h[base + F + j]!;
          }
        }
        return b.makeTensorInfo([rows, F], 'float32', out);
    },
  },
  gradient: ({ inputs, dy }) => ({ h: swigluGradOp({ h: inputs.h!, dy: dy[0]! }) }),
});

// kiln-native (a MathBackendCPU subclass) copies every cpu kernel when it registers; if it
// registered before these ops were defined, give it the same kernels here.
if (tf.getKernelsForBackend('kiln-native').length > 0) {
  for (const op of [swigluOp, swigluGradOp]) {
    const cpu = tf.getKernel(op.kernelName, 'cpu');
    if (cpu && !tf.getKernel(op.kernelName, 'kiln-native')) op.registerKernel('kiln-native', cpu.kernelFunc as never);
  }
}
