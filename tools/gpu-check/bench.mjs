#!/usr/bin/env node
/**
 * The webgpu benchmarks of the device check, each task on webgpu and kiln-native side by
 * side in one process, steps alternating between the backends:
 *   gemm      fp32 matmul n×n (GFLOP/s)
 *   mlp       one Adam training step of a 4-layer MLP
 *   moe       one @kiln/moe-core MoELayer forward + backward (top-2 of 8 SwiGLU experts)
 *   scan      @kiln/gpu-kernels' selective scan forward + backward
 *   pretrain  one @kiln/pointcloud-ssl CSP pre-training step
 * Every timed step ends by awaiting one scalar read, so an asynchronous backend is timed to
 * completion without timing a large copy back.
 *
 * Usage: node bench.mjs [--quick] [--tasks gemm,mlp,...] [--backends webgpu,kiln-native]
 *                       [--runs N] [--budget-s S] [--json FILE] [--torch FILE]
 *   --quick     small shapes (a smoke test, e.g. on a software adapter)
 *   --budget-s  stop starting new tasks after S seconds (the rest are reported as not run)
 *   --torch     a JSON file of PyTorch timings (torch_peer.py) to add as a column
 * Prints a table (best-of and median ms, ratio webgpu : kiln-native best-of), os.loadavg(),
 * and with --json the rows.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { selectiveScan } from '@kiln/gpu-kernels';
import { MoELayer, initMoEWeights, weightList } from '@kiln/moe-core';
import { pretrain } from '@kiln/pointcloud-ssl';
import { createRng, initBackend, tf } from '@kiln/tensor';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const quick = process.argv.includes('--quick');
const tasks = option('tasks', 'gemm,mlp,moe,scan,pretrain').split(',');
const backends = option('backends', 'webgpu,kiln-native').split(',');
const runs = Number(option('runs', quick ? '2' : '5'));
const budgetMs = Number(option('budget-s', '300')) * 1000;
const jsonOut = option('json', '');
const torchFile = option('torch', '');
const started = performance.now();

const SHAPES = quick
  ? { gemm: [64, 256], mlp: { batch: 64, width: 64 }, moe: { tokens: 64, hidden: 32, ffn: 32 }, scan: { batch: 1, dim: 16, N: 4, L: 64 }, pretrain: 'tiny' }
  : { gemm: [1024, 4096], mlp: { batch: 4096, width: 1024 }, moe: { tokens: 4096, hidden: 1024, ffn: 1024 }, scan: { batch: 2, dim: 256, N: 16, L: 4096 }, pretrain: 'default' };

/** Awaits one scalar that depends on every tensor given: the step is then complete on the device. */
async function settle(ts) {
  const list = (Array.isArray(ts) ? ts : [ts]).filter(Boolean);
  const s = tf.tidy(() => tf.addN(list.map((t) => tf.sum(tf.cast(t, 'float32')))));
  await s.data();
  s.dispose();
}

/**
 * A task: `make(backend)` builds its inputs on that backend and returns `step` (one timed
 * run, async) and `dispose`. `work` is the FLOPs of one step (for GFLOP/s), or 0.
 */
const TASKS = {
  gemm: SHAPES.gemm.map((n) => ({
    name: `gemm ${n}x${n}x${n}`,
    work: 2 * n ** 3,
    make() {
      const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
      const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
      return {
        step: async () => {
          const c = tf.matMul(a, b);
          await settle(c);
          c.dispose();
        },
        dispose: () => tf.dispose([a, b]),
      };
    },
  })),
  mlp: [
    (() => {
      const { batch, width } = SHAPES.mlp;
      const layers = 4;
      return {
        name: `mlp train step (batch ${batch}, ${layers}x${width}, adam)`,
        work: 3 * 2 * batch * width * width * layers,
        make() {
          const params = [];
          for (let i = 0; i < layers; i++) {
            const bound = 1 / Math.sqrt(width);
            params.push(tf.variable(tf.randomUniform([width, width], -bound, bound, 'float32', 10 + i)));
            params.push(tf.variable(tf.zeros([width])));
          }
          const x = tf.randomUniform([batch, width], -1, 1, 'float32', 1);
          const y = tf.randomUniform([batch, width], -1, 1, 'float32', 2);
          const opt = tf.train.adam(1e-3);
          const loss = () => {
            let h = x;
            for (let i = 0; i < layers; i++) {
              h = tf.add(tf.matMul(h, params[2 * i]), params[2 * i + 1]);
              if (i < layers - 1) h = tf.relu(h);
            }
            return tf.losses.meanSquaredError(y, h);
          };
          return {
            step: async () => {
              const l = opt.minimize(loss, true);
              await settle(l);
              l.dispose();
            },
            dispose: () => {
              tf.dispose([x, y, ...params]);
              opt.dispose();
            },
          };
        },
      };
    })(),
  ],
  moe: [
    (() => {
      const { tokens, hidden, ffn } = SHAPES.moe;
      const E = 8;
      const k = 2;
      return {
        name: `moe layer fwd+bwd (${tokens} tokens, hidden ${hidden}, ${E} swiglu experts of ${ffn}, top-${k})`,
        // router + k experts per token (fc1 2F wide, fc2), forward and backward
        work: 3 * 2 * tokens * (hidden * E + k * (hidden * 2 * ffn + ffn * hidden)),
        make() {
          const config = { numExperts: E, topk: k, hiddenSize: hidden, ffnHiddenSize: ffn, activation: 'swiglu', numLayers: 1 };
          const rng = createRng(7);
          const weights = initMoEWeights(config, rng);
          const layer = new MoELayer(config, weights, { rng });
          const x = rng.normal([tokens, hidden]);
          const w = rng.normal([tokens, hidden]);
          const vars = weightList(weights);
          return {
            step: async () => {
              const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), w)), vars);
              await settle([value, ...Object.values(grads)]);
              tf.dispose([value, ...Object.values(grads)]);
            },
            dispose: () => tf.dispose([x, w, ...vars]),
          };
        },
      };
    })(),
  ],
  scan: [
    (() => {
      const { batch, dim, N, L } = SHAPES.scan;
      return {
        name: `selective scan fwd+bwd (b ${batch}, d ${dim}, N ${N}, L ${L})`,
        work: 0,
        make() {
          const rng = createRng(1);
          const inputs = {
            u: rng.normal([batch, dim, L]),
            delta: rng.normal([batch, dim, L], 0, 0.5),
            A: tf.neg(tf.tile(tf.reshape(tf.range(1, N + 1), [1, N]), [dim, 1])),
            B: rng.normal([batch, N, L]),
            C: rng.normal([batch, N, L]),
            D: rng.normal([dim]),
            z: rng.normal([batch, dim, L]),
            deltaBias: rng.normal([dim], 0, 0.1),
          };
          const w = rng.normal([batch, dim, L]);
          const keys = Object.keys(inputs);
          return {
            step: async () => {
              const grads = tf.grads((...xs) => tf.sum(tf.mul(selectiveScan({ ...Object.fromEntries(keys.map((key, i) => [key, xs[i]])), deltaSoftplus: true }), w)))(
                keys.map((key) => inputs[key]),
              );
              await settle(grads);
              tf.dispose(grads);
            },
            dispose: () => tf.dispose([...Object.values(inputs), w]),
          };
        },
      };
    })(),
  ],
  pretrain: [
    {
      name: `pointcloud CSP pre-training step (${SHAPES.pretrain} preset)`,
      work: 0,
      // A step is timed inside pretrain(): from one onStep call to the next.
      make() {
        return {
          step: async () => {
            const marks = [];
            await pretrain(SHAPES.pretrain, {
              overrides: { pretrain: { steps: 2 } },
              onStep: () => {
                marks.push(performance.now());
              },
            });
            return marks[1] - marks[0];
          },
          dispose: () => {},
        };
      },
    },
  ],
};

function stats(times) {
  const s = [...times].sort((a, b) => a - b);
  return { bestMs: s[0], medianMs: s[Math.floor(s.length / 2)] };
}

const rows = [];
const notRun = [];
const available = [];
for (const b of backends) {
  try {
    const choice = await initBackend({ env: { KILN_BACKEND: b } });
    available.push(b);
    console.error(`backend ${b}: ${choice.detail ?? ''}`);
  } catch (err) {
    notRun.push(`every task on ${b}: ${err.message}`);
  }
}

for (const task of tasks) {
  const list = TASKS[task];
  if (!list) {
    notRun.push(`${task}: unknown task (tasks: ${Object.keys(TASKS).join(', ')})`);
    continue;
  }
  for (const t of list) {
    if (performance.now() - started > budgetMs) {
      notRun.push(`${t.name}: the time budget (${budgetMs / 1000} s) was spent`);
      continue;
    }
    // Build on each backend, warm up, then alternate timed steps.
    const prepared = new Map();
    for (const b of available) {
      try {
        await tf.setBackend(b);
        const p = t.make();
        const t0 = performance.now();
        await p.step(); // warm-up: pipelines compiled, buffers allocated
        prepared.set(b, { ...p, times: [], warmMs: performance.now() - t0 });
      } catch (err) {
        notRun.push(`${t.name} on ${b}: ${String(err.message).split('\n')[0]}`);
      }
    }
    for (let r = 0; r < runs; r++) {
      for (const [b, p] of prepared) {
        await tf.setBackend(b);
        const t0 = performance.now();
        const inner = await p.step();
        p.times.push(typeof inner === 'number' ? inner : performance.now() - t0);
      }
    }
    for (const [b, p] of prepared) {
      await tf.setBackend(b);
      p.dispose();
      const s = stats(p.times);
      rows.push({ task: t.name, backend: b, ...s, runs: p.times.length, gflops: t.work ? t.work / (s.bestMs * 1e6) : null });
    }
  }
}

let torch = {};
if (torchFile) {
  try {
    const { readFileSync } = await import('node:fs');
    torch = JSON.parse(readFileSync(torchFile, 'utf8'));
  } catch (err) {
    notRun.push(`PyTorch column: ${torchFile} could not be read (${err.message})`);
  }
}

const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(2)} ms`);
console.log(`| task | backend | best | median | GFLOP/s (best) | speed-up vs kiln-native (best) | speed-up vs PyTorch CUDA (best) |`);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  const native = rows.find((o) => o.task === r.task && o.backend === 'kiln-native');
  const peer = torch[r.task];
  const vsNative = native && r.backend !== 'kiln-native' ? `${(native.bestMs / r.bestMs).toFixed(2)}×` : '';
  const vsTorch = peer?.bestMs ? `${(peer.bestMs / r.bestMs).toFixed(2)}× (torch ${fmt(peer.bestMs)})` : '';
  console.log(`| ${r.task} | ${r.backend} | ${fmt(r.bestMs)} | ${fmt(r.medianMs)} | ${r.gflops === null ? '' : r.gflops.toFixed(1)} | ${vsNative} | ${vsTorch} |`);
}
console.log(`load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}; ${runs} timed runs per task and backend, alternating`);
if (notRun.length) {
  console.log('not run:');
  for (const n of notRun) console.log(`  - ${n}`);
}
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ rows, notRun, torch, loadavg: os.loadavg(), quick }, null, 2)}\n`);
