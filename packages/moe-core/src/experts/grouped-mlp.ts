import { tf } from '@kiln/tensor';
import type { ExpertActivation, OffloadModule } from '../config.js';
import { ActivationOffloader, type HostTensor } from '../memory/offload.js';
import { activationBackward, applyActivation } from './activation.js';
import { type GroupedGemm, getGroupedGemm } from './grouped-gemm.js';

/** The grouped GEMMs of the two expert layers (the same object for both unless quantized per GEMM). */
export interface ExpertGemms {
  fc1: GroupedGemm;
  fc2: GroupedGemm;
}

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
 * The routed experts over expert-contiguous rows (Megatron's GroupedMLP / TEGroupedMLP, or
 * SequentialMLP with the per-expert GEMM): rows of expert g are multiplied by fc1[g] ([H, F₁],
 * F₁ = 2F for SwiGLU), activated, multiplied by fc2[g] ([F, H]). Empty experts are fine. The
 * GEMMs come from `gemms`: gpu-kernels' grouped kernel (the default), the per-expert loop, or
 * quantized (FP8 / NVFP4) grouped GEMMs.
 *
 * Two ways to run it:
 * - `forward` — differentiated by tfjs;
 * - `forwardManaged` — a hand-written backward (customGrad) that decides what is saved:
 *   fc1 input and output always, the activation output unless `recomputeActivation`, each
 *   optionally parked on the host (activation offloading); backward frees each saved or
 *   reloaded activation as soon as it has used it.
 */
export class GroupedMlp {
  private readonly fixed: ExpertGemms | null;

  constructor(
    readonly activation: ExpertActivation,
    /** The GEMMs; default: the registered grouped GEMM (gpu-kernels' groupedMatMul) for both. */
    gemms: ExpertGemms | GroupedGemm | null = null,
  ) {
    this.fixed = gemms === null ? null : 'fc1' in gemms ? gemms : { fc1: gemms, fc2: gemms };
  }

  /** The GEMMs this MLP runs. */
  get gemms(): ExpertGemms {
    if (this.fixed) return this.fixed;
    const g = getGroupedGemm();
    return { fc1: g, fc2: g };
  }

  forward(x: tf.Tensor2D, fc1: tf.Tensor3D, fc2: tf.Tensor3D, rowsPerExpert: ArrayLike<number>): tf.Tensor2D {
    checkShapes(x, fc1, fc2, rowsPerExpert, this.activation);
    const { fc1: g1, fc2: g2 } = this.gemms;
    return tf.tidy(() => g2.matmul(applyActivation(this.activation, g1.matmul(x, fc1, rowsPerExpert)), fc2, rowsPerExpert));
  }

  /** Same values and gradients as `forward`, with explicit control of saved activations. */
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
    const { fc1: g1, fc2: g2 } = this.gemms;
    const run = tf.customGrad((...args: unknown[]) => {
      const save = args.pop() as (ts: tf.Tensor[]) => void;
      const [xi, w1, w2] = args as [tf.Tensor2D, tf.Tensor3D, tf.Tensor3D];
      const h = g1.matmul(xi, w1, rows);
      const a = applyActivation(kind, h);
      const y = g2.matmul(a, w2, rows);
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
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
          // tfjs keeps what a backward creates, and the tape's saved tensors, until the whole
          // backward pass ends: the activations are freed here as soon as they are used, so
          // the bytes parked on the host or recomputed are not all back on the backend by then.
          tf.tidy(() => {
            const dY = dy as tf.Tensor2D;
            const [sw1, sw2] = saved as [tf.Tensor3D, tf.Tensor3D];
            const sx = (hostX ? offloader.reload(hostX) : saved[slot.x]!) as tf.Tensor2D;
            const sh = (hostH ? offloader.reload(hostH) : saved[slot.h]!) as tf.Tensor2D;
            const sa = (hostA ? offloader.reload(hostA) : keepA ? saved[slot.a]! : applyActivation(kind, sh)) as tf.Tensor2D;
            const dA = g2.matmul(dY, sw2, rows, { transposeB: true });
            const dW2 = g2.weightGrad(sa, dY, rows);
            sa.dispose();
            const dH = activationBackward(kind, sh, dA);
            sh.dispose();
            const dX = g1.matmul(dH, sw1, rows, { transposeB: true });
            const dW1 = g1.weightGrad(sx, dH, rows);
            sx.dispose();
            return [dX, dW1, dW2];
          }),
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
