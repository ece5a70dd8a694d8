/** Test fixtures: a tiny fine-tuned `kiln pointcloud` checkpoint, its pre-training checkpoint and scenes. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@kiln/tensor';

export interface PointcloudFixture {
  finetune: Uint8Array;
  pretrain: Uint8Array;
  /** The validation scenes as the `pointcloud` job reads them. */
  dataset: Uint8Array;
  /** mIoU and IoU per class from the library's own `evaluate` (single-scene inference). */
  expected: { mIoU: number; iou: number[] };
  points: number;
  /** Points of the first scene (the one the 3-D view shows). */
  firstScene: number;
  classes: number;
}

export async function pointcloudFixture(): Promise<PointcloudFixture> {
  const pc = await import('@kiln/pointcloud-ssl');
  const { initBackend } = await import('@kiln/tensor');
  await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  const dir = mkdtempSync(join(tmpdir(), 'kiln-pc-'));
  const tuned = await pc.finetune('tiny', { overrides: { finetune: { steps: 1 } } });
  await pc.saveCheckpoint(join(dir, 'finetune.safetensors'), [tuned.backbone.params, tuned.head], tuned.config, 'finetune');
  await pc.saveCheckpoint(join(dir, 'pretrain.safetensors'), [tuned.backbone.params], tuned.config, 'pretrain');
  const val = pc.syntheticSplits(tuned.config).val;
  const all = pc.concatScenes(val);
  const n = all.coord.length / 3;
  const dataset = encodeSafetensors({
    coord: { dtype: 'F32', shape: [n, 3], data: all.coord },
    color: { dtype: 'F32', shape: [n, 3], data: all.color! },
    label: { dtype: 'I32', shape: [n], data: all.label! },
    offset: { dtype: 'I32', shape: [all.offset.length], data: all.offset },
  });
  const expected = (await pc.evaluate(tuned.config, { backbone: tuned.backbone, head: tuned.head, data: { train: [], val } })).single;
  return {
    finetune: readFileSync(join(dir, 'finetune.safetensors')),
    pretrain: readFileSync(join(dir, 'pretrain.safetensors')),
    dataset,
    expected: { mIoU: expected.mIoU, iou: expected.iou },
    points: n,
    firstScene: val[0]!.label!.length,
    classes: tuned.config.numClasses,
  };
}
