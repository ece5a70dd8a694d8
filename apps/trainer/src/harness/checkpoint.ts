/**
 * Checkpoints: one safetensors file per run directory, replaced atomically, holding every
 * tensor of the training state (weights and optimizer slots) plus, as string metadata,
 * the job name, the step, the full config and the RNG state — all `--resume` needs to
 * continue bit for bit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, type RngState, type SafetensorsEntry, type SafetensorsInput, loadSafetensors, saveSafetensors } from '@kiln/tensor';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface Checkpoint {
  job: string;
  step: number;
  config: Config;
  rng: RngState;
  /** Job-specific JSON (e.g. a library's own resumable state). */
  extra: unknown;
  tensors: Record<string, SafetensorsEntry>;
}

export function checkpointPath(dir: string): string {
  return join(dir, CHECKPOINT_FILE);
}

export async function saveCheckpoint(
  dir: string,
  state: { job: string; step: number; config: Config; rng: RngState; extra?: unknown; tensors: Record<string, SafetensorsInput> },
): Promise<string> {
  const path = checkpointPath(dir);
  await saveSafetensors(path, state.tensors, {
    'kiln.format': '1',
    'kiln.job': state.job,
    'kiln.step': String(state.step),
    'kiln.config': JSON.stringify(state.config),
    'kiln.rng': JSON.stringify(state.rng),
    'kiln.extra': JSON.stringify(state.extra ?? null),
  });
  return path;
}

export async function loadCheckpoint(dir: string): Promise<Checkpoint | undefined> {
  const path = checkpointPath(dir);
  if (!existsSync(path)) return undefined;
  const { tensors, metadata } = await loadSafetensors(path);
  const meta = metadata ?? {};
  const need = (key: string): string => {
    const value = meta[key];
    if (value === undefined) throw new Error(`checkpoint ${path} lacks metadata '${key}': not written by kiln`);
    return value;
  };
  const step = Number(need('kiln.step'));
  if (!Number.isInteger(step) || step < 0) throw new Error(`checkpoint ${path}: metadata 'kiln.step' is ${JSON.stringify(meta['kiln.step'])}`);
  return {
    job: need('kiln.job'),
    step,
    config: JSON.parse(need('kiln.config')) as Config,
    rng: JSON.parse(need('kiln.rng')) as RngState,
    extra: JSON.parse(meta['kiln.extra'] ?? 'null'),
    tensors,
  };
}
