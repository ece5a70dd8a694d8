/**
 * Data-side benchmarks of @kiln/pointcloud-ssl, side by side with Python peers in one run:
 *   serialization codes for z, z-trans, hilbert, hilbert-trans on ~10^5 points (4 scenes of
 *   the synthetic generator at 2 cm) vs PyTorch (2 threads), plus the whole batch
 *   serialization (codes + argsort + inverse for 4 orders), and grid sampling vs numpy.
 * Also checks that the peer's codes equal ours (checksums), since both follow the same published serialization (docs/reference.md).
 * Prints median and best times, the ratio of best times (> 1 means Kiln is faster) and a
 * Markdown table for the package README.
 * Run after building: pnpm --filter @kiln/pointcloud-ssl... build && pnpm --filter @kiln/pointcloud-ssl bench
 * Options: --points <per scene> (default 25000), --quick.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = await import('@kiln/pointcloud-ssl');
const { createRng } = await import('@kiln/tensor');

const argPoints = process.argv.indexOf('--points');
const perScene = argPoints > 0 ? Number(process.argv[argPoints + 1]) : 25000;
const quick = process.argv.includes('--quick');
const runs = quick ? 3 : 9;
const scenes = 4;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** [median, best] seconds over `runs` runs after a warm-up (the best is steadier on a shared machine). */
function timed(fn, warmup = 1) {
  for (let i = 0; i < warmup; i++) fn();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    samples.push((performance.now() - t0) / 1000);
  }
  return [median(samples), Math.min(...samples)];
}

const t0 = performance.now();
const batch = pkg.generateSyntheticBatch({ scenes, seed: 1, points: perScene });
const genSeconds = (performance.now() - t0) / 1000;
const n = batch.coord.length / 3;
const grid = pkg.computeGridCoord(batch.coord, batch.offset, 0.02);
const batchIndex = pkg.offsetToBatchIndex(batch.offset);
const depth = pkg.serializationDepth(grid);

// Hand the same data to the peer.
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-pc-bench-'));
const file = path.join(dir, 'input.bin');
const bytes = new Uint8Array(12 + 12 * n + 4 * n + 12 * n);
const dv = new DataView(bytes.buffer);
dv.setInt32(0, n, true);
dv.setInt32(4, scenes, true);
dv.setInt32(8, depth, true);
bytes.set(new Uint8Array(grid.buffer, grid.byteOffset, grid.byteLength), 12);
bytes.set(new Uint8Array(batchIndex.buffer, batchIndex.byteOffset, batchIndex.byteLength), 12 + 12 * n);
bytes.set(new Uint8Array(batch.coord.buffer, batch.coord.byteOffset, batch.coord.byteLength), 12 + 16 * n);
writeFileSync(file, bytes);

const env = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OMP_NUM_THREADS: '2' };
const peerRun = spawnSync('/usr/bin/python3', [path.join(here, 'peers.py'), file, String(runs)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
rmSync(dir, { recursive: true, force: true });
let peer = null;
if (peerRun.status === 0) peer = JSON.parse(peerRun.stdout.trim().split('\n').pop());
else console.error(`python peer failed (${peerRun.status}): ${peerRun.stderr.slice(-800)}`);

// Ours.
const ours = {};
const checksums = {};
for (const order of pkg.SERIALIZATION_ORDERS) {
  const code = pkg.encodeSerialization(grid, { depth, order, batch: batchIndex });
  // same checksum as peers.py: Σ (code mod (2^31 − 1)) · (i mod 1000 + 1) mod (2^61 − 1), in BigInt
  let sum = 0n;
  for (let i = 0; i < n; i++) sum += BigInt(code[i] % 2147483647) * BigInt((i % 1000) + 1);
  checksums[order] = (sum % 2305843009213693951n).toString();
  ours[`encode ${order}`] = timed(() => pkg.encodeSerialization(grid, { depth, order, batch: batchIndex }));
}
ours['serialize 4 orders (encode + argsort + inverse)'] = timed(() =>
  pkg.serializeBatch(grid, { offset: batch.offset, depth, orders: pkg.SERIALIZATION_ORDERS }),
);
const rng = createRng(0);
ours['grid sample 0.02 (numpy)'] = timed(() => pkg.gridSample(batch, { gridSize: 0.02, rng }));

const load = os.loadavg()[0].toFixed(1);
console.log(
  `${scenes} synthetic scenes × ${perScene} points = ${n} points (generated in ${(genSeconds * 1000).toFixed(0)} ms), depth ${depth}, ${runs} runs, load average ${load} on ${os.cpus().length} CPUs`,
);
const ms = (s) => (s * 1000).toFixed(1);
console.log('\n| case | Kiln ms median / best | peer ms median / best | ratio peer / Kiln (best) |\n| --- | ---: | ---: | ---: |');
for (const [name, [med, best]] of Object.entries(ours)) {
  const p = peer?.times[name];
  const peerName = name.includes('numpy') ? 'numpy' : 'PyTorch';
  const label = name.replace(' (numpy)', '');
  const peerCell = p ? `${ms(p[0])} / ${ms(p[1])} (${peerName})` : 'n/a';
  console.log(`| ${label} | ${ms(med)} / ${ms(best)} | ${peerCell} | ${p ? (p[1] / best).toFixed(2) : 'n/a'} |`);
}
if (peer) {
  const same = pkg.SERIALIZATION_ORDERS.every((o) => String(peer.checksums[o]) === checksums[o]);
  console.log(`\ncodes identical to the PyTorch peer for all four orders: ${same ? 'yes' : 'NO'}`);
  if (!same) {
    console.log(JSON.stringify({ ours: checksums, peer: peer.checksums }));
    process.exitCode = 1;
  }
}
