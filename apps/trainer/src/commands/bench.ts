/**
 * `kiln bench`: fp32 matmul throughput and one MLP training step per backend, measured
 * side by side in one process so the ratios are comparable.
 */
import { initBackend, tf, timeIt } from '@kiln/tensor';
import type { CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';

export interface BenchRow {
  backend: string;
  task: string;
  medianMs: number;
  gflops: number;
}

function parseList(text: string, key: string): string[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`config key '${key}' must be a comma-separated list, got ${JSON.stringify(text)}`);
  return items;
}

export const benchCommand: CommandSpec = {
  path: ['bench'],
  summary: 'measure matmul GFLOP/s and an MLP training step on each tensor backend',
  details: 'Example:\n  kiln bench --sizes 128,256 --backends cpu',
  schema: {
    sizes: { type: 'string', default: '128,256', doc: 'square matmul sizes, comma-separated' },
    backends: { type: 'string', default: '', doc: 'backends to compare, comma-separated (default: the chosen one and cpu)' },
    runs: { type: 'int', default: 5, min: 1, doc: 'timed runs per task (median reported)' },
    json: { type: 'boolean', default: false, doc: 'print JSON lines instead of a table' },
  },
  presets: {
    default: { doc: 'matmul 128 and 256, 5 runs', values: {} },
    tiny: { doc: 'matmul 32 only, 2 runs (smoke test)', values: { sizes: '32', runs: 2 } },
  },
  defaultPreset: 'default',
  async handler(ctx) {
    const sizes = parseList(String(ctx.config.sizes), 'sizes').map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1 || n > 4096) throw new UsageError(`config key 'sizes': ${JSON.stringify(s)} is not an integer in 1..4096`);
      return n;
    });
    let backends = ctx.config.backends ? parseList(String(ctx.config.backends), 'backends') : [];
    if (backends.length === 0) backends = [...new Set([(await initBackend()).name, 'cpu'])];
    const runs = Number(ctx.config.runs);
    const rows: BenchRow[] = [];
    for (const backend of backends) {
      try {
        await initBackend({ env: { KILN_BACKEND: backend } });
      } catch (err) {
        ctx.stderr.write(`skipping ${backend}: ${(err as Error).message}\n`);
        continue;
      }
      for (const n of sizes) {
        const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
        const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
        const t = await timeIt(
          async () => {
            const c = tf.matMul(a, b);
            await c.data();
            c.dispose();
          },
          { warmup: 1, runs },
        );
        rows.push({ backend, task: `matmul ${n}x${n}`, medianMs: t.medianMs, gflops: (2 * n ** 3) / (t.medianMs * 1e6) });
        a.dispose();
        b.dispose();
      }
      const x = tf.randomNormal([256, 64], 0, 1, 'float32', 3);
      const y = tf.randomNormal([256, 1], 0, 1, 'float32', 4);
      const w1 = tf.variable(tf.randomNormal([64, 128], 0, 0.1, 'float32', 5));
      const w2 = tf.variable(tf.randomNormal([128, 1], 0, 0.1, 'float32', 6));
      const opt = tf.train.adam(0.01);
      const t = await timeIt(
        async () => {
          const loss = opt.minimize(() => tf.losses.meanSquaredError(y, tf.matMul(tf.relu(tf.matMul(x, w1)), w2)) as tf.Scalar, true);
          await loss!.data();
          loss!.dispose();
        },
        { warmup: 1, runs },
      );
      // forward 2·(256·64·128 + 256·128) FLOPs, backward about twice that
      rows.push({ backend, task: 'mlp train step 256x64x128', medianMs: t.medianMs, gflops: (3 * 2 * (256 * 64 * 128 + 256 * 128)) / (t.medianMs * 1e6) });
      tf.dispose([x, y, w1, w2]);
      opt.dispose();
    }
    if (rows.length === 0) {
      ctx.stderr.write('error: no backend could be benchmarked\n');
      return EXIT.failed;
    }
    if (ctx.config.json) {
      for (const r of rows) ctx.stdout.write(`${JSON.stringify(r)}\n`);
    } else {
      // Speed-ups are against the pure-JS cpu backend when it ran (the reference), else the first.
      const baseName = rows.some((r) => r.backend === 'cpu') ? 'cpu' : rows[0]!.backend;
      const base = new Map(rows.filter((r) => r.backend === baseName).map((r) => [r.task, r.medianMs]));
      ctx.stdout.write(`${'backend'.padEnd(12)} ${'task'.padEnd(28)} ${'median ms'.padStart(10)} ${'GFLOP/s'.padStart(9)} ${'speed-up'.padStart(9)}\n`);
      for (const r of rows) {
        const ref = base.get(r.task);
        const ratio = ref ? `${(ref / r.medianMs).toFixed(2)}x` : '';
        ctx.stdout.write(`${r.backend.padEnd(12)} ${r.task.padEnd(28)} ${r.medianMs.toFixed(2).padStart(10)} ${r.gflops.toFixed(2).padStart(9)} ${ratio.padStart(9)}\n`);
      }
      ctx.stdout.write(`speed-up is relative to ${baseName}\n`);
    }
    return EXIT.ok;
  },
};
