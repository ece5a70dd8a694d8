/**
 * The fixed cost of one small op through TensorFlow.js on kiln-native, in CPU time per call
 * (this process's user + system time, so the number does not depend on how busy a shared
 * machine is), for this checkout and optionally another one side by side:
 *   node overhead.mjs [--against <other checkout>] [--rounds 3] [--json <file>]
 * Each build runs in its own child process (one tfjs per process), builds alternating, best
 * round of each kept. bench.mjs compares the same ops with PyTorch in wall time.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '@kiln/tensor';

const argv = process.argv.slice(2);
const option = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};

// ---- child: time the ops on the @kiln/tensor build at argv[1]
if (argv[0] === '--child') {
  const { initBackend, tf } = await import(pathToFileURL(argv[1]).href);
  const choice = await initBackend({ env: {} });
  const a = tf.randomUniform([64, 64], -1, 1, 'float32', 3);
  const b = tf.randomUniform([64, 64], -1, 1, 'float32', 4);
  const v = tf.randomUniform([64], -1, 1, 'float32', 5);
  const idx = tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i * 7) % 64), 'int32');
  const ops = {
    add: () => tf.add(a, b),
    mulBroadcast: () => tf.mul(a, v),
    matMul: () => tf.matMul(a, b),
    relu: () => tf.relu(a),
    sigmoid: () => tf.sigmoid(a),
    sum: () => tf.sum(a, 1),
    transpose: () => tf.transpose(a),
    concat: () => tf.concat([a, b], 0),
    gather: () => tf.gather(a, idx),
  };
  const reps = 4000;
  const out = { backend: choice.detail ?? choice.name, ops: {} };
  for (const [name, f] of Object.entries(ops)) {
    for (let i = 0; i < reps; i++) f().dispose(); // warm up (JIT, recycled outputs)
    let cpu = Number.POSITIVE_INFINITY;
    let wall = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 5; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) f().dispose();
      const d = process.cpuUsage(c0);
      cpu = Math.min(cpu, (d.user + d.system) / reps);
      wall = Math.min(wall, ((performance.now() - t0) * 1000) / reps);
    }
    out.ops[name] = { cpu, wall };
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

// ---- parent
const rounds = Number(option('rounds') ?? 3);
const builds = [{ label: 'this checkout', dist: fileURLToPath(import.meta.resolve('@kiln/tensor')) }];
const against = option('against');
if (against) builds.push({ label: against, dist: path.resolve(against, 'packages/tensor/dist/index.js') });
const loadStart = os.loadavg()[0];
const best = builds.map(() => ({}));
let backends = [];
for (let r = 0; r < rounds; r++) {
  backends = builds.map((build, i) => {
    const result = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', build.dist], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').at(-1));
    for (const [op, t] of Object.entries(result.ops)) {
      const b = best[i];
      b[op] = { cpu: Math.min(b[op]?.cpu ?? Number.POSITIVE_INFINITY, t.cpu), wall: Math.min(b[op]?.wall ?? Number.POSITIVE_INFINITY, t.wall) };
    }
    return result.backend;
  });
}
const loadEnd = os.loadavg()[0];
const header = ['op ([64, 64])', ...builds.flatMap((b) => [`${b.label}: CPU µs/op`, 'wall µs/op'])];
console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
for (const op of Object.keys(best[0])) {
  console.log(`| ${op} | ${best.flatMap((b) => [b[op].cpu.toFixed(2), b[op].wall.toFixed(2)]).join(' | ')} |`);
}
console.log(`\n${builds.map((b, i) => `${b.label}: ${backends[i]}`).join('\n')}\nload average ${loadStart.toFixed(1)} at start, ${loadEnd.toFixed(1)} at end; best of ${rounds} rounds × 5 runs × 4000 calls`);
const jsonOut = option('json');
if (jsonOut) {
  writeFileAtomic(
    jsonOut,
    `${JSON.stringify({ date: new Date().toISOString(), load: { start: loadStart, end: loadEnd }, rounds, builds: builds.map((b, i) => ({ ...b, backend: backends[i], ops: best[i] })) }, null, 2)}\n`,
  );
}
