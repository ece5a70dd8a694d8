/**
 * `mpirun -np 2` and `-np 4` of `kiln pointcloud` on a data folder: data parallel over MPI
 * ranks (each rank reading its own shards of the scenes, gradients all-reduced) takes the steps
 * one process takes accumulating the same micro-batches — pre-training and fine-tuning, to
 * float rounding. Skipped, with the reason printed, where mpirun or @kiln/mpi is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadSafetensors } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { KILN_BIN, kiln, metricRecords, mpiSkipReason, tempDir } from './test-support.js';

const reason = mpiSkipReason();
if (reason) console.log(`[skip] pointcloud mpirun tests skipped: ${reason}`);

const FIXTURES = join(dirname(createRequire(import.meta.url).resolve('@kiln/pointcloud-ssl/package.json')), 'src', 'data', 'fixtures');
// Four training rooms (Pointcept-preprocessed S3DIS, written by numpy), one per micro-batch.
const ARGS = [
  'pointcloud',
  '--preset',
  'tiny',
  '--quiet',
  ...['--data', join(FIXTURES, 'pointcept-s3dis'), '--dataset', 's3dis', '--train-split', 'Area_1,Area_2,Area_5', '--val-split', 'Area_5'],
  ...['--grid-size', '0.2', '--max-points', '48', '--pretrain-steps', '3', '--finetune-steps', '3', '--pretrain-batch-scenes', '1', '--finetune-batch-scenes', '1'],
];
const MICRO_BATCHES = 4;

const curve = (dir: string, phase: string) => metricRecords(dir).filter((r) => r.phase === phase).map((r) => r.loss!);

async function weights(path: string): Promise<number[]> {
  const { tensors } = await loadSafetensors(path);
  return Object.keys(tensors)
    .sort()
    .flatMap((k) => Array.from(tensors[k]!.data as Float32Array));
}

describe.skipIf(reason !== '')('kiln pointcloud under mpirun', () => {
  it('2 and 4 ranks take the steps of one process accumulating the same 4 micro-batches', async () => {
    const single = tempDir();
    const one = await kiln([...ARGS, '--pretrain-accumulation', '4', '--finetune-accumulation', '4', '--out', single]);
    expect(one.code, one.stderr).toBe(0);
    const reference = { pretrain: curve(single, 'pretrain'), finetune: curve(single, 'finetune') };
    expect(reference.pretrain).toHaveLength(3);
    const referenceWeights = await weights(join(single, 'finetune.safetensors'));
    for (const np of [2, 4]) {
      const out = tempDir();
      const perRank = String(MICRO_BATCHES / np);
      const args = [...ARGS, '--pretrain-accumulation', perRank, '--finetune-accumulation', perRank, '--out', out];
      const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), process.execPath, KILN_BIN, ...args], {
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, KILN_BACKEND: 'cpu' },
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      for (const phase of ['pretrain', 'finetune'] as const) {
        const got = curve(out, phase);
        expect(got).toHaveLength(3);
        for (const [i, loss] of got.entries()) expect(Math.abs(loss - reference[phase][i]!)).toBeLessThan(2e-4 * Math.max(1, reference[phase][i]!));
      }
      const w = await weights(join(out, 'finetune.safetensors'));
      expect(w.length).toBe(referenceWeights.length);
      let worst = 0;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i]! - referenceWeights[i]!));
      expect(worst).toBeLessThan(1e-3);
      // rank 0 checkpoints and evaluates; the others keep quiet records of their own
      expect(existsSync(join(out, 'eval.json'))).toBe(true);
      expect(existsSync(join(out, `rank-${np - 1}`, 'metrics.jsonl'))).toBe(true);
      expect(existsSync(join(out, `rank-${np - 1}`, 'finetune.safetensors'))).toBe(false);
    }
  }, 600_000);
});
