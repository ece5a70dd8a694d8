/**
 * `mpirun -np 2` and `-np 4` of `kiln moe train`: data parallel over MPI ranks, and context ×
 * expert × data parallel (`--cp 2 --ep 2`), follow the same loss curve as one process training
 * on the same global batch. Skipped, with the
 * reason printed, where mpirun or @kiln/mpi's addon is missing (CI installs Open MPI).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kiln, losses, mpiSkipReason, tempDir } from './test-support.js';

const bin = join(import.meta.dirname, '..', 'bin', 'kiln.mjs');

const reason = mpiSkipReason();
if (reason) console.log(`[skip] mpirun tests skipped: ${reason}`);

// Dropless routing without the batch-level aux loss, so equal shards reproduce the batch.
const ARGS = ['moe', 'train', '--preset', 'tiny', '--steps', '5', '--aux-loss-coeff', '0', '--quiet'];

describe.skipIf(reason !== '')('kiln moe train under mpirun', () => {
  it('follows the single-process loss curve on 2 and 4 ranks', async () => {
    const single = tempDir();
    const one = await kiln([...ARGS, '--out', single], { KILN_BACKEND: 'cpu' });
    expect(one.code, one.stderr).toBe(0);
    const reference = losses(single);
    expect(reference).toHaveLength(5);
    for (const np of [2, 4]) {
      const out = tempDir();
      const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', String(np), process.execPath, bin, ...ARGS, '--out', out], {
        encoding: 'utf8',
        timeout: 240_000,
        env: { ...process.env, KILN_BACKEND: 'cpu' },
      });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      const curve = losses(out);
      expect(curve).toHaveLength(reference.length);
      for (const [i, loss] of curve.entries()) expect(Math.abs(loss - reference[i]!)).toBeLessThan(2e-4 * Math.max(1, reference[i]!));
      // rank 0 reports and checkpoints; the other ranks keep quiet records of their own
      expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
      expect(existsSync(join(out, `rank-${np - 1}`, 'metrics.jsonl'))).toBe(true);
    }
  });

  it('--cp 2 --ep 2 on 4 ranks (context, expert and data parallel) follows the single-process loss curve', async () => {
    const args = [...ARGS, '--steps', '3'];
    const single = tempDir();
    const one = await kiln([...args, '--out', single], { KILN_BACKEND: 'cpu' });
    expect(one.code, one.stderr).toBe(0);
    const reference = losses(single);
    const out = tempDir();
    const run = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '4', process.execPath, bin, ...args, '--cp', '2', '--ep', '2', '--out', out], {
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, KILN_BACKEND: 'cpu' },
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const curve = losses(out);
    expect(curve).toHaveLength(3);
    for (const [i, loss] of curve.entries()) expect(Math.abs(loss - reference[i]!)).toBeLessThan(2e-4 * Math.max(1, reference[i]!));
    const record = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(record.config).toMatchObject({ cp: 2, ep: 2, dp: 2 });
    // an expert-parallel checkpoint holds weights only: --resume is a usage error on every rank
    const resume = spawnSync('mpirun', ['--allow-run-as-root', '--oversubscribe', '-np', '2', process.execPath, bin, ...args, '--ep', '2', '--resume', '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, KILN_BACKEND: 'cpu' },
    });
    expect(resume.status, resume.stderr).toBe(2);
    expect(resume.stderr).toContain('--resume: expert-parallel runs (--ep > 1) checkpoint the gathered weights only');
    expect(resume.stderr).not.toMatch(/\n\s+at /);
  });
});
