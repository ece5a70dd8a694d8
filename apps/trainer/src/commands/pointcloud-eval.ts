/**
 * Evaluation and prediction of `kiln pointcloud`: whole validation scenes labelled by
 * test-time fragment voting (Pointcept's tester), mIoU and IoU per class against their full-
 * resolution labels; and `predict`, which labels one scene file and writes it as a PLY with
 * an integer `label` per point.
 */
import {
  type Dataset,
  type ParamStore,
  type PointCloudBatch,
  type PointCloudSslConfig,
  type PointBackbone,
  buildModel,
  copyParams,
  evaluate,
  evaluateByVoting,
  initSegHead,
  predictScene,
  readPointCloud,
  splitScenes,
  syntheticSplits,
  writePly,
} from '@kiln/pointcloud-ssl';
import { createRng, type tf } from '@kiln/tensor';
import type { CommandContext } from '../cli/command.js';
import { UsageError } from '../cli/errors.js';
import type { RunRecorder } from '../harness/recorder.js';
import { asUsageError } from './pointcloud-config.js';

export interface SegModel {
  backbone: PointBackbone;
  head: ParamStore;
}

/** The fine-tuned model held by a checkpoint's tensors. */
export function modelFromCheckpoint(config: PointCloudSslConfig, tensors: Map<string, tf.Tensor>, path: string): SegModel {
  const rng = createRng(config.seed);
  const backbone = buildModel(config.model, rng.fork());
  const head = initSegHead(rng.fork(), backbone.outChannels, config.numClasses);
  const copied = copyParams(backbone.params, tensors).length + copyParams(head, tensors).length;
  if (copied !== backbone.params.size + head.size) {
    throw new UsageError(`${path} holds ${copied} of the ${backbone.params.size + head.size} tensors of the fine-tuned model`);
  }
  return { backbone, head };
}

export function classNames(config: PointCloudSslConfig): string[] {
  return Array.from({ length: config.numClasses }, (_, k) => config.data.classes[k] ?? `class ${k}`);
}

/** Up to `max` points of a scene, evenly strided (for the dashboard's 3-D view). */
function stride(n: number, max: number): number[] {
  const step = Math.max(1, Math.ceil(n / max));
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  return out;
}

/**
 * Scores the validation scenes (read one at a time) by fragment voting, prints mIoU and IoU
 * per class, writes eval.json, and sends the result and a 3-D view to the eval server. On the
 * synthetic data also the batch-vs-single gap and the cross-scene consistency.
 */
export async function runEvaluation(ctx: CommandContext, recorder: RunRecorder, config: PointCloudSslConfig, dataset: Dataset, model: SegModel): Promise<number> {
  if (dataset.val.length === 0) throw new UsageError(`no validation scenes in ${dataset.root || 'the data set'} (set --val-split)`);
  const names = classNames(config);
  const view = { classes: names, positions: [] as number[], labels: [] as number[], predictions: [] as number[] };
  const progress = recorder.progress('eval (fragment voting)', dataset.val.length);
  let shift = 0;
  const result = await evaluateByVoting(config, model, { refs: dataset.val }, {
    onScene: (done, _total, prediction, scene) => {
      progress.update(done, `${scene.coord.length / 3} points, ${prediction.fragments} fragments`);
      if (done > 4) return;
      // The first scenes side by side along x (each shifted past the previous one), for display.
      const pick = stride(scene.coord.length / 3, 20_000 / 4);
      let minX = Number.POSITIVE_INFINITY;
      let maxX = Number.NEGATIVE_INFINITY;
      for (const i of pick) {
        minX = Math.min(minX, scene.coord[3 * i]!);
        maxX = Math.max(maxX, scene.coord[3 * i]!);
      }
      for (const i of pick) {
        view.positions.push(scene.coord[3 * i]! - minX + shift, scene.coord[3 * i + 1]!, scene.coord[3 * i + 2]!);
        view.labels.push(scene.label?.[i] ?? -1);
        view.predictions.push(prediction.prediction[i]!);
      }
      shift += maxX - minX + 1;
    },
  }).catch((err: unknown) => {
    throw asUsageError(err);
  });
  progress.finish();
  const m = result.metrics;
  const classes = m.iou.map((iou, k) => ({ name: names[k]!, iou: Number.isFinite(iou) ? iou : null }));
  const summary: Record<string, unknown> = { mIoU: m.mIoU, mAcc: m.mAcc, OA: m.OA, classes, valScenes: result.scenes, points: result.points, fragments: result.fragments, protocol: 'whole scenes, test-time fragment voting' };
  const logged: Record<string, number | string> = { phase: 'final', mIoU: m.mIoU, mAcc: m.mAcc, OA: m.OA };
  const pct = (v: number) => (100 * v).toFixed(2);
  const lines = [`mIoU ${pct(m.mIoU)}  mAcc ${pct(m.mAcc)}  OA ${pct(m.OA)}  (${result.scenes} whole validation scenes, ${result.points} labelled points, fragment voting over ${result.fragments} fragments)`];
  if (config.data.type === 'synthetic') {
    // The research metrics of the synthetic benchmark (point-wise, no voxelization).
    const r = await evaluate(config, { backbone: model.backbone, head: model.head, data: syntheticSplits(config) });
    Object.assign(summary, { singleMIoU: r.single.mIoU, batchMIoU: r.batch.mIoU, batchGap: r.gap, featureShift: r.featureShift, consistency: r.consistency });
    Object.assign(logged, { singleMIoU: r.single.mIoU, batchMIoU: r.batch.mIoU, batchGap: r.gap });
    lines.push(`point-wise single-scene mIoU ${pct(r.single.mIoU)}; batch-of-${config.eval.batchScenes} inference: mIoU ${pct(r.batch.mIoU)} (gap ${r.gap >= 0 ? '+' : ''}${pct(r.gap)})`);
  }
  await recorder.writeJson('eval.json', summary);
  recorder.log(0, logged, 'eval');
  await recorder.artifact('val-scenes.points.json', new TextEncoder().encode(JSON.stringify(view)));
  await recorder.result('pointcloud', { split: `${dataset.type} val (${result.scenes} scenes)`, miou: m.mIoU, accuracy: m.OA, classes, pointsArtifact: 'val-scenes.points.json' });
  lines.push('IoU per class:', ...classes.map((c) => `  ${c.name.padEnd(14)} ${c.iou === null ? '   n/a' : pct(c.iou).padStart(6)}`));
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return m.mIoU;
}

/**
 * Labels every point of `input` (any file or folder readPointCloud reads; several scenes are
 * labelled one by one) and writes `out` as a PLY: the points as read, colours and normals when
 * present, and an int `label` property, the class names in a header comment.
 */
export async function predictToPly(ctx: CommandContext, config: PointCloudSslConfig, model: SegModel, input: string, out: string): Promise<void> {
  let cloud: PointCloudBatch;
  try {
    cloud = await readPointCloud(input);
  } catch (err) {
    throw asUsageError(err);
  }
  const scenes = splitScenes(cloud);
  const prediction = new Int32Array(cloud.coord.length / 3);
  let at = 0;
  let correct = 0;
  let labelled = 0;
  for (const scene of scenes) {
    const p = (await predictScene(config, model, scene)).prediction;
    prediction.set(p, at);
    for (let i = 0; i < p.length; i++) {
      const l = scene.label?.[i] ?? -1;
      if (l < 0) continue;
      labelled++;
      if (l === p[i]) correct++;
    }
    at += p.length;
  }
  const names = classNames(config);
  const written: PointCloudBatch = { coord: cloud.coord, offset: Int32Array.of(prediction.length), label: prediction };
  if (cloud.color) written.color = cloud.color;
  if (cloud.normal) written.normal = cloud.normal;
  await writePly(out, written, {
    comments: ['kiln pointcloud predict: label = predicted class id', `classes ${JSON.stringify(names)}`],
  });
  const counts = new Map<number, number>();
  for (const p of prediction) counts.set(p, (counts.get(p) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  ctx.stdout.write(
    `${out}: ${prediction.length} points in ${scenes.length} scene(s) labelled; most common: ${top.map(([k, n]) => `${names[k]} ${((100 * n) / prediction.length).toFixed(1)}%`).join(', ')}\n`,
  );
  if (labelled > 0) ctx.stdout.write(`agreement with the labels in ${input}: ${((100 * correct) / labelled).toFixed(2)}% of ${labelled} labelled points\n`);
}
