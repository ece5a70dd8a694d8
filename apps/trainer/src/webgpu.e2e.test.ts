/**
 * Every `kiln` command on the webgpu backend (`test:webgpu` pass, KILN_TEST_BACKEND=webgpu;
 * Mesa's software Vulkan in CI, so the shapes are tiny): each completes, and its results equal
 * kiln-native's within float tolerance. Skipped with the reason printed where no adapter exists.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testBackendName } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { type KilnResult, kiln, losses, tempDir } from './test-support.js';

const backend = testBackendName();
const PEER = 'kiln-native';

/** The same command on webgpu and on kiln-native, each in its own output folder. */
async function both(args: string[]): Promise<{ gpu: { dir: string; run: KilnResult }; peer: { dir: string; run: KilnResult } }> {
  const gpuDir = tempDir('kiln-webgpu-');
  const peerDir = tempDir('kiln-native-');
  const gpu = await kiln([...args, '--out', gpuDir, '-q'], { KILN_BACKEND: backend });
  const peer = await kiln([...args, '--out', peerDir, '-q'], { KILN_BACKEND: PEER });
  for (const [name, r] of [
    [backend, gpu],
    [PEER, peer],
  ] as const) {
    expect(r.code, `${args.join(' ')} on ${name}: ${r.stderr}`).toBe(0);
    expect(r.stderr).not.toMatch(/OffscreenCanvas|synchronously reading data/);
  }
  return { gpu: { dir: gpuDir, run: gpu }, peer: { dir: peerDir, run: peer } };
}

const json = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));
const close = (tol: number) => (x: number) => expect.closeTo(x, tol);

describe.skipIf(backend === 'cpu')(`kiln commands on ${backend}`, () => {
  it('pointcloud all (pre-train, fine-tune, evaluate) and pointcloud eval match kiln-native', async () => {
    const { gpu, peer } = await both(['pointcloud', 'all', '--preset', 'tiny', '--pretrain-steps', '3', '--finetune-steps', '3']);
    expect(losses(gpu.dir)).toEqual(losses(peer.dir).map(close(3)));
    const [g, p] = [json(gpu.dir, 'eval.json'), json(peer.dir, 'eval.json')];
    expect(g.mIoU).toBeCloseTo(p.mIoU, 3);
    expect(g.batchMIoU).toBeCloseTo(p.batchMIoU, 3);
    expect(g.featureShift).toBeCloseTo(p.featureShift, 3);
    const ev = await kiln(['pointcloud', 'eval', '--checkpoint', join(peer.dir, 'finetune.safetensors'), '--out', tempDir('kiln-webgpu-eval-'), '-q'], { KILN_BACKEND: backend });
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toContain(`mIoU ${(p.mIoU * 100).toFixed(2)}`);
  });

  it('linco run matches kiln-native', async () => {
    const { gpu, peer } = await both(['linco', 'run', '--preset', 'tiny', '--epochs', '2', '--baseline-repeats', '1', '--bootstrap-samples', '10']);
    const [g, p] = [json(gpu.dir, 'linco.json'), json(peer.dir, 'linco.json')];
    expect(g.overall.charge).toBeCloseTo(p.overall.charge, 4);
    expect(g.overall.term).toBeCloseTo(p.overall.term, 4);
  });

  it('regress matches kiln-native, and bench measures webgpu', async () => {
    const { gpu, peer } = await both(['regress', '--preset', 'tiny']);
    expect(losses(gpu.dir)).toEqual(losses(peer.dir).map(close(4)));
    const bench = await kiln(['bench', '--preset', 'tiny', '--backends', backend, '--json'], { KILN_BACKEND: backend });
    expect(bench.code, bench.stderr).toBe(0);
    const rows = bench.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(rows.some((r) => r.backend === backend && r.medianMs > 0)).toBe(true);
  });
});
