/** Checkpoints as safetensors (atomic writes through @kiln/tensor), with the config in the metadata. */
import { entryToTensor, loadSafetensors, saveSafetensors, type Tensor } from '@kiln/tensor';
import type { ParamStore } from '../model/params.js';
import type { PointCloudSslConfig } from './config.js';

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
