// Benchmark: all-reduce and all-to-all bandwidth on loopback through @kiln/mpi against
// the same collectives called from C, side by side in one run. Prints the JS overhead as
// a ratio (C time / JS time; 1.0 means no overhead).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const np = Number(process.env.KILN_BENCH_RANKS ?? 2);
const sizes = [1024, 16384, 262144, 1048576, 4194304]; // floats
const mpirun = ['--allow-run-as-root', '--oversubscribe', '-np', String(np)];

const exe = join(mkdtempSync(join(tmpdir(), 'kiln-mpi-bench-')), 'collectives');
execFileSync('mpicc', ['-O2', '-o', exe, join(here, 'collectives.c')]);

function measure(cmd, args, env = {}) {
  const run = spawnSync('mpirun', [...mpirun, cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (run.status !== 0) throw new Error(`${cmd} failed:\n${run.stdout}\n${run.stderr}`);
  return new Map(run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).map((r) => [r.n, r]));
}

const c = measure(exe, sizes.map(String));
const js = measure(process.execPath, [join(here, 'collectives.mjs'), ...sizes.map(String)], { KILN_MPI_CHECK: '0' });
const jsChecked = measure(process.execPath, [join(here, 'collectives.mjs'), ...sizes.map(String)]);

const gbps = (n, s) => ((n * 4) / s / 1e9).toFixed(2);
console.log(`MPI collectives on loopback, ${np} ranks, median of 21 calls (bandwidth = payload bytes / time)`);
console.log('| floats | op | C GB/s | @kiln/mpi GB/s | ratio C/JS | with step check GB/s |');
console.log('| ---: | --- | ---: | ---: | ---: | ---: |');
for (const n of sizes) {
  for (const op of ['allreduce', 'alltoall']) {
    const tc = c.get(n)[op];
    const tj = js.get(n)[op];
    const tk = jsChecked.get(n)[op];
    console.log(`| ${n} | ${op} | ${gbps(n, tc)} | ${gbps(n, tj)} | ${(tc / tj).toFixed(2)} | ${gbps(n, tk)} |`);
  }
}
