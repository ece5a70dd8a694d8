// Under mpirun: the demo MoE LM trained data-parallel over the MPI world (global batch 8
// split over the ranks); prints this rank's loss curve as one JSON line.
import { initBackend } from '@kiln/tensor';
import { MOE_LM_PRESETS, finalizeProcessCommunicator, processCommunicator, trainMoeLm } from '../../dist/index.js';

await initBackend({ env: { KILN_BACKEND: 'cpu' } });
const world = await processCommunicator();
const tiny = MOE_LM_PRESETS.tiny;
// Dropless routing without the batch-level aux loss: the objective is then a plain mean
// over tokens, so equal shards reproduce the whole batch exactly.
const result = await trainMoeLm(
  { ...tiny, steps: 6, batch: 8, moe: { ...tiny.moe, auxLossCoeff: 0, zLossCoeff: 1e-3 } },
  { dataParallel: world },
);
console.log(JSON.stringify({ rank: world.rank, size: world.size, losses: result.reports.map((r) => r.loss) }));
await finalizeProcessCommunicator();
