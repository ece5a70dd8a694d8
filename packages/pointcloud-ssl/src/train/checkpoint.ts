/** Checkpoints as safetensors (atomic writes through @kiln/tensor), with the config in the metadata. */
import { entryToTensor, loadSafetensors, type RngState, saveSafetensors, type Tensor } from '@kiln/tensor';
import type { ParamStore } from '../model/params.js';
import type { PointCloudSslConfig } from './config.js';
import type { StepInfo, TrainingPhase, TrainingState } from './state.js';

export interface Checkpoint {
  tensors: Map<string, Tensor>;
  config: PointCloudSslConfig | null;
  kind: string;
}

/** Writes every parameter of the stores (names must not collide) and the config. */
export async function saveCheckpoint(path: string, stores: ParamStore[], config: PointCloudSslConfig, kind: string): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const store of stores) {
    for (const [k, v] of store) {
      if (tensors[k]) throw new Error(`saveCheckpoint: parameter '${k}' appears in two stores`);
      tensors[k] = v;
    }
  }
  await saveSafetensors(path, tensors, { format: 'kiln-pointcloud-ssl', kind, config: JSON.stringify(config) });
}

export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const file = await loadSafetensors(path);
  const tensors = new Map<string, Tensor>();
  for (const [k, e] of Object.entries(file.tensors)) tensors.set(k, entryToTensor(e, k));
  let config: PointCloudSslConfig | null = null;
  if (file.metadata?.config) {
    try {
      config = JSON.parse(file.metadata.config) as PointCloudSslConfig;
    } catch {
      throw new Error(`loadCheckpoint: ${path}: metadata 'config' is not JSON`);
    }
  }
  return { tensors, config, kind: file.metadata?.kind ?? 'unknown' };
}

const STATE_FORMAT = 'kiln-pointcloud-ssl-state';
const STATE_KEYS = ['phase', 'step', 'rng', 'history', 'config'] as const;

/**
 * Writes a training state (from `onStep`'s `control.state()`) as one safetensors file,
 * atomically: the tensors, and the phase, step, RNG, history and config as JSON metadata.
 * `metadata` adds string entries of the caller's (they must not use the state's keys).
 */
export async function saveTrainingState(path: string, state: TrainingState, metadata: Record<string, string> = {}): Promise<void> {
  for (const k of ['format', ...STATE_KEYS]) if (k in metadata) throw new Error(`saveTrainingState: metadata key '${k}' is reserved`);
  await saveSafetensors(path, state.tensors, {
    ...metadata,
    format: STATE_FORMAT,
    phase: state.phase,
    step: String(state.step),
    rng: JSON.stringify(state.rng),
    history: JSON.stringify(state.history),
    config: JSON.stringify(state.config),
  });
}

/** Reads a file written by `saveTrainingState`; errors name the file and the bad field. */
export async function loadTrainingState(path: string): Promise<{ state: TrainingState; metadata: Record<string, string> }> {
  const file = await loadSafetensors(path);
  const meta = file.metadata ?? {};
  if (meta.format !== STATE_FORMAT) throw new Error(`loadTrainingState: ${path} is not a training state (metadata format ${JSON.stringify(meta.format)})`);
  const json = <T>(key: string): T => {
    const raw = meta[key];
    if (raw === undefined) throw new Error(`loadTrainingState: ${path} lacks metadata '${key}'`);
    try {
      return JSON.parse(raw) as T;
    } catch {
      throw new Error(`loadTrainingState: ${path}: metadata '${key}' is not JSON`);
    }
  };
  const phase = meta.phase as TrainingPhase;
  if (phase !== 'pretrain' && phase !== 'finetune') throw new Error(`loadTrainingState: ${path}: metadata 'phase' is ${JSON.stringify(phase)}`);
  const step = Number(meta.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`loadTrainingState: ${path}: metadata 'step' is ${JSON.stringify(meta.step)}`);
  const state: TrainingState = {
    phase,
    step,
    rng: json<RngState>('rng'),
    history: json<StepInfo[]>('history'),
    config: json<PointCloudSslConfig>('config'),
    tensors: file.tensors,
  };
  return { state, metadata: meta };
}
