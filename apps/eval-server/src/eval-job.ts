/**
 * One evaluation job, in its own process (started by jobs.ts with `fork`): the parent sends
 * the input once over IPC, this process reports progress and the result the same way, then
 * exits. A crash here (an exception, running out of memory, a native fault) ends this
 * process only; the parent turns it into a failed job with the reason.
 *
 * Kind `segmentation` scores a checkpoint's per-point predictions against a data set's
 * labels; kind `pointcloud` runs a fine-tuned `kiln pointcloud` checkpoint over the scenes of
 * a data set. Both check their inputs against each other (job-inputs.ts,
 * model-checkpoint.ts) before computing anything.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type PointCloudBatch, S3DIS_CLASSES, extractFeatures, predictWith } from '@kiln/pointcloud-ssl';
import { type SafetensorsFile, decodeSafetensors, initBackend } from '@kiln/tensor';
import { FILE_MODE } from './data-folder.js';
import { JobInputError, checkClassNames, scenesFor, segmentationInputs } from './job-inputs.js';
import { fineTunedConfig, loadFineTuned } from './model-checkpoint.js';
import { ScoreAccumulator, type SegmentationScore } from './scores.js';

export interface EvalJobInput {
  kind: 'segmentation' | 'pointcloud';
  checkpointPath: string;
  datasetPath: string;
  classes?: string[];
  /** Where to write the segmented cloud as JSON (inside the data folder). */
  pointsOutPath: string;
  /** At most this many points go to the 3-D view. */
  maxViewPoints: number;
}

export type EvalJobMessage =
  | { type: 'progress'; progress: number; message: string }
  | { type: 'done'; result: SegmentationScore & { viewPoints: number } }
  | { type: 'error'; message: string };

function post(message: EvalJobMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

function readSafetensors(path: string, what: 'checkpoint' | 'data set'): SafetensorsFile {
  // The message names the role, not the server's path of the file.
  return decodeSafetensors(new Uint8Array(readFileSync(path)), `the ${what}`);
}

/** Writes the view atomically, readable by the server's user only. */
function writeView(path: string, view: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(view), { mode: FILE_MODE });
  renameSync(tmp, path);
}

async function runSegmentation(input: EvalJobInput): Promise<void> {
  const checkpoint = readSafetensors(input.checkpointPath, 'checkpoint');
  const data = readSafetensors(input.datasetPath, 'data set');
  const { labels, predictions, classes, points } = segmentationInputs(checkpoint, data, input.classes);
  const n = labels.length;
  const scores = new ScoreAccumulator(classes);
  const chunk = Math.max(1, Math.ceil(n / 20));
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    scores.add(labels.subarray(start, end), predictions.subarray(start, end));
    await post({ type: 'progress', progress: 0.9 * (end / n), message: `scored ${end}/${n} points` });
  }
  const score = scores.score();
  let viewPoints = 0;
  if (points) {
    const stride = Math.max(1, Math.ceil(n / input.maxViewPoints));
    const view = { classes, positions: [] as number[], labels: [] as number[], predictions: [] as number[] };
    for (let i = 0; i < n; i += stride) {
      view.positions.push(points[3 * i]!, points[3 * i + 1]!, points[3 * i + 2]!);
      view.labels.push(labels[i]!);
      view.predictions.push(predictions[i]!);
    }
    viewPoints = view.labels.length;
    writeView(input.pointsOutPath, view);
  }
  await post({ type: 'done', result: { ...score, viewPoints } });
}

async function runPointcloud(input: EvalJobInput): Promise<void> {
  await initBackend({ prefer: 'kiln-native' });
  await post({ type: 'progress', progress: 0, message: 'checking the checkpoint and the data set' });
  const checkpoint = readSafetensors(input.checkpointPath, 'checkpoint');
  const data = readSafetensors(input.datasetPath, 'data set');
  const declared = fineTunedConfig(checkpoint);
  const scenes = scenesFor(data, { numClasses: declared.numClasses, color: declared.features.color, normal: declared.features.normal });
  const names = input.classes?.length ? checkClassNames(input.classes, 'job classes') : Array.from({ length: declared.numClasses }, (_, k) => S3DIS_CLASSES[k] ?? `class ${k}`);
  if (names.length !== declared.numClasses) throw new JobInputError(`the job names ${names.length} classes, the checkpoint's model has ${declared.numClasses}`);
  const { config, backbone, head } = loadFineTuned(checkpoint);
  const { coord, color, normal, label, offset } = scenes;
  const scores = new ScoreAccumulator(names);
  const predictions = new Int32Array(label.length);
  for (let s = 0; s < offset.length; s++) {
    const start = s === 0 ? 0 : offset[s - 1]!;
    const end = offset[s]!;
    const scene: PointCloudBatch = {
      coord: coord.subarray(3 * start, 3 * end),
      label: label.subarray(start, end),
      offset: Int32Array.of(end - start),
      ...(color ? { color: color.subarray(3 * start, 3 * end) } : {}),
      ...(normal ? { normal: normal.subarray(3 * start, 3 * end) } : {}),
    };
    const features = await extractFeatures(config, backbone, [scene], false, 1);
    const pred = await predictWith(head, features);
    predictions.set(pred, start);
    scores.add(label.subarray(start, end), pred);
    await post({ type: 'progress', progress: (0.9 * (s + 1)) / offset.length, message: `scene ${s + 1}/${offset.length}` });
  }
  const score = scores.score();
  // The first scene, segmented, for the 3-D view (every maxViewPoints-th point at most).
  const first = offset[0]!;
  const stride = Math.max(1, Math.ceil(first / input.maxViewPoints));
  const view = { classes: names, positions: [] as number[], labels: [] as number[], predictions: [] as number[] };
  for (let i = 0; i < first; i += stride) {
    view.positions.push(coord[3 * i]!, coord[3 * i + 1]!, coord[3 * i + 2]!);
    view.labels.push(label[i]!);
    view.predictions.push(predictions[i]!);
  }
  writeView(input.pointsOutPath, view);
  await post({ type: 'done', result: { ...score, viewPoints: view.labels.length } });
}

async function run(input: EvalJobInput): Promise<void> {
  try {
    await (input.kind === 'pointcloud' ? runPointcloud(input) : runSegmentation(input));
    process.exit(0);
  } catch (err) {
    await post({ type: 'error', message: (err as Error).message ?? String(err) });
    process.exit(1);
  }
}

if (process.send) process.once('message', (input: EvalJobInput) => void run(input));
