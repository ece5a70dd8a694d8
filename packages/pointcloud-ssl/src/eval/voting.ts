/**
 * Whole-scene evaluation by test-time fragment voting, as Pointcept's SemSegTester does: the
 * scene goes through the test transform, then each test-time augmentation, then GridSample in
 * test mode, whose fragments (part i keeps member i mod count of every cell) together cover
 * every point; each fragment runs through the model alone, its softmax probabilities are
 * added to the points it holds (through `index`), and every point takes the class with the
 * largest sum (the first on a tie). So a scene of any size is labelled point for point at full
 * resolution, however coarse the grid.
 */
import { createRng, tf } from '@kiln/tensor';
import { type TestPipeline, testPipeline } from '../data/pipeline.js';
import type { PointCloudBatch } from '../data/point-cloud.js';
import { Compose, GridSample, sampleFromScene, sceneFromSample } from '../data/transforms.js';
import type { PointBackbone } from '../model/backbone.js';
import type { ParamStore } from '../model/params.js';
import type { PointCloudSslConfig } from '../train/config.js';
import { type SceneSource, loadFromSource, modelInput, sourceSize } from '../train/dataset.js';
import { segLogits } from '../train/heads.js';
import { confusionMatrix, type SegMetrics, segMetrics } from './metrics.js';

export interface SegmentationModel {
  backbone: PointBackbone;
  head: ParamStore;
}

export interface ScenePrediction {
  /** Class per point of the scene as given. */
  prediction: Int32Array;
  /** Summed softmax probabilities, [points, classes] row-major. */
  votes: Float32Array;
  /** Fragments the scene was cut into (over all test-time augmentations). */
  fragments: number;
}

/** The config's test pipeline: Pointcept's test_cfg with GridSample at the serialization grid. */
export function configTestPipeline(config: PointCloudSslConfig): TestPipeline {
  return testPipeline({ gridSize: config.serialization.gridSize });
}

/** Labels one scene (a single-scene batch with colours in 0–1) by fragment voting. */
export async function predictScene(config: PointCloudSslConfig, model: SegmentationModel, scene: PointCloudBatch, pipeline: TestPipeline = configTestPipeline(config)): Promise<ScenePrediction> {
  const n = scene.coord.length / 3;
  const k = config.numClasses;
  const votes = new Float32Array(n * k);
  // The test transforms are deterministic unless a test-time augmentation draws; seed those.
  const rng = createRng(config.seed);
  const base = new Compose(pipeline.transform).apply({ ...sampleFromScene(scene), index: Int32Array.from({ length: n }, (_, i) => i) }, rng);
  const voxelize = new GridSample({ grid_size: pipeline.gridSize, mode: 'test' });
  const post = new Compose(pipeline.post);
  let fragments = 0;
  for (const aug of pipeline.augmentations) {
    const augmented = new Compose(aug).apply(base, rng);
    for (const part of voxelize.fragments(augmented)) {
      const fragment = post.apply(part, rng);
      const batch = sceneFromSample(fragment, 'test fragment');
      const input = modelInput(batch, config, { crossScene: false });
      const probsTensor = tf.tidy(() => tf.softmax(segLogits(model.head, model.backbone.forward(input.feat, input.structure))));
      input.feat.dispose();
      // Read asynchronously: a synchronous read fails on webgpu in Node.
      const probs = (await probsTensor.data()) as Float32Array;
      probsTensor.dispose();
      const index = fragment.index!;
      for (let j = 0; j < index.length; j++) {
        const row = index[j]! * k;
        for (let c = 0; c < k; c++) votes[row + c]! += probs[j * k + c]!;
      }
      fragments++;
    }
  }
  const prediction = new Int32Array(n);
  for (let p = 0; p < n; p++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (votes[p * k + c]! > votes[p * k + best]!) best = c;
    prediction[p] = best;
  }
  return { prediction, votes, fragments };
}

export interface VotingEvaluation {
  metrics: SegMetrics;
  scenes: number;
  /** Labelled points scored (label ≥ 0). */
  points: number;
  fragments: number;
}

/**
 * Scores every scene of `source` (read one at a time) by fragment voting against its labels
 * at full resolution; `onScene` reports progress.
 */
export async function evaluateByVoting(
  config: PointCloudSslConfig,
  model: SegmentationModel,
  source: SceneSource,
  options: { pipeline?: TestPipeline; onScene?: (done: number, total: number, prediction: ScenePrediction, scene: PointCloudBatch) => void | Promise<void> } = {},
): Promise<VotingEvaluation> {
  const k = config.numClasses;
  const confusion = new Float64Array(k * k);
  const total = sourceSize(source);
  let points = 0;
  let fragments = 0;
  for (let i = 0; i < total; i++) {
    const scene = await loadFromSource(source, i);
    const result = await predictScene(config, model, scene, options.pipeline);
    const label = scene.label ?? new Int32Array(result.prediction.length).fill(-1);
    for (let p = 0; p < label.length; p++) {
      if (label[p]! >= k) throw new Error(`evaluation: scene ${i} has label ${label[p]} but the model has ${k} classes`);
      if (label[p]! >= 0) points++;
    }
    confusionMatrix(result.prediction, label, k, confusion);
    fragments += result.fragments;
    await options.onScene?.(i + 1, total, result, scene);
  }
  return { metrics: segMetrics(confusion, k), scenes: total, points, fragments };
}
