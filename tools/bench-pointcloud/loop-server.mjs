// The `pretrain` loop of a checkout (its built packages) as a step server: after a warm-up
// step it prints {"ready": ...}; then each "step" line on stdin runs the loop's next step and
// prints {"ms": ..., "cpuMs": ..., "points": ...} (the loop's own step time — batch
// preparation, forward, backward, Adam and the EMA update — and the process CPU time). Lets the benchmark time this checkout's loop and an
// older one's alternately.
//
//   node loop-server.mjs ROOT POINTS_PER_SCENE CHANNELS_JSON
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, points, channels] = process.argv.slice(2);
if (!root || !points || !channels) {
  console.error('usage: node loop-server.mjs ROOT POINTS_PER_SCENE CHANNELS_JSON');
  process.exit(2);
}
const load = (pkg) => import(pathToFileURL(join(root, 'packages', pkg, 'dist', 'index.js')).href);
const { initBackend, describeBackendChoice } = await load('tensor');
const { pretrain, resolveConfig } = await load('pointcloud-ssl');
const choice = await initBackend();
const commands = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const cfg = resolveConfig('default', { data: { pointsPerScene: Number(points) }, model: { channels: JSON.parse(channels) }, pretrain: { steps: 100000 } });
let cpu = process.cpuUsage();
await pretrain(cfg, {
  onStep: async (info) => {
    const used = process.cpuUsage(cpu);
    const reply = info.step === 0 ? { ready: true, backend: describeBackendChoice(choice) } : { ms: info.ms, cpuMs: (used.user + used.system) / 1000, points: info.points };
    console.log(JSON.stringify(reply));
    const { value, done } = await commands.next();
    cpu = process.cpuUsage(); // waiting for the command is idle time
    return done || value.trim() !== 'step' ? 'stop' : undefined;
  },
});
