// Run under mpirun with a scenario: `mismatch` (ranks call different collectives),
// `count` (different element counts), `dead` (rank 1 exits before a collective), `hang`
// (rank 1 never joins), `subgroups` (rank 1 splits with different groups).
import { initMpi } from '../dist/index.js';

const scenario = process.argv[2];
const world = await initMpi({ timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 8000) });
const started = Date.now();
process.on('exit', () => console.error(`rank ${world.rank} ended after ${Date.now() - started} ms`));
if (scenario === 'mismatch') {
  if (world.rank === 0) await world.barrier();
  else await world.allReduce(new Float32Array(4));
} else if (scenario === 'count') {
  await world.allReduce(new Float32Array(world.rank + 1));
} else if (scenario === 'hang') {
  // rank 1 stays alive but never joins: only the deadline can end rank 0's wait
  if (world.rank === 1) setInterval(() => {}, 1000);
  else await world.allReduce(new Float32Array(4));
} else if (scenario === 'subgroups') {
  await world.subgroups(world.rank === 1 ? [[0], [1]] : [[0, 1]]);
} else if (scenario === 'dead') {
  if (world.rank === 1) process.exit(3);
  await world.allReduce(new Float32Array(4));
}
console.log(`rank ${world.rank}: no error`);
