// Under mpirun: one MoE layer run expert-parallel over the MPI world (all-to-all token
// dispatch; with etp > 1 split into EP and ETP groups), forward and backward on this rank's
// token shard; writes what it computed.
// Arguments: dispatcher, output folder, expert count, etp (default 1).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, initBackend } from '@kiln/tensor';
import { expertParallelProgram, finalizeProcessCommunicator, processCommunicator } from '../../dist/index.js';

await initBackend({ env: { KILN_BACKEND: 'cpu' } });
const comm = await processCommunicator();
const dispatcher = process.argv[2] ?? 'alltoall';
const outDir = process.argv[3];
const numExperts = Number(process.argv[4] ?? 4);
const etp = Number(process.argv[5] ?? 1);
const hidden = 16;
const tokens = 24;
const rng = createRng(5);
const result = await expertParallelProgram(
  { rank: comm.rank, size: comm.size, comm },
  {
    config: { numExperts, topk: 2, hiddenSize: hidden, ffnHiddenSize: 8, tokenDispatcherType: dispatcher, sharedExpertSize: 8, etp },
    seed: 3,
    tokens: rng.normalArray(tokens * hidden),
    dOutput: rng.normalArray(tokens * hidden),
  },
);
// One file per rank: mpirun's output forwarding splits long lines.
writeFileSync(
  join(outDir, `rank-${comm.rank}.json`),
  JSON.stringify({
    rank: comm.rank,
    size: comm.size,
    output: Array.from(result.output),
    dHidden: Array.from(result.dHidden),
    router: Array.from(result.grads.router.data),
  }),
);
await finalizeProcessCommunicator();
