import { tf } from '@kiln/tensor';
import type { ExpertActivation, OffloadModule } from '../config.js';
import { ActivationOffloader, type HostTensor } from '../memory/offload.js';
import { activationBackward, applyActivation } from './activation.js';
import { type GroupedGemm, getGroupedGemm } from './grouped-gemm.js';

/** A matrix product the experts use; a low-precision recipe swaps in quantize–dequantize GEMMs. */
export type ExpertMatMul = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** Memory options of the grouped MLP (from MoEConfig.recomputeModules / offloadModules). */
export interface GroupedMlpMemory {
  /** Keep fc1's output but not the activation's; re-run the activation in backward ('moe_act'). */
  recomputeActivation?: boolean;
  /** Which saved activations move to host memory until backward. */
  offload?: readonly OffloadModule[];
  /** Counts the bytes moved; a fresh one per layer if omitted. */
  offloader?: ActivationOffloader;
}

/**
 * The routed experts as one grouped GEMM over expert-contiguous rows (Megatron's GroupedMLP /
 * TEGroupedMLP): rows of expert g are multiplied by fc1[g] ([H, F₁], F₁ = 2F for SwiGLU),
 * activated, multiplied by fc2[g] ([F, H]). Empty experts are fine.
 *
 * Three ways to run it:
 * - `forward` — tf ops, differentiated by tfjs (optionally through `matMul`, e.g. FP8/NVFP4
 *   quantize–dequantize GEMMs, which then run per expert);
 * - `forwardManaged` — a hand-written backward (customGrad) that decides what is saved:
 *   fc1 input and output always, the activation output unless `recomputeActivation`, each
 *   optionally parked on the host (activation offloading).
 */
export class GroupedMlp {
  constructor(
    readonly activation: ExpertActivation,
    readonly matMul: ExpertMatMul | null = null,
    /** Grouped GEMM override; default: the registered one (gpu-kernels' groupedMatMul). */
    readonly groupedGemm: GroupedGemm | null = null,
  ) {}

  private gemm(): GroupedGemm {
    return this.groupedGemm ?? getGroupedGemm();
  }

  forward(x: tf.Tensor2D, fc1: tf.Tensor3D, fc2: tf.Tensor3D, rowsPerExpert: ArrayLike<number>): tf.Tensor2D {
    checkShapes(x, fc1, fc2, rowsPerExpert, this.activation);
    return tf.tidy(() => {
      if (this.matMul) return this.perExpert(x, fc1, fc2, rowsPerExpert, this.matMul);
      const gg = this.gemm();
      const h = gg.matmul(x, fc1, rowsPerExpert);
      return gg.matmul(applyActivation(this.activation, h), fc2, rowsPerExpert);
    });
  }

  /** Per-expert loop for custom matmuls (quantized GEMMs need per-expert scales anyway). */
  private perExpert(x: tf.Tensor2D, fc1: tf.Tensor3D, fc2: tf.Tensor3D, rows: ArrayLike<number>, mm: ExpertMatMul): tf.Tensor2D {
    const outs: tf.Tensor2D[] = [];
    let start = 0;
    for (let g = 0; g < rows.length; g++) {
      const n = rows[g]!;
      if (n === 0) continue;
      const xg = tf.slice(x, [start, 0], [n, x.shape[1]]);
      const w1 = tf.reshape(tf.slice(fc1, [g, 0, 0], [1, fc1.shape[1], fc1.shape[2]]), [fc1.shape[1], fc1.shape[2]]) as tf.Tensor2D;
      const w2 = tf.reshape(tf.slice(fc2, [g, 0, 0], [1, fc2.shape[1], fc2.shape[2]]), [fc2.shape[1], fc2.shape[2]]) as tf.Tensor2D;
      outs.push(mm(applyActivation(this.activation, mm(xg, w1)), w2));
      start += n;
    }
    if (outs.length === 0) return tf.zeros([0, fc2.shape[2]]) as tf.Tensor2D;
    return (outs.length === 1 ? outs[0]! : tf.concat(outs, 0)) as tf.Tensor2D;
  }

  /** Same values and gradients as `forward` (fp32 GEMMs), with explicit control of saved activations. */
  forwardManaged(x: tf.Tensor2D, fc1: tf.Tensor3D, fc2: tf.Tensor3D, rowsPerExpert: ArrayLike<number>, memory: GroupedMlpMemory = {}): tf.Tensor2D {
    checkShapes(x, fc1, fc2, rowsPerExpert, this.activation);
    const kind = this.activation;
    const rows = Array.from(rowsPerExpert);
    const offload = new Set(memory.offload ?? []);
    const offloader = memory.offloader ?? new ActivationOffloader();
    const parkX = offload.has('expert_fc1') || offload.has('fused_group_mlp');
    const parkH = offload.has('moe_act') || offload.has('fused_group_mlp');
    const keepA = !memory.recomputeActivation;
    const parkA = keepA && offload.has('fused_group_mlp');
    const gg = this.gemm();
    const run = tf.customGrad((...args: unknown[]) => {
      const save = args.pop() as (ts: tf.Tensor[]) => void;
      const [xi, w1, w2] = args as [tf.Tensor2D, tf.Tensor3D, tf.Tensor3D];
      const h = gg.matmul(xi, w1, rows);
      const a = applyActivation(kind, h);
      const y = gg.matmul(a, w2, rows);
      // What backward needs: x (fc1 wgrad), h (activation grad), a (fc2 wgrad; or recompute from h).
      const hostX: HostTensor | null = parkX ? offloader.offload(xi) : null;
      const hostH: HostTensor | null = parkH ? offloader.offload(h) : null;
      const hostA: HostTensor | null = parkA ? offloader.offload(a) : null;
      const onDevice: tf.Tensor[] = [w1, w2];
      const slot = { x: -1, h: -1, a: -1 };
      if (!hostX) slot.x = onDevice.push(xi) - 1;
      if (!hostH) slot.h = onDevice.push(h) - 1;
      if (keepA && !hostA) slot.a = onDevice.push(a) - 1;
      save(onDevice);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const dY = dy as tf.Tensor2D;
          const [sw1, sw2] = saved as [tf.Tensor3D, tf.Tensor3D];
          const sx = (hostX ? offloader.reload(hostX) : saved[slot.x]!) as tf.Tensor2D;
          const sh = (hostH ? offloader.reload(hostH) : saved[slot.h]!) as tf.Tensor2D;
          const sa = (hostA ? offloader.reload(hostA) : keepA ? saved[slot.a]! : applyActivation(kind, sh)) as tf.Tensor2D;
          const dA = gg.matmul(dY, sw2, rows, { transposeB: true });
          const dW2 = gg.weightGrad(sa, dY, rows);
          const dH = activationBackward(kind, sh, dA);
          const dX = gg.matmul(dH, sw1, rows, { transposeB: true });
          const dW1 = gg.weightGrad(sx, dH, rows);
          return [dX, dW1, dW2];
        },
      };
    });
    return (run as unknown as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor2D)(x, fc1, fc2);
  }
}

function checkShapes(x: tf.Tensor2D, fc1: tf.Tensor3D, fc2: tf.Tensor3D, rows: ArrayLike<number>, kind: ExpertActivation): void {
  const [e, h, f1] = fc1.shape;
  if (fc2.shape[0] !== e || rows.length !== e) {
    throw new Error(`GroupedMlp: fc1 has ${e} experts, fc2 ${fc2.shape[0]}, rowsPerExpert ${rows.length}`);
  }
  if (x.shape[1] !== h || fc2.shape[2] !== h) throw new Error(`GroupedMlp: hidden sizes differ: x [${x.shape}], fc1 [${fc1.shape}], fc2 [${fc2.shape}]`);
  const expectF1 = kind === 'swiglu' ? 2 * fc2.shape[1] : fc2.shape[1];
  if (f1 !== expectF1) throw new Error(`GroupedMlp: fc1 width ${f1} does not match ${kind} with ffn ${fc2.shape[1]} (expected ${expectF1})`);
}
