// The JavaScript side: the same collectives through @kiln/mpi, timed like collectives.c.
import { finalizeMpi, initMpi } from '../dist/index.js';

const checkCollectives = process.env.KILN_MPI_CHECK !== '0';
const world = await initMpi({ onError: 'throw', checkCollectives });
const runs = 21;
for (const arg of process.argv.slice(2)) {
  const n = Number(arg);
  const input = Float32Array.from({ length: n }, (_, i) => i);
  const medians = {};
  for (const kind of ['allreduce', 'alltoall']) {
    const times = [];
    for (let r = -3; r < runs; r++) {
      await world.barrier();
      const t0 = performance.now();
      if (kind === 'allreduce') await world.allReduce(input);
      else await world.allToAll(input);
      if (r >= 0) times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    medians[kind] = times[Math.floor(runs / 2)];
  }
  if (world.rank === 0) console.log(JSON.stringify({ n, ...medians }));
}
await finalizeMpi();
