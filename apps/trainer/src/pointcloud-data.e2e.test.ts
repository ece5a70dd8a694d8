/**
 * `kiln pointcloud` on a data folder, as a user runs it: a two-scene Pointcept-layout folder
 * written by numpy goes through pretrain → finetune → eval → predict from the CLI (rooms of
 * 1,200 points trained on 256-point crops, evaluated and labelled whole); config-file keys;
 * and every kind of bad folder or flag answered with exit 2 and a message naming the file.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readPly } from '@kiln/pointcloud-ssl';
import { describe, expect, it } from 'vitest';
import { kiln, metricRecords, tempDir } from './test-support.js';

const FIXTURES = join(dirname(createRequire(import.meta.url).resolve('@kiln/pointcloud-ssl/package.json')), 'src', 'data', 'fixtures');
const E2E = join(FIXTURES, 'pointcept-e2e');
const DATA = ['--data', E2E, '--dataset', 'pointcept', '--num-classes', '13', '--grid-size', '0.1', '--max-points', '256'];
const TINY = ['--preset', 'tiny', '--quiet', '--loader-workers', '1'];

describe('kiln pointcloud on a Pointcept-layout folder', () => {
  it('pre-trains, fine-tunes on crops, evaluates whole scenes and labels a scene, from the CLI', async () => {
    const started = Date.now();
    const dir = tempDir();
    const pre = await kiln(['pointcloud', 'pretrain', ...TINY, ...DATA, '--pretrain-steps', '2', '--pretrain-batch-scenes', '1', '--out', join(dir, 'pre')]);
    expect(pre.code, pre.stderr).toBe(0);
    const ft = await kiln([
      'pointcloud',
      'finetune',
      ...TINY,
      ...DATA,
      '--finetune-steps',
      '2',
      '--finetune-batch-scenes',
      '1',
      '--pretrained',
      join(dir, 'pre', 'pretrain.safetensors'),
      '--out',
      join(dir, 'ft'),
    ]);
    expect(ft.code, ft.stderr).toBe(0);
    // trained on crops: at most 256 points per step (the scene has 1,200) ...
    const steps = metricRecords(join(dir, 'ft')).filter((r) => r.phase === 'finetune');
    expect(steps).toHaveLength(2);
    for (const s of steps) expect(s.points as number).toBeLessThanOrEqual(256);
    // ... and evaluated whole: every one of the validation room's 1,200 points scored
    const evaluation = JSON.parse(readFileSync(join(dir, 'ft', 'eval.json'), 'utf8'));
    expect(evaluation).toMatchObject({ valScenes: 1, points: 1200, protocol: 'whole scenes, test-time fragment voting' });
    expect(evaluation.fragments).toBeGreaterThan(1);
    expect(ft.stdout).toMatch(/mIoU \d+\.\d+ {2}mAcc/);

    const ev = await kiln(['pointcloud', 'eval', '--quiet', '--checkpoint', join(dir, 'ft', 'finetune.safetensors'), '--out', join(dir, 'ev')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'ev', 'eval.json'), 'utf8')).mIoU).toBeCloseTo(evaluation.mIoU, 10);

    const out = join(dir, 'room_b.labelled.ply');
    const pred = await kiln(['pointcloud', 'predict', '--checkpoint', join(dir, 'ft', 'finetune.safetensors'), '--input', join(E2E, 'val', 'room_b'), '--out', out]);
    expect(pred.code, pred.stderr).toBe(0);
    expect(pred.stdout).toContain('1200 points in 1 scene(s) labelled');
    const labelled = await readPly(out);
    expect(labelled.label).toHaveLength(1200);
    expect(labelled.label!.every((l) => l >= 0 && l < 13)).toBe(true);
    const header = readFileSync(out).subarray(0, 600).toString('latin1');
    expect(header).toContain('property int label');
    expect(JSON.parse(/comment classes (.*)\n/.exec(header)![1]!)).toHaveLength(13);
    // the prediction agrees with eval's: the same voting over the same scene
    const agreement = Number(/agreement with the labels in .*: (\d+\.\d+)%/.exec(pred.stdout)![1]);
    expect(agreement).toBeCloseTo(100 * evaluation.OA, 1);
    // Wall time is reported, not asserted (the machine is shared): the README quotes it.
    console.log(`pretrain → finetune → eval → predict: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 120_000);

  it('takes the data keys from a config file', async () => {
    const dir = tempDir();
    const yaml = join(dir, 'run.yaml');
    writeFileSync(yaml, `data: ${E2E}\ndataset: s3dis\ntrainSplit: [train]\nvalSplit: [val]\ngridSize: 0.2\nmaxPoints: 100\npretrainSteps: 1\npretrainBatchScenes: 1\n`);
    const r = await kiln(['pointcloud', 'pretrain', '--preset', 'tiny', '--quiet', '--config', yaml, '--out', join(dir, 'run')]);
    expect(r.code, r.stderr).toBe(0);
    const run = JSON.parse(readFileSync(join(dir, 'run', 'run.json'), 'utf8'));
    expect(run.config).toMatchObject({ data: E2E, dataset: 's3dis', trainSplit: ['train'], gridSize: 0.2, maxPoints: 100 });
    expect(metricRecords(join(dir, 'run'))[0]!.points as number).toBeLessThanOrEqual(100);
  }, 60_000);

  it('refuses missing and malformed data with exit 2, naming the file and what was expected', async () => {
    const dir = tempDir();
    const bad = join(dir, 'bad');
    cpSync(E2E, bad, { recursive: true });
    cpSync(join(FIXTURES, 'npy', 'object.npy'), join(bad, 'train', 'room_a', 'color.npy'));
    const cases: [string[], RegExp][] = [
      [['--data', join(dir, 'nowhere'), '--dataset', 'pointcept'], /nowhere: data folder not found/],
      [['--data', dir, '--dataset', 'scannet'], /no scenes found: expected ScanNet v2 scans/],
      [['--data', E2E], /--data .* needs --dataset pointcept\|s3dis\|scannet\|ply/],
      [['--dataset', 's3dis'], /--dataset s3dis needs --data DIR/],
      [['--data', E2E, '--dataset', 'pointcept', '--val-split', 'Area_5'], /validation split 'Area_5' matches no scene \(splits here: train, val/],
      [['--data', E2E, '--dataset', 'pointcept'], /cannot tell how many classes .* give --num-classes/],
      [['--data', E2E, '--dataset', 's3dis', '--train-split', 'train', '--val-split', 'val', '--num-classes', '20'], /'numClasses' is 20, but --dataset s3dis has 13 classes/],
      [['--data', E2E, '--dataset', 'pointcept', '--grid-size', '0'], /flag --grid-size must be a number > 0/],
      [['--data', bad, '--dataset', 'pointcept', '--num-classes', '13', '--pretrain-batch-scenes', '1', '--pretrain-steps', '1'], /room_a\/color\.npy: dtype '\|O' is an object array/],
    ];
    for (const [args, message] of cases) {
      const r = await kiln(['pointcloud', 'pretrain', '--preset', 'tiny', '--quiet', ...args, '--out', join(dir, 'run')]);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    const predict = async (...args: string[]) => kiln(['pointcloud', 'predict', ...args]);
    const missingInput = await predict('--checkpoint', join(dir, 'none.safetensors'), '--input', 'x', '--out', 'y.ply');
    expect(missingInput.code).toBe(2);
    expect(missingInput.stderr).toContain('none.safetensors does not exist');
    expect((await predict('--out', 'y.ply')).stderr).toMatch(/--input is required/);
  }, 120_000);
});
