/**
 * The README's loader-throughput table from the JSON bench-loader.mjs writes:
 *   node tools/pointcloud-data/loader-table.mjs tools/pointcloud-data/results/loader.json
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ms = (s) => (s * 1000).toFixed(1);
const mpts = (points, s) => (points / s / 1e6).toFixed(2);

export function renderLoaderTable(r) {
  const c = r.config;
  const lines = [
    `${c.scenes} Pointcept-layout rooms × ${c.pointsPerScene} points (coord f4, color u1, normal f4, segment i2, instance i2), GridSample ${c.gridSize} m, SphereCrop ${c.maxPoints} (${c.pointsAfterPipeline} points left); ${c.runs} runs, best and median per scene.`,
    `Commit ${r.commit}, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.cpus} CPUs, Node ${r.machine.node}${r.peer ? `, numpy ${r.peer.numpy}` : ''}; load average ${r.machine.loadAverage.start[0]} at the start, ${r.machine.loadAverage.end[0]} at the end.`,
    '',
    '| per scene | Kiln ms median / best | numpy peer ms median / best | Kiln M points/s (best) | peer / Kiln (best) |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const [name, [med, best]] of Object.entries(r.kiln)) {
    const p = r.peer?.[name];
    lines.push(`| ${name} | ${ms(med)} / ${ms(best)} | ${p ? `${ms(p[0])} / ${ms(p[1])}` : 'n/a'} | ${mpts(c.pointsPerScene, best)} | ${p ? (p[1] / best).toFixed(2) : 'n/a'} |`);
  }
  lines.push('', `| training loop fed by a SceneStream (ms per micro-batch of one scene) | loop idle | loop busy ${c.simulatedStepMs} ms per step |`, '| --- | ---: | ---: |');
  for (const [name, t] of Object.entries(r.stream)) lines.push(`| ${name} | ${ms(t.idle)} | ${ms(t.busy)} |`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(renderLoaderTable(JSON.parse(readFileSync(process.argv[2], 'utf8'))));
}
