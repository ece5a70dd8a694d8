import { swiglu as swigluKernel, swigluBackward as swigluBackwardKernel } from '@kiln/gpu-kernels';
import { tf } from '@kiln/tensor';
import type { ExpertActivation } from '../config.js';

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh form (`gelu(approximate='tanh')`): 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
 * tfjs has no erf-based GELU with a gradient; the tanh form differs from erf by < 1e-3.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

/** d gelu(x)/dx ⊙ dy, for hand-written backward passes. */
export function geluBackward(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const x2 = tf.square(x);
    const inner = tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.mul(x2, x))));
    const t = tf.tanh(inner);
    const dInner = tf.mul(GELU_C, tf.add(1, tf.mul(3 * 0.044715, x2)));
    const d = tf.add(tf.mul(0.5, tf.add(1, t)), tf.mul(tf.mul(0.5, x), tf.mul(tf.sub(1, tf.square(t)), dInner)));
    return tf.mul(d, dy);
  });
}

/**
 * SwiGLU as Megatron's `glu` with SiLU: fc1's output [.., 2F] splits into (gate, up);
 * silu(gate) · up. @kiln/gpu-kernels' `swiglu` op: one fused pass (C++ on kiln-native,
 * WGSL on webgpu), with a fused backward.
 */
export function swiglu(h: tf.Tensor2D): tf.Tensor2D {
  return swigluKernel(h) as tf.Tensor2D;
}

/** The cotangent of SwiGLU's input for output cotangent `da`. */
export function swigluBackward(h: tf.Tensor2D, da: tf.Tensor2D): tf.Tensor2D {
  return swigluBackwardKernel(h, da) as tf.Tensor2D;
}

/** Applies the expert activation to fc1's output. */
export function applyActivation(kind: ExpertActivation, h: tf.Tensor2D): tf.Tensor2D {
  return kind === 'swiglu' ? swiglu(h) : (gelu(h) as tf.Tensor2D);
}

export function activationBackward(kind: ExpertActivation, h: tf.Tensor2D, da: tf.Tensor2D): tf.Tensor2D {
  return kind === 'swiglu' ? swigluBackward(h, da) : (geluBackward(h, da) as tf.Tensor2D);
}

/** fc1's output width for an FFN width F: 2F for SwiGLU (gate and up), F for GELU. */
export function fc1Width(kind: ExpertActivation, ffn: number): number {
  return kind === 'swiglu' ? 2 * ffn : ffn;
}
