/**
 * The complete state of a pre-training or fine-tuning loop between two steps, so a caller
 * can checkpoint at any step and continue exactly: the steps done, the loop's RNG (scene
 * draws, augmentations, masks, serialization shuffles, label subsets), every weight (the
 * student, its heads, the EMA or frozen teacher), the Adam slots and counters, and the
 * history so far. The learning rate is constant and the EMA momentum is a function of the
 * step, so the step is the whole schedule state.
 *
 * Tensors are copied out as safetensors entries, so a captured state stays valid while
 * training goes on and can be written with `saveTrainingState` as it is.
 */
import { type Rng, type RngState, type SafetensorsEntry, entryToTensor, tensorToEntry, tf } from '@kiln/tensor';
import type { ParamStore } from '../model/params.js';
import type { PointCloudSslConfig } from './config.js';

export type TrainingPhase = 'pretrain' | 'finetune';

/** What one step reports (also the history entries). */
export interface StepInfo {
  step: number;
  steps: number;
  loss: number;
  /** Points in the step's batch. */
  points: number;
  ms: number;
  [extra: string]: number;
}

export interface TrainingState {
  phase: TrainingPhase;
  /** Steps done: the loop continues with step `step` (0-based). */
  step: number;
  /** The loop's RNG after step `step − 1`. */
  rng: RngState;
  /**
   * Every tensor of the state by name: `backbone/…`, `head/…`, `teacher/…` (EMA or frozen
   * teacher backbone), `teacher-head/…` (pre-training's EMA head), `optim/NNNN:…` (Adam's
   * iteration count and moments, in slot order) and `optim-acc/…` (Adam's β products).
   */
  tensors: Record<string, SafetensorsEntry>;
  /** The StepInfo of every step done (the result's history). */
  history: StepInfo[];
  /** The resolved config of the run; a state only resumes a run with the same config. */
  config: PointCloudSslConfig;
}

/** Handed to `onStep` with each step: captures the state after that step. */
export interface StepControl {
  state(): Promise<TrainingState>;
}

/** `onStep`'s answer: 'stop' ends the loop after this step (the result says `completed: false`). */
export type StepVerdict = undefined | 'stop';

const OPTIM = 'optim/';
const OPTIM_ACC = 'optim-acc/';
/**
 * tfjs's Adam keeps β1^t and β2^t as running products; `setWeights` recomputes them with
 * pow(), which differs from the products in the last bits, so they are saved as they are.
 */
const ACCUMULATORS = ['accBeta1', 'accBeta2'] as const;

function accumulators(optimizer: tf.Optimizer): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const field of ACCUMULATORS) {
    const v = (optimizer as unknown as Record<string, unknown>)[field];
    if (v instanceof tf.Variable) out[field] = v;
  }
  return out;
}

export async function captureOptimizer(optimizer: tf.Optimizer, into: Record<string, SafetensorsEntry>): Promise<void> {
  const weights = await optimizer.getWeights();
  // setWeights matches slots to variables by position, so the index leads the name.
  for (const [i, w] of weights.entries()) into[`${OPTIM}${String(i).padStart(4, '0')}:${w.name}`] = await tensorToEntry(w.tensor);
  for (const [field, v] of Object.entries(accumulators(optimizer))) into[`${OPTIM_ACC}${field}`] = await tensorToEntry(v);
}

export async function restoreOptimizer(optimizer: tf.Optimizer, tensors: Record<string, SafetensorsEntry>): Promise<void> {
  const names = Object.keys(tensors)
    .filter((n) => n.startsWith(OPTIM))
    .sort();
  if (names.length === 0) throw new Error("restore: the state has no optimizer slots (no 'optim/*' tensors)");
  const weights = names.map((n) => ({ name: n.slice(n.indexOf(':') + 1), tensor: entryToTensor(tensors[n]!, n) }));
  await optimizer.setWeights(weights);
  for (const w of weights) w.tensor.dispose();
  for (const [field, v] of Object.entries(accumulators(optimizer))) {
    const name = `${OPTIM_ACC}${field}`;
    const entry = tensors[name];
    if (!entry) throw new Error(`restore: the state lacks '${name}'`);
    const t = entryToTensor(entry, name);
    v.assign(t);
    t.dispose();
  }
}

export async function captureStore(prefix: string, store: ParamStore, into: Record<string, SafetensorsEntry>): Promise<void> {
  for (const [k, v] of store) into[`${prefix}/${k}`] = await tensorToEntry(v);
}

/** Assigns every parameter of `store` from `${prefix}/name`, checking presence and shape. */
export function restoreStore(prefix: string, store: ParamStore, tensors: Record<string, SafetensorsEntry>): void {
  for (const [k, v] of store) {
    const name = `${prefix}/${k}`;
    const entry = tensors[name];
    if (!entry) throw new Error(`restore: the state lacks tensor '${name}'`);
    if (entry.shape.join(',') !== v.shape.join(',')) throw new Error(`restore: tensor '${name}' has shape [${entry.shape}], the model expects [${v.shape}]`);
    const t = entryToTensor(entry, name);
    v.assign(t);
    t.dispose();
  }
}

/** The first config path where `a` and `b` differ ('finetune.steps'), or undefined. */
export function configDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = configDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return Object.is(a, b) ? undefined : path || '(root)';
}

/** Throws an Error naming what makes `state` unusable for this run. */
export function checkResumable(state: TrainingState, phase: TrainingPhase, config: PointCloudSslConfig, steps: number): void {
  if (state.phase !== phase) throw new Error(`resumeFrom: the state is from '${state.phase}', not '${phase}'`);
  const diff = configDifference(state.config, config);
  if (diff !== undefined) {
    const at = (c: unknown) => JSON.stringify(diff.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], c));
    throw new Error(`resumeFrom: config.${diff} is ${at(config)} but the state was saved with ${at(state.config)}`);
  }
  if (!Number.isInteger(state.step) || state.step < 0 || state.step > steps) throw new Error(`resumeFrom: step ${state.step} is outside 0..${steps}`);
  if (state.history.length !== state.step) throw new Error(`resumeFrom: the state has ${state.history.length} history entries for ${state.step} steps`);
}

/** Everything a training loop checkpoints, named once so capture and restore cannot drift apart. */
export interface LoopParts {
  phase: TrainingPhase;
  config: PointCloudSslConfig;
  /** The loop's step count (a state past it is refused). */
  steps: number;
  /** Weight stores by tensor-name prefix, in capture order; null for a store this run lacks. */
  stores: Record<string, ParamStore | null>;
  optimizer: tf.Optimizer;
  rng: Rng;
  /** The loop's history, appended to in place. */
  history: StepInfo[];
}

/** Restores `parts` from `state` after checking it belongs to this run; returns the step to continue with. */
export async function resumeLoop(parts: LoopParts, state: TrainingState): Promise<number> {
  checkResumable(state, parts.phase, parts.config, parts.steps);
  for (const [prefix, store] of Object.entries(parts.stores)) if (store) restoreStore(prefix, store, state.tensors);
  // Adam creates its slots on the first step, so a state at step 0 has none to restore.
  if (state.step > 0) await restoreOptimizer(parts.optimizer, state.tensors);
  parts.rng.setState(state.rng);
  parts.history.push(...structuredClone(state.history));
  return state.step;
}

/** The state of `parts` after `done` steps, copied out so training can go on. */
export async function captureLoop(parts: LoopParts, done: number): Promise<TrainingState> {
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const [prefix, store] of Object.entries(parts.stores)) if (store) await captureStore(prefix, store, tensors);
  if (done > 0) await captureOptimizer(parts.optimizer, tensors);
  return {
    phase: parts.phase,
    step: done,
    rng: parts.rng.getState(),
    tensors,
    history: structuredClone(parts.history),
    config: structuredClone(parts.config),
  };
}
