/**
 * The default data pipelines, written as Pointcept config entries. Training splits Pointcept's
 * transform list in two: the `sample` part selects points (once per scene) and the `view` part
 * augments them (once per view), so the two views CSP pre-training compares are the same
 * points; fine-tuning takes one view. Testing follows Pointcept's `test_cfg`: a transform,
 * GridSample in test mode (the fragments), a post-transform, and test-time augmentations.
 */
import type { TransformConfig } from './transforms.js';

export interface TrainingPipeline {
  /** Per scene, shared by every view: centring, dropout, voxelization, crop. */
  sample: TransformConfig[];
  /** Per view: rotation, scale, flip, jitter, colour augmentation, colour to 0–1. */
  view: TransformConfig[];
}

export interface TestPipeline {
  /** Applied to the whole scene first (deterministic). */
  transform: TransformConfig[];
  /** GridSample's cell size in test mode: one fragment per member of the fullest cell. */
  gridSize: number;
  /** Applied to each fragment before the model. */
  post: TransformConfig[];
  /** One pass per entry (each a transform list; [] = as is); the passes' votes add up. */
  augmentations: TransformConfig[][];
}

export interface PipelineOptions {
  /** GridSample's cell size (the serialization grid). */
  gridSize: number;
  /** SphereCrop's point_max for training (0: no crop). */
  maxPoints: number;
}

/**
 * Pointcept's S3DIS / ScanNet semantic-segmentation training transforms (PTv3 configs),
 * with GridSample at `gridSize` and SphereCrop at `maxPoints`.
 */
export function trainingPipeline({ gridSize, maxPoints }: PipelineOptions): TrainingPipeline {
  const sample: TransformConfig[] = [
    { type: 'CenterShift', apply_z: true },
    { type: 'RandomDropout', dropout_ratio: 0.2, dropout_application_ratio: 0.2 },
    { type: 'GridSample', grid_size: gridSize, hash_type: 'fnv', mode: 'train', return_grid_coord: true },
  ];
  if (maxPoints > 0) sample.push({ type: 'SphereCrop', point_max: maxPoints, mode: 'random' });
  sample.push({ type: 'CenterShift', apply_z: false });
  const view: TransformConfig[] = [
    { type: 'RandomRotate', angle: [-1, 1], axis: 'z', center: [0, 0, 0], p: 0.5 },
    { type: 'RandomRotate', angle: [-1 / 64, 1 / 64], axis: 'x', p: 0.5 },
    { type: 'RandomRotate', angle: [-1 / 64, 1 / 64], axis: 'y', p: 0.5 },
    { type: 'RandomScale', scale: [0.9, 1.1] },
    { type: 'RandomFlip', p: 0.5 },
    { type: 'RandomJitter', sigma: 0.005, clip: 0.02 },
    { type: 'ChromaticAutoContrast', p: 0.2, blend_factor: null },
    { type: 'ChromaticTranslation', p: 0.95, ratio: 0.05 },
    { type: 'ChromaticJitter', p: 0.95, std: 0.05 },
    { type: 'NormalizeColor' },
  ];
  return { sample, view };
}

/** Pointcept's test_cfg for semantic segmentation, with one pass (no test-time augmentation). */
export function testPipeline({ gridSize }: Pick<PipelineOptions, 'gridSize'>): TestPipeline {
  return {
    transform: [{ type: 'CenterShift', apply_z: true }, { type: 'NormalizeColor' }],
    gridSize,
    post: [{ type: 'CenterShift', apply_z: false }],
    augmentations: [[]],
  };
}
