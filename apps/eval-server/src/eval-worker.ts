/**
 * The evaluation worker (a worker thread, so a long evaluation never blocks the HTTP
 * loop). Kind `segmentation`: scores a checkpoint's per-point predictions (`predictions`
 * [N] or `logits` [N, C]) against a data set's `labels` [N], reports progress per chunk,
 * and writes the segmented cloud (`points` [N, 3] when present) for the dashboard's 3-D view.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type SafetensorsEntry, decodeSafetensors } from '@kiln/tensor';
import { ConfusionMatrix } from './segmentation.js';

export interface EvalWorkerInput {
  kind: 'segmentation' | 'pointcloud';
  checkpointPath: string;
  datasetPath: string;
  classes?: string[];
  /** Where to write the segmented cloud as JSON (inside the data folder). */
  pointsOutPath: string;
  /** At most this many points go to the 3-D view. */
  maxViewPoints: number;
}

export type EvalWorkerMessage =
  | { type: 'progress'; progress: number; message: string }
  | { type: 'done'; result: { miou: number; accuracy: number; classes: { name: string; iou: number | null; support: number }[]; viewPoints: number } };

function post(message: EvalWorkerMessage): void {
  parentPort!.postMessage(message);
}

function numbers(entry: SafetensorsEntry | undefined, what: string): ArrayLike<number> {
  if (!entry) throw new Error(`${what} is missing`);
  if (entry.data instanceof BigInt64Array || entry.data instanceof BigUint64Array) return Array.from(entry.data, Number);
  return entry.data as ArrayLike<number>;
}

function argmaxRows(logits: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[r * cols + c]! > logits[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}

async function run(input: EvalWorkerInput): Promise<void> {
  if (input.kind === 'pointcloud') return runPointcloud(input);
  post({ type: 'progress', progress: 0, message: 'reading checkpoint and data set' });
  const ckpt = decodeSafetensors(new Uint8Array(readFileSync(input.checkpointPath)), 'checkpoint');
  const data = decodeSafetensors(new Uint8Array(readFileSync(input.datasetPath)), 'dataset');
  const labels = numbers(data.tensors.labels, "data set tensor 'labels'");
  const n = labels.length;
  let predictions: ArrayLike<number>;
  let numClasses: number;
  if (ckpt.tensors.logits) {
    const shape = ckpt.tensors.logits.shape;
    if (shape.length !== 2 || shape[0] !== n) throw new Error(`checkpoint tensor 'logits' has shape [${shape}], expected [${n}, classes]`);
    numClasses = shape[1]!;
    predictions = argmaxRows(numbers(ckpt.tensors.logits, 'logits'), n, numClasses);
  } else {
    predictions = numbers(ckpt.tensors.predictions, "checkpoint tensor 'predictions' (or 'logits')");
    if (predictions.length !== n) throw new Error(`checkpoint has ${predictions.length} predictions, the data set ${n} labels`);
    numClasses = 0;
    for (let i = 0; i < n; i++) numClasses = Math.max(numClasses, labels[i]! + 1, predictions[i]! + 1);
  }
  let names = input.classes ?? [];
  if (names.length === 0 && data.metadata?.classes) names = JSON.parse(data.metadata.classes) as string[];
  if (names.length > numClasses) numClasses = names.length;

  const matrix = new ConfusionMatrix(numClasses);
  const chunk = Math.max(1, Math.ceil(n / 20));
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    matrix.add(labels, predictions, start, end);
    post({ type: 'progress', progress: 0.9 * (end / n), message: `scored ${end}/${n} points` });
  }
  const score = matrix.score(names);

  let viewPoints = 0;
  const points = data.tensors.points;
  if (points && points.shape.length === 2 && points.shape[0] === n && points.shape[1] === 3) {
    const xyz = numbers(points, 'points');
    const stride = Math.max(1, Math.ceil(n / input.maxViewPoints));
    const view = { classes: score.classes.map((c) => c.name), positions: [] as number[], labels: [] as number[], predictions: [] as number[] };
    for (let i = 0; i < n; i += stride) {
      view.positions.push(xyz[3 * i]!, xyz[3 * i + 1]!, xyz[3 * i + 2]!);
      view.labels.push(labels[i]!);
      view.predictions.push(predictions[i]!);
    }
    viewPoints = view.labels.length;
    const tmp = `${input.pointsOutPath}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(view));
    renameSync(tmp, input.pointsOutPath);
  }
  post({ type: 'progress', progress: 1, message: 'done' });
  post({ type: 'done', result: { ...score, viewPoints } });
}

/**
 * Kind `pointcloud`: a fine-tuned checkpoint written by `kiln pointcloud` (backbone and
 * segmentation head, config in the metadata) runs single-scene inference over the scenes of
 * the data set — a safetensors file of concatenated scenes (`coord` [N, 3], `color` [N, 3],
 * `label` [N], `offset` [scenes]) — one scene at a time, reporting progress per scene.
 */
async function runPointcloud(input: EvalWorkerInput): Promise<void> {
  const pc = await import('@kiln/pointcloud-ssl');
  const { createRng, initBackend } = await import('@kiln/tensor');
  await initBackend({ prefer: 'kiln-native' });
  post({ type: 'progress', progress: 0, message: 'loading the checkpoint' });
  const ckpt = await pc.loadCheckpoint(input.checkpointPath);
  if (ckpt.kind !== 'finetune' || !ckpt.config) throw new Error(`checkpoint is a '${ckpt.kind}' checkpoint${ckpt.config ? '' : ' without a config'}; a fine-tuned one is needed`);
  const config = ckpt.config;
  const rng = createRng(config.seed);
  const backbone = pc.buildModel(config.model, rng.fork());
  const head = pc.initSegHead(rng.fork(), backbone.outChannels, config.numClasses);
  const copied = pc.copyParams(backbone.params, ckpt.tensors).length + pc.copyParams(head, ckpt.tensors).length;
  if (copied !== backbone.params.size + head.size) throw new Error(`checkpoint holds ${copied} of the model's ${backbone.params.size + head.size} tensors`);

  const data = decodeSafetensors(new Uint8Array(readFileSync(input.datasetPath)), 'dataset');
  const need = (name: string): ArrayLike<number> => numbers(data.tensors[name], `data set tensor '${name}'`);
  const coord = Float32Array.from(need('coord'));
  const label = Int32Array.from(need('label'));
  const offset = Int32Array.from(need('offset'));
  const color = data.tensors.color ? Float32Array.from(need('color')) : undefined;
  const n = label.length;
  if (coord.length !== 3 * n || offset[offset.length - 1] !== n) throw new Error(`data set: coord has ${coord.length / 3} points, label ${n}, offset ends at ${offset[offset.length - 1]}`);
  const names = input.classes?.length ? input.classes : [...pc.S3DIS_CLASSES].slice(0, config.numClasses);
  const matrix = new ConfusionMatrix(config.numClasses);
  const predictions = new Int32Array(n);
  for (let s = 0; s < offset.length; s++) {
    const start = s === 0 ? 0 : offset[s - 1]!;
    const end = offset[s]!;
    const scene = {
      coord: coord.subarray(3 * start, 3 * end),
      label: label.subarray(start, end),
      offset: Int32Array.of(end - start),
      ...(color ? { color: color.subarray(3 * start, 3 * end) } : {}),
    };
    const features = await pc.extractFeatures(config, backbone, [scene], false, 1);
    const pred = await pc.predictWith(head, features);
    predictions.set(pred, start);
    matrix.add(scene.label, pred);
    post({ type: 'progress', progress: (0.9 * (s + 1)) / offset.length, message: `scene ${s + 1}/${offset.length}` });
  }
  const score = matrix.score(names);
  // The first scene, segmented, for the 3-D view.
  const first = offset[0]!;
  const view = { classes: score.classes.map((c) => c.name), positions: Array.from(coord.subarray(0, 3 * first)), labels: Array.from(label.subarray(0, first)), predictions: Array.from(predictions.subarray(0, first)) };
  const tmp = `${input.pointsOutPath}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(view));
  renameSync(tmp, input.pointsOutPath);
  post({ type: 'progress', progress: 1, message: 'done' });
  post({ type: 'done', result: { ...score, viewPoints: first } });
}

if (parentPort && workerData) {
  run(workerData as EvalWorkerInput).catch((err: Error) => {
    // Rethrown errors reach the parent's 'error' event with their message.
    setImmediate(() => {
      throw err;
    });
  });
}
