import { describe, expect, it } from 'vitest';
import {
  MoEConfigError,
  auxLossCoeffFor,
  expertDataParallelSize,
  isAuxLossEnabled,
  quantizationAlignSize,
  toMegatronArgs,
  validateMoEConfig,
  type MoEConfigInput,
} from './config.js';

const base: MoEConfigInput = { numExperts: 8, hiddenSize: 16, ffnHiddenSize: 32 };

function fieldsOf(input: MoEConfigInput): string[] {
  try {
    validateMoEConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(MoEConfigError);
    return (e as MoEConfigError).issues.map((i) => i.field);
  }
  return [];
}

describe('validateMoEConfig', () => {
  it('fills Megatron defaults', () => {
    const c = validateMoEConfig(base);
    expect(c.topk).toBe(2);
    expect(c.routerScoreFunction).toBe('softmax');
    expect(c.routerLoadBalancingType).toBe('aux_loss');
    expect(c.auxLossCoeff).toBe(0);
    expect(c.capacityFactor).toBeNull();
    expect(c.dropPolicy).toBe('probs');
    expect(c.order).toBe('tp-cp-ep-dp-pp');
    expect(c.etp).toBe(1);
    expect(validateMoEConfig({ ...base, tp: 2 }).etp).toBe(2);
    expect(validateMoEConfig({ ...base, tp: 2, etp: 1 }).etp).toBe(1);
    expect(validateMoEConfig({ numExperts: 4, hiddenSize: 8 }).ffnHiddenSize).toBe(32);
  });

  it('treats a negative capacity factor as dropless, like Megatron', () => {
    expect(validateMoEConfig({ ...base, capacityFactor: -1 }).capacityFactor).toBeNull();
  });

  it('names the field of each invalid value', () => {
    expect(fieldsOf({ ...base, numExperts: 0 })).toContain('numExperts');
    expect(fieldsOf({ ...base, topk: 9 })).toContain('topk');
    expect(fieldsOf({ ...base, routerScoreFunction: 'relu' as never })).toContain('routerScoreFunction');
    expect(fieldsOf({ ...base, dropPolicy: 'random' as never })).toContain('dropPolicy');
    expect(fieldsOf({ ...base, capacityFactor: 0 })).toContain('capacityFactor');
    expect(fieldsOf({ ...base, inputJitterEps: 2 })).toContain('inputJitterEps');
    expect(fieldsOf({ ...base, fp8: 'e5m2' as never })).toContain('fp8');
    expect(fieldsOf({ ...base, recomputeModules: ['attention' as never] })).toContain('recomputeModules');
    expect(fieldsOf({ ...base, bogus: 1 } as never)).toContain('bogus');
  });

  it('rejects invalid combinations with the field named in the message', () => {
    expect(() => validateMoEConfig({ ...base, routerEnableExpertBias: true })).toThrow(/routerEnableExpertBias/);
    expect(() => validateMoEConfig({ ...base, routerLoadBalancingType: 'sinkhorn', auxLossCoeff: 0.01 })).toThrow(
      /auxLossCoeff.*Sinkhorn/,
    );
    expect(() => validateMoEConfig({ ...base, routerNumGroups: 2, routerGroupTopk: 3 })).toThrow(/routerGroupTopk/);
    expect(() => validateMoEConfig({ ...base, routerGroupTopk: 1 })).toThrow(/routerNumGroups/);
    expect(() => validateMoEConfig({ ...base, routerNumGroups: 3, routerGroupTopk: 1 })).toThrow(/routerNumGroups/);
    expect(() => validateMoEConfig({ ...base, ep: 3, dp: 3 })).toThrow(/ep: numExperts \(8\) must be divisible by ep \(3\)/);
    expect(() => validateMoEConfig({ ...base, ep: 4, dp: 2 })).toThrow(/ep:.*not divisible/);
    expect(() => validateMoEConfig({ ...base, topk: 1 })).toThrow(/routerPreSoftmax/);
    expect(() => validateMoEConfig({ ...base, padToCapacity: true })).toThrow(/padToCapacity/);
    expect(() => validateMoEConfig({ ...base, sharedExpertGate: true })).toThrow(/sharedExpertGate/);
    expect(() => validateMoEConfig({ ...base, fp8: 'e4m3', fp4: 'e2m1' })).toThrow(/fp4/);
    expect(() =>
      validateMoEConfig({ ...base, routerLoadBalancingType: ['aux_loss', 'seq_aux_loss'], auxLossCoeff: 0.01 }),
    ).toThrow(/auxLossCoeff/);
    expect(() => validateMoEConfig({ ...base, routerLoadBalancingType: 'sinkhorn', capacityFactor: 1 })).toThrow(
      /capacityFactor/,
    );
  });

  it('accepts valid combinations', () => {
    const c = validateMoEConfig({
      ...base,
      topk: 4,
      routerScoreFunction: 'sigmoid',
      routerEnableExpertBias: true,
      routerNumGroups: 4,
      routerGroupTopk: 2,
      routerTopkScalingFactor: 2.5,
      routerLoadBalancingType: ['seq_aux_loss', 'global_aux_loss'],
      auxLossCoeff: [1e-4, 1e-3],
      zLossCoeff: 1e-3,
      capacityFactor: 1.25,
      padToCapacity: true,
      ep: 4,
      tp: 2,
      etp: 1,
      dp: 4,
      sharedExpertSize: 64,
      sharedExpertGate: true,
      sharedExpertOverlap: true,
      fp8: 'hybrid',
      fp8Recipe: 'mxfp8',
    });
    expect(auxLossCoeffFor(c, 'seq_aux_loss')).toBe(1e-4);
    expect(auxLossCoeffFor(c, 'global_aux_loss')).toBe(1e-3);
    expect(auxLossCoeffFor(c, 'aux_loss')).toBe(0);
    expect(isAuxLossEnabled(c)).toBe(true);
    expect(expertDataParallelSize(c)).toBe(2);
    expect(quantizationAlignSize(c)).toBe(32);
  });
});

describe('README example', () => {
  it('the README config validates', () => {
    const c = validateMoEConfig({
      numExperts: 64,
      topk: 6,
      hiddenSize: 2048,
      ffnHiddenSize: 1408,
      routerScoreFunction: 'sigmoid',
      routerEnableExpertBias: true,
      routerBiasUpdateRate: 1e-3,
      routerNumGroups: 8,
      routerGroupTopk: 3,
      routerTopkScalingFactor: 2.5,
      routerLoadBalancingType: ['seq_aux_loss'],
      auxLossCoeff: [1e-4],
      zLossCoeff: 1e-3,
      capacityFactor: 1.25,
      dropPolicy: 'probs',
      sharedExpertSize: 2816,
      sharedExpertGate: true,
      tp: 2,
      ep: 8,
      etp: 1,
      dp: 8,
      pp: 1,
      cp: 1,
      order: 'tp-cp-ep-dp-pp',
      fp8: 'hybrid',
      fp8Recipe: 'mxfp8',
    });
    expect(expertDataParallelSize(c)).toBe(2);
    expect(() => validateMoEConfig({ numExperts: 8, hiddenSize: 16, ffnHiddenSize: 32, routerEnableExpertBias: true })).toThrow(
      "invalid MoEConfig: routerEnableExpertBias: expert bias (aux-loss-free routing) needs routerScoreFunction 'sigmoid' or 'sqrtsoftplus', not 'softmax'",
    );
  });
});

describe('toMegatronArgs', () => {
  it('emits Megatron flags for non-default fields', () => {
    const c = validateMoEConfig({
      numExperts: 64,
      hiddenSize: 1024,
      ffnHiddenSize: 512,
      topk: 6,
      routerScoreFunction: 'sigmoid',
      routerEnableExpertBias: true,
      routerLoadBalancingType: ['seq_aux_loss', 'global_aux_loss'],
      auxLossCoeff: [1e-4, 1e-3],
      ep: 8,
      dp: 8,
      recomputeModules: ['moe_act'],
      fp8: 'e4m3',
      fp8Recipe: 'blockwise',
      padExpertRowsToMultiple: 16,
    });
    const a = toMegatronArgs(c).join(' ');
    expect(a).toContain('--num-experts 64');
    expect(a).toContain('--moe-router-topk 6');
    expect(a).toContain('--moe-router-score-function sigmoid');
    expect(a).toContain('--moe-router-enable-expert-bias');
    expect(a).toContain('--moe-router-load-balancing-type seq_aux_loss global_aux_loss');
    expect(a).toContain('--moe-aux-loss-coeff 0.0001 0.001');
    expect(a).toContain('--expert-model-parallel-size 8');
    expect(a).toContain('--recompute-modules moe_act');
    expect(a).toContain('--fp8-format e4m3 --fp8-recipe blockwise');
    expect(a).toContain('--moe-router-padding-for-quantization');
    expect(a).not.toContain('--moe-router-pre-softmax');
    expect(a).not.toContain('--expert-tensor-parallel-size');
  });
});
