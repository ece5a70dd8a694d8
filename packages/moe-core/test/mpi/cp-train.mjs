// Under mpirun: the demo MoE LM trained with context parallelism (and expert / data
// parallelism) over the MPI world, for each config of a JSON list in turn (one launch for all);
// each rank writes, per config, its loss curve, aux losses and final weights (experts gathered)
// to <out>/rank-<r>.json (one file per rank: mpirun's output forwarding splits long lines).
// Arguments: output folder, configs JSON (each with contextParallel / expertParallel).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@kiln/tensor';
import { finalizeProcessCommunicator, processCommunicator, trainMoeLm } from '../../dist/index.js';

await initBackend({ env: { KILN_BACKEND: 'cpu' } });
const [out, configsJson] = process.argv.slice(2);
const world = await processCommunicator();
const runs = [];
for (const config of JSON.parse(configsJson)) {
  const result = await trainMoeLm(config, { dataParallel: world });
  const weights = {};
  for (const [name, v] of Object.entries(result.model.namedTensors())) weights[name] = Array.from(v.dataSync());
  runs.push({ losses: result.reports.map((r) => r.loss), auxLoss: result.reports.map((r) => r.routerLosses[0]?.aux_loss ?? 0), weights });
}
writeFileSync(join(out, `rank-${world.rank}.json`), JSON.stringify({ rank: world.rank, size: world.size, runs }));
await finalizeProcessCommunicator();
