import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParamStore } from '../model/params.js';
import { loadTrainingState, saveTrainingState } from './checkpoint.js';
import { resolveConfig } from './config.js';
import { syntheticSplits } from './dataset.js';
import { finetune } from './finetune.js';
import { pretrain } from './pretrain.js';
import { configDifference, type StepInfo, type TrainingState } from './state.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-pcssl-state-'));

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const values = (store: ParamStore): Record<string, number[]> => Object.fromEntries([...store].map(([k, v]) => [k, Array.from(v.dataSync())]));
/** History without the wall-clock field. */
const curve = (h: StepInfo[]) => h.map(({ ms: _ms, ...rest }) => rest);

// The EMA teacher ramps its momentum with the step and fine-tuning uses an EMA teacher, so
// every kind of state (weights, teacher, Adam slots and β products, RNG, schedule) matters.
const cfg = resolveConfig('tiny', {
  pretrain: { steps: 5, momentum: [0.9, 0.99] },
  finetune: { steps: 5, mode: 'spd', teacher: 'ema', teacherMomentum: 0.9, labelFraction: 0.7 },
});
const data = syntheticSplits(cfg);

describe('training state', () => {
  it('pre-training stopped at step 2, saved, loaded and resumed ends as the uninterrupted run', async () => {
    const straight = await pretrain(cfg, { data });
    let saved: TrainingState | undefined;
    const first = await pretrain(cfg, {
      data,
      onStep: async (info, control) => {
        if (info.step === 1) {
          saved = await control.state();
          return 'stop';
        }
      },
    });
    expect(first.completed).toBe(false);
    expect(first.history).toHaveLength(2);
    expect(saved!.step).toBe(2);
    expect(Object.keys(saved!.tensors).some((n) => n.startsWith('teacher-head/'))).toBe(true);
    expect(Object.keys(saved!.tensors).some((n) => n.startsWith('optim-acc/accBeta1'))).toBe(true);

    const path = join(dir, 'pretrain-state.safetensors');
    await saveTrainingState(path, saved!, { note: 'mine' });
    const { state, metadata } = await loadTrainingState(path);
    expect(metadata.note).toBe('mine');
    expect(state.step).toBe(2);

    const resumed = await pretrain(cfg, { data, resumeFrom: state });
    expect(resumed.completed).toBe(true);
    expect(values(resumed.backbone.params)).toEqual(values(straight.backbone.params));
    expect(values(resumed.teacher!)).toEqual(values(straight.teacher!));
    expect(values(resumed.head)).toEqual(values(straight.head));
    expect(curve(resumed.history)).toEqual(curve(straight.history));
  });

  it('fine-tuning with an EMA teacher resumed at every step ends as the uninterrupted run', async () => {
    const straight = await finetune(cfg, { data });
    // Capture after steps 1 and 3 of one run; resume from each.
    const states: TrainingState[] = [];
    await finetune(cfg, {
      data,
      onStep: async (info, control) => {
        if (info.step === 0 || info.step === 2) states.push(await control.state());
      },
    });
    expect(states.map((s) => s.step)).toEqual([1, 3]);
    for (const state of states) {
      const resumed = await finetune(cfg, { data, resumeFrom: state });
      expect(values(resumed.backbone.params), `from step ${state.step}`).toEqual(values(straight.backbone.params));
      expect(values(resumed.head)).toEqual(values(straight.head));
      expect(curve(resumed.history)).toEqual(curve(straight.history));
    }
    // A state captured at a step does not change when training goes on.
    expect(states[0]!.history).toHaveLength(1);
  });

  it('refuses a state of another phase or config, naming the field', async () => {
    let saved: TrainingState | undefined;
    await pretrain(cfg, {
      data,
      onStep: async (_i, control) => {
        saved = await control.state();
        return 'stop';
      },
    });
    await expect(finetune(cfg, { data, resumeFrom: saved! })).rejects.toThrow(/state is from 'pretrain', not 'finetune'/);
    await expect(pretrain(cfg, { data, resumeFrom: saved!, overrides: { pretrain: { lr: 0.5 } } })).rejects.toThrow(/config\.pretrain\.lr is 0\.5 but the state was saved with 0\.002/);
    const { tensors, ...rest } = saved!;
    const missing = Object.fromEntries(Object.entries(tensors).filter(([k]) => k !== 'head/ssl.proj1.weight'));
    await expect(pretrain(cfg, { data, resumeFrom: { ...rest, tensors: missing } })).rejects.toThrow(/lacks tensor 'head\/ssl\.proj1\.weight'/);
    expect(configDifference({ a: { b: [1, 2] } }, { a: { b: [1, 3] } })).toBe('a.b.1');
    expect(configDifference(cfg, structuredClone(cfg))).toBeUndefined();
    const path = join(dir, 'not-a-state.safetensors');
    const { saveCheckpoint } = await import('./checkpoint.js');
    await saveCheckpoint(path, [], cfg, 'pretrain');
    await expect(loadTrainingState(path)).rejects.toThrow(/not-a-state\.safetensors is not a training state/);
  });
});
