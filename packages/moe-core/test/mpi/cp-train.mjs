// Under mpirun: the demo MoE LM trained with context parallelism (and expert parallelism) over
// the MPI world; each rank writes its loss curve, aux losses and final weights (experts
// gathered) to <out>/rank-<r>.json (one file per rank: mpirun's output forwarding splits long
// lines). Arguments: cp, ep, output folder, config JSON.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@kiln/tensor';
import { finalizeProcessCommunicator, processCommunicator, trainMoeLm } from '../../dist/index.js';

await initBackend({ env: { KILN_BACKEND: 'cpu' } });
const [cp, ep, out, configJson] = process.argv.slice(2);
const world = await processCommunicator();
const result = await trainMoeLm({ ...JSON.parse(configJson), contextParallel: Number(cp), expertParallel: Number(ep) }, { dataParallel: world });
const weights = {};
for (const [name, v] of Object.entries(result.model.namedTensors())) weights[name] = Array.from(v.dataSync());
writeFileSync(
  join(out, `rank-${world.rank}.json`),
  JSON.stringify({
    rank: world.rank,
    size: world.size,
    losses: result.reports.map((r) => r.loss),
    auxLoss: result.reports.map((r) => r.routerLosses[0]?.aux_loss ?? 0),
    weights,
  }),
);
await finalizeProcessCommunicator();
