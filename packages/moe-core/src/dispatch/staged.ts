import { tf } from '@kiln/tensor';
import { vjp } from '../memory/recompute.js';

/** A step computed on this rank with tf ops (synchronous, differentiable). */
export interface LocalStep {
  kind: 'local';
  name: string;
  inputs: string[];
  outputs: string[];
  run(xs: tf.Tensor[]): tf.Tensor[];
  /**
   * The communication step this one hides: placed after it in the list, it runs while that
   * step's messages are in flight in forward; in backward it runs after that step's adjoint
   * has been started, so it hides the reverse communication too.
   */
  overlaps?: string;
}

/** A communication step: asynchronous, with its own adjoint (e.g. all-to-all ↔ reverse all-to-all). */
export interface CommStep {
  kind: 'comm';
  name: string;
  inputs: string[];
  outputs: string[];
  forward(xs: tf.Tensor[]): Promise<tf.Tensor[]>;
  /** Cotangents of the outputs (zeros where none flowed) → cotangents of the inputs. */
  backward(dys: tf.Tensor[]): Promise<tf.Tensor[]>;
}

export type Step = LocalStep | CommStep;

/** Wall time per step and direction, in milliseconds. */
export type StepTimings = Record<string, { forwardMs: number; backwardMs: number }>;

/**
 * Runs a list of steps forward and backward across asynchronous communication. tfjs's tape
 * cannot span an `await`, so each local step is differentiated on its own: backward re-runs
 * the step under a fresh tape and takes the vector–Jacobian product with the incoming
 * cotangents (so only step boundaries are stored, at the price of one extra forward of each
 * local step). Communication steps are started without waiting: a later local step that does
 * not need their result (the shared experts) runs while the messages are in flight; in
 * backward, a step marked `overlaps` waits until the adjoint of the communication it hides
 * has been started, and then runs while that is in flight.
 */
export class StagedGraph {
  readonly timings: StepTimings = {};
  private readonly values = new Map<string, Promise<tf.Tensor>>();
  private readonly stepInputs = new Map<string, tf.Tensor[]>();
  private readonly shapes = new Map<string, number[]>();

  constructor(readonly steps: Step[]) {
    const produced = new Set<string>();
    for (const [i, s] of steps.entries()) {
      for (const o of s.outputs) {
        if (produced.has(o)) throw new Error(`StagedGraph: value '${o}' is produced twice (by ${s.name})`);
        produced.add(o);
      }
      if (s.kind === 'local' && s.overlaps !== undefined) {
        const j = steps.findIndex((c) => c.name === s.overlaps);
        if (j < 0 || steps[j]!.kind !== 'comm' || j > i) {
          throw new Error(`StagedGraph: step ${s.name} overlaps '${s.overlaps}', which is not a communication step before it`);
        }
      }
    }
  }

  private time(name: string, dir: 'forwardMs' | 'backwardMs', ms: number): void {
    if (!this.timings[name]) this.timings[name] = { forwardMs: 0, backwardMs: 0 };
    const t = this.timings[name]!;
    t[dir] += ms;
  }

  private get(name: string): Promise<tf.Tensor> {
    const v = this.values.get(name);
    if (!v) throw new Error(`StagedGraph: value '${name}' is used before it is produced`);
    return v;
  }

  /** Feeds named inputs, runs every step, resolves the named outputs. */
  async forward(feeds: Record<string, tf.Tensor>, outputs: string[]): Promise<tf.Tensor[]> {
    for (const [k, v] of Object.entries(feeds)) this.values.set(k, Promise.resolve(v));
    for (const step of this.steps) {
      const ins = Promise.all(step.inputs.map((n) => this.get(n)));
      let outs: Promise<tf.Tensor[]>;
      if (step.kind === 'local') {
        const xs = await ins;
        const t0 = performance.now();
        const ys = step.run(xs);
        this.time(step.name, 'forwardMs', performance.now() - t0);
        outs = Promise.resolve(ys);
      } else {
        // not awaited: the next local steps overlap with the messages in flight
        outs = ins.then(async (xs) => {
          const t0 = performance.now();
          const ys = await step.forward(xs);
          this.time(step.name, 'forwardMs', performance.now() - t0);
          return ys;
        });
        // one macrotask turn lets the communication issue its sends (everything up to its
        // first wait for a peer) before the next local step occupies the thread
        await new Promise<void>((r) => setImmediate(r));
      }
      this.stepInputs.set(step.name, []);
      // failures surface through the outputs' promises; this bookkeeping branch must not also reject
      ins.then((xs) => this.stepInputs.set(step.name, xs)).catch(() => undefined);
      step.outputs.forEach((o, i) => {
        const p = outs.then((ys) => {
          const y = ys[i];
          if (!y) throw new Error(`StagedGraph: step ${step.name} did not return output '${o}'`);
          this.shapes.set(o, y.shape);
          return y;
        });
        this.values.set(o, p);
      });
    }
    return Promise.all(outputs.map((o) => this.get(o)));
  }

  /**
   * Back-propagates `seeds` (cotangents of named outputs) and returns the cotangents of the
   * named `wrt` values (zeros where no gradient flowed).
   */
  async backward(seeds: Record<string, tf.Tensor>, wrt: string[]): Promise<Record<string, tf.Tensor>> {
    const grads = new Map<string, Promise<tf.Tensor>[]>();
    const add = (name: string, g: Promise<tf.Tensor>) => {
      const list = grads.get(name) ?? [];
      list.push(g);
      grads.set(name, list);
    };
    for (const [k, v] of Object.entries(seeds)) add(k, Promise.resolve(v));
    const total = async (name: string): Promise<tf.Tensor | null> => {
      const list = grads.get(name);
      if (!list || list.length === 0) return null;
      const parts = await Promise.all(list);
      return parts.length === 1 ? parts[0]! : tf.addN(parts);
    };
    const runLocal = async (step: LocalStep) => {
      const dys = await Promise.all(step.outputs.map((o) => total(o)));
      if (dys.every((d) => d === null)) return;
      const xs = this.stepInputs.get(step.name)!;
      const t0 = performance.now();
      const dxs = vjp((ins) => step.run(ins), xs, dys);
      this.time(step.name, 'backwardMs', performance.now() - t0);
      step.inputs.forEach((n, i) => {
        add(n, Promise.resolve(dxs[i]!));
      });
    };
    // Steps that hide a communication wait for its adjoint to start (or for a step that
    // produces one of their inputs, which needs their cotangents).
    const deferred: LocalStep[] = [];
    const runDeferred = async (when: (d: LocalStep) => boolean) => {
      for (const d of deferred.filter(when)) {
        deferred.splice(deferred.indexOf(d), 1);
        await runLocal(d);
      }
    };
    for (let s = this.steps.length - 1; s >= 0; s--) {
      const step = this.steps[s]!;
      await runDeferred((d) => d.inputs.some((n) => step.outputs.includes(n)));
      if (step.kind === 'local') {
        if (step.overlaps !== undefined) deferred.push(step);
        else await runLocal(step);
      } else {
        const dysP = Promise.all(step.outputs.map((o) => total(o)));
        const dxsP = dysP.then(async (dys) => {
          const filled = dys.map((d, i) => d ?? tf.zeros(this.shapes.get(step.outputs[i]!)!));
          const t0 = performance.now();
          const dxs = await step.backward(filled);
          this.time(step.name, 'backwardMs', performance.now() - t0);
          return dxs;
        });
        step.inputs.forEach((n, i) => {
          add(n, dxsP.then((d) => d[i]!));
        });
        // one macrotask turn lets the adjoint issue its sends before local work takes the thread
        await new Promise<void>((r) => setImmediate(r));
        await runDeferred((d) => d.overlaps === step.name);
      }
    }
    await runDeferred(() => true);
    const out: Record<string, tf.Tensor> = {};
    for (const n of wrt) {
      const g = await total(n);
      out[n] = g ?? tf.zerosLike(await this.get(n));
    }
    return out;
  }
}

/** Rows of a [n, H] tensor cut into consecutive blocks of the given row counts, as host arrays. */
export async function splitRows(t: tf.Tensor, counts: ArrayLike<number>): Promise<Float32Array[]> {
  const data = (await t.data()) as Float32Array;
  // from the shape, not size / rows: a rank whose experts received no rows has a [0, H] tensor
  const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const out: Float32Array[] = [];
  let start = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]! * width;
    out.push(data.slice(start, start + n));
    start += n;
  }
  if (start !== data.length) throw new Error(`splitRows: counts cover ${start / width} rows of ${t.shape[0]}`);
  return out;
}

/** Concatenates host row blocks into a [rows, width] tensor. */
export function joinRows(parts: Float32Array[], width: number): tf.Tensor2D {
  let n = 0;
  for (const p of parts) n += p.length;
  const data = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return tf.tensor2d(data, [n / width, width]);
}
