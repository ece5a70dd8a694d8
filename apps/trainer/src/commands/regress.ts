import type { CommandSpec } from '../cli/command.js';
import { EXIT } from '../cli/errors.js';
import { runTraining } from '../harness/run.js';
import { type RegressConfig, REGRESS_SCHEMA, createRegressJob } from '../jobs/regress.js';
import { startBackend } from './shared.js';

export const regressCommand: CommandSpec = {
  path: ['regress'],
  summary: 'train a tiny MLP regression through the harness (checks progress, metrics, checkpoints, resume)',
  details: 'Example:\n  kiln regress --preset tiny --out runs/regress\n  kiln regress --preset tiny --out runs/regress --resume',
  schema: REGRESS_SCHEMA,
  presets: {
    default: { doc: '200 steps on 256 samples', values: {} },
    tiny: { doc: '40 steps, 64 samples, 8 hidden units', values: { steps: 40, samples: 64, hidden: 8, batchSize: 16, checkpointEvery: 5 } },
  },
  defaultPreset: 'default',
  resumable: true,
  async handler(ctx) {
    await startBackend(ctx);
    const result = await runTraining({
      command: 'regress',
      ...ctx,
      createJob: (rng) => createRegressJob(ctx.config as unknown as RegressConfig, rng),
    });
    if (result.status === 'interrupted') return EXIT.interrupted;
    ctx.stdout.write(`done: ${result.step} steps, final mse ${result.final.mse?.toFixed(6)} (${result.dir})\n`);
    return EXIT.ok;
  },
};
