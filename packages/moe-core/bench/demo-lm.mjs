// Trains the demo MoE language model on the bundled KJV text and prints, per step, the loss,
// tokens/s, achieved TFLOP/s, model FLOP utilisation and each layer's expert load.
// Run: pnpm --filter @kiln/moe-core demo   (KILN_DEMO_STEPS, KILN_DEMO_PRESET=tiny|small,
// KILN_DEMO_CHECKPOINT=path.safetensors)
import { loadavg } from 'node:os';
import { describeBackendChoice, initBackend } from '@kiln/tensor';
import { LOAD_WINDOW, MOE_LM_PRESETS, trainMoeLm } from '../dist/index.js';

const choice = await initBackend();
console.log(describeBackendChoice(choice));
console.log(`load average at start (1/5/15 min): ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
const preset = MOE_LM_PRESETS[process.env.KILN_DEMO_PRESET ?? 'small'];
if (!preset) throw new Error(`KILN_DEMO_PRESET must be tiny or small, got ${process.env.KILN_DEMO_PRESET}`);
const steps = Number(process.env.KILN_DEMO_STEPS ?? preset.steps);
const config = { ...preset, steps, checkpointPath: process.env.KILN_DEMO_CHECKPOINT };
const every = Math.max(1, Math.floor(steps / 15));
const t0 = performance.now();
const result = await trainMoeLm(config, {
  onStep: (r) => {
    if (r.step !== 1 && r.step % every !== 0 && r.step !== steps && r.validationLoss === undefined) return;
    const load = r.expertLoad.map((l, i) => `L${i} [${l.map((v) => v.toFixed(2)).join(' ')}]`).join(' ');
    const val = r.validationLoss === undefined ? '' : `  val ${r.validationLoss.toFixed(3)}`;
    console.log(
      `step ${String(r.step).padStart(4)}  loss ${r.loss.toFixed(3)}${val}  ${r.tokensPerSecond.toFixed(0)} tok/s  ` +
        `${(r.tflops * 1e3).toFixed(3)} GFLOP/s  MFU ${(r.mfu * 100).toFixed(2)}%  load ${load}`,
    );
  },
});
console.log(
  `\n${result.parameters.total} parameters (${result.parameters.active} active per token), backend ${result.backend}, ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s; loss ${result.initialLoss.toFixed(3)} → ${result.finalLoss.toFixed(3)} (mean of the last 5 steps)`,
);
const window = Math.min(LOAD_WINDOW, result.reports.length);
const ratio = (l) => (Math.max(...l) / Math.min(...l)).toFixed(2);
console.log(`expert load over the last ${window} steps: ${result.expertLoad.map((l, i) => `L${i} [${l.map((v) => v.toFixed(3)).join(' ')}] max/min ${ratio(l)}`).join('  ')}`);
console.log(`sample after "And God said": ${JSON.stringify(result.sample)}`);
if (result.checkpoint) console.log(`checkpoint: ${result.checkpoint}`);
