// MoE layer forward+backward: @kiln/moe-core against the same layer in Debian's python3-torch
// (OpenBLAS), side by side in one run (their steps alternate, so both see the same load), plus
// the memory/time trade-offs of selective
// recomputation and activation offloading. Run: pnpm --filter @kiln/moe-core bench
// Sizes: the E 8, top-2, hidden 512, FFN 1024, 8192 tokens ("full"), and a reduced
// size ("reduced", 1024 tokens, hidden 128, FFN 256) that the pure-JS cpu backend finishes.
// KILN_BENCH_SIZES=reduced,full picks which run (default: full only on a native backend).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRng, describeBackendChoice, initBackend, measurePeakBytes, tf, timeIt } from '@kiln/tensor';
import { MoELayer, initMoEWeights, validateMoEConfig, weightList } from '../dist/index.js';

const choice = await initBackend();
console.log(describeBackendChoice(choice));
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`load average at start (1/5/15 min): ${load()}`);
const SIZES = {
  full: { tokens: 8192, hidden: 512, ffn: 1024, experts: 8, topk: 2 },
  reduced: { tokens: 1024, hidden: 128, ffn: 256, experts: 8, topk: 2 },
};
const wanted = (process.env.KILN_BENCH_SIZES ?? (choice.name === 'cpu' ? 'reduced' : 'reduced,full')).split(',');
const runs = Number(process.env.KILN_BENCH_RUNS ?? 5);
const python = process.env.KILN_PYTHON ?? '/usr/bin/python3';
const torchScript = fileURLToPath(new URL('./torch_moe.py', import.meta.url));

function flops(s) {
  // forward: router + per routed row fc1 (H→2F) and fc2 (F→H); backward ≈ 2× forward
  const fwd = 2 * s.tokens * s.hidden * s.experts + 2 * s.tokens * s.topk * (s.hidden * 2 * s.ffn + s.ffn * s.hidden);
  return 3 * fwd;
}

/** Identity whose gradient records the tensor bytes when backward reaches it (the bytes held for backward). */
function backwardStartProbe(record) {
  const f = tf.customGrad((x) => ({ value: tf.clone(x), gradFunc: (dy) => (record(tf.memory().numBytes), dy) }));
  return (x) => f(x);
}

/**
 * `depth` MoE layers with residual connections (depth 1: the bare layer, as the torch peer).
 * `held()`: the tensor bytes alive when the last step's backward started (with `probe`).
 */
function build(s, extra = {}, depth = 1, probe = false) {
  const config = validateMoEConfig({ numExperts: s.experts, topk: s.topk, hiddenSize: s.hidden, ffnHiddenSize: s.ffn, ...extra });
  const rng = createRng(0);
  const stack = Array.from({ length: depth }, () => {
    const weights = initMoEWeights(config, rng.fork(), { std: 0.02 });
    return { weights, layer: new MoELayer(config, weights) };
  });
  const x = tf.variable(createRng(1).normal([s.tokens, s.hidden]));
  const dy = createRng(2).normal([s.tokens, s.hidden]);
  const vars = [x, ...stack.flatMap((l) => weightList(l.weights))];
  let heldBytes = 0;
  const atOutput = probe ? backwardStartProbe((b) => (heldBytes = b)) : (y) => y;
  const forward = () => atOutput(depth === 1 ? stack[0].layer.forward(x) : stack.reduce((h, l) => tf.add(h, l.layer.forward(h)), x));
  // backward from the output cotangent dy, as the torch peer's layer(x).backward(dy)
  const step = async () => {
    const grads = tf.grads(() => forward())(vars, dy);
    await grads[0].data();
    for (const g of grads) g.dispose();
  };
  return { step, held: () => heldBytes, offloaded: () => stack.reduce((n, l) => n + l.layer.offloader.offloadedBytes, 0) };
}

/**
 * The torch peer as a long-lived process that runs one forward+backward per request, so the
 * two sides' steps can alternate: both see the same machine load (2 shared cores), instead
 * of one side running while another job is busy and the other after it finished.
 */
async function torchPeer(s) {
  const child = spawn(python, [torchScript, s.tokens, s.hidden, s.ffn, s.experts, s.topk, 'serve'].map(String), {
    env: { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('torch peer exited early');
    return JSON.parse(value);
  };
  const hello = await next();
  return {
    version: hello.torch,
    step: async () => {
      child.stdin.write('step\n');
      return (await next()).ms;
    },
    close: () => child.stdin.end('quit\n'),
  };
}

function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

/** `runs` rounds of one kiln step and one torch step, alternating which goes first. */
async function paired(s) {
  const { step } = build(s);
  await step(); // warm-up (torch warms up before it answers)
  const torch = await torchPeer(s);
  const kilnMs = [];
  const torchMs = [];
  const kilnOnce = async () => {
    const t0 = performance.now();
    await step();
    kilnMs.push(performance.now() - t0);
  };
  for (let r = 0; r < runs; r++) {
    if (r % 2 === 0) {
      await kilnOnce();
      torchMs.push(await torch.step());
    } else {
      torchMs.push(await torch.step());
      await kilnOnce();
    }
  }
  torch.close();
  return { kilnMs, torchMs, version: torch.version, roundRatios: kilnMs.map((k, i) => torchMs[i] / k) };
}

const rows = [];
for (const name of wanted) {
  const s = SIZES[name];
  if (!s) throw new Error(`KILN_BENCH_SIZES: unknown size '${name}' (use reduced, full)`);
  const p = await paired(s);
  const kiln = median(p.kilnMs);
  const torch = median(p.torchMs);
  const f = flops(s);
  rows.push({ size: name, ...s, kilnMs: kiln, torchMs: torch, ratio: torch / kiln, kilnGflops: f / kiln / 1e6, torchGflops: f / torch / 1e6 });
  const r = rows.at(-1);
  console.log(
    `${name.padEnd(8)} T ${s.tokens} H ${s.hidden} F ${s.ffn} E ${s.experts} top-${s.topk}: kiln (${choice.name}) ${r.kilnMs.toFixed(1)} ms ` +
      `(${r.kilnGflops.toFixed(2)} GFLOP/s), torch ${p.version} ${r.torchMs.toFixed(1)} ms (${r.torchGflops.toFixed(2)} GFLOP/s): ` +
      `speed ratio kiln/torch = ${r.ratio.toFixed(3)}× (medians of ${runs} alternating rounds; per-round ratios ${p.roundRatios.map((v) => v.toFixed(2)).join(' ')})`,
  );
}

// Memory/time trade-offs on the reduced size, for a stack of 4 MoE layers (recomputation
// pays off across layers: one layer's activations are rebuilt while the others hold none).
const s = SIZES.reduced;
const depth = 4;
const variants = [
  ['baseline', {}],
  ["recompute ['moe_act']", { recomputeModules: ['moe_act'] }],
  ["recompute ['experts']", { recomputeModules: ['experts'] }],
  ["recompute ['moe']", { recomputeModules: ['moe'] }],
  ["offload ['expert_fc1']", { offloadModules: ['expert_fc1'] }],
  ["offload ['moe_act']", { offloadModules: ['moe_act'] }],
  ["offload ['fused_group_mlp']", { offloadModules: ['fused_group_mlp'] }],
  ["moe_act + offload ['expert_fc1']", { recomputeModules: ['moe_act'], offloadModules: ['expert_fc1'] }],
];
console.log(`\nmemory/time trade-offs (reduced size, ${depth} MoE layers with residuals, forward+backward, ${choice.name} backend):`);
console.log('variant                          peak tensor MiB   saved MiB   held for backward MiB   median ms   time added   host MiB moved/step');
let base = null;
for (const [label, extra] of variants) {
  const { step, held, offloaded } = build(s, extra, depth, true);
  await step();
  const { peakBytes, startBytes } = await measurePeakBytes(step);
  const peak = peakBytes - startBytes;
  const heldMiB = (held() - startBytes) / 2 ** 20;
  // steps so far: 1 warm-up, 1 measured for memory; then 2 more warm-ups and the timed runs
  const timedRuns = Math.max(runs, 9);
  const t = await timeIt(step, { warmup: 2, runs: timedRuns });
  base ??= { peak, ms: t.medianMs };
  const moved = offloaded() / (4 + timedRuns);
  console.log(
    `${label.padEnd(32)} ${(peak / 2 ** 20).toFixed(2).padStart(11)} ${((base.peak - peak) / 2 ** 20).toFixed(2).padStart(11)} ${heldMiB.toFixed(2).padStart(23)} ${t.medianMs.toFixed(1).padStart(11)} ${(((t.medianMs - base.ms) / base.ms) * 100).toFixed(1).padStart(11)}% ${(moved / 2 ** 20).toFixed(2).padStart(15)}`,
  );
}

console.log(`load average at end (1/5/15 min): ${load()}`);
