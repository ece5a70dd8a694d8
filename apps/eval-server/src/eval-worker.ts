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
  kind: 'segmentation';
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

if (parentPort && workerData) {
  run(workerData as EvalWorkerInput).catch((err: Error) => {
    // Rethrown errors reach the parent's 'error' event with their message.
    setImmediate(() => {
      throw err;
    });
  });
}
