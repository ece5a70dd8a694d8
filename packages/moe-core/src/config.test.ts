import { describe, expect, it } from 'vitest';
import {
  MoEConfigError,
  auxLossCoeffFor,
  expertDataParallelSize,
  isAuxLossEnabled,
  quantizationAlignSize,
  validateMoEConfig,
  type MoEConfigInput,
} from './config.js';
import { configFromMegatronArgs, exportMegatronArgs, fromMegatronArgs, toMegatronArgs } from './config-megatron.js';
import { MOE_CONFIG_FIELDS, MOE_CONFIG_KEYS } from './config-fields.js';
import { isConfigError } from '@kiln/tensor';

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

describe('the field table', () => {
  it('declares every MoEConfig field once, and validation fills exactly those keys from it', () => {
    const c = validateMoEConfig(base);
    expect(Object.keys(c).sort()).toEqual([...MOE_CONFIG_KEYS].sort());
    for (const [key, spec] of Object.entries(MOE_CONFIG_FIELDS)) {
      expect(spec.doc.length, key).toBeGreaterThan(10);
      if ('default' in spec && spec.default !== null && key !== 'ffnHiddenSize' && key !== 'etp') {
        expect(c[key as keyof typeof c], key).toEqual(spec.default);
      }
    }
  });

  it("checks types and ranges from the table and reports a config error (a usage error on a command line)", () => {
    for (const bad of [{ topk: 0 }, { topk: 1.5 }, { zLossCoeff: -1 }, { activation: 'relu' }, { offloadModules: ['attn'] }, { groupedGemm: 'yes' }]) {
      try {
        validateMoEConfig({ ...base, ...bad } as never);
        expect.unreachable(JSON.stringify(bad));
      } catch (e) {
        expect(isConfigError(e)).toBe(true);
        expect((e as MoEConfigError).field).toBe(Object.keys(bad)[0]);
      }
    }
    expect(() => validateMoEConfig({ numExperts: 4 } as never)).toThrow(/hiddenSize: is required/);
  });

  it('collapses one-element lists as Megatron does, and fills derived defaults', () => {
    const c = validateMoEConfig({ ...base, ffnHiddenSize: null, tp: 2, etp: null, routerLoadBalancingType: ['seq_aux_loss'], auxLossCoeff: [1e-3] });
    expect(c.routerLoadBalancingType).toBe('seq_aux_loss');
    expect(c.auxLossCoeff).toBe(1e-3);
    expect(c.ffnHiddenSize).toBe(64);
    expect(c.etp).toBe(2);
  });
});

describe('Megatron-LM flags', () => {
  it("a default config exports what differs from Megatron's own defaults: grouped GEMM, the all-to-all dispatcher, SwiGLU", () => {
    const a = toMegatronArgs(validateMoEConfig(base));
    expect(a).toEqual([
      '--num-layers', '1', '--hidden-size', '16', '--num-experts', '8', '--moe-ffn-hidden-size', '32',
      '--moe-grouped-gemm', '--moe-token-dispatcher-type', 'alltoall', '--swiglu',
    ]);
  });

  it('emits flags for non-default fields, recompute with selective granularity, offloading with its switch', () => {
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
      recomputeModules: ['moe_act', 'shared_experts'],
      offloadModules: ['expert_fc1'],
      sharedExpertSize: 256,
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
    expect(a).toContain('--recompute-granularity selective --recompute-modules moe_act shared_experts');
    expect(a).toContain('--fine-grained-activation-offloading --offload-modules expert_fc1');
    expect(a).toContain('--fp8-format e4m3 --fp8-recipe blockwise');
    expect(a).toContain('--moe-router-padding-for-quantization');
    expect(a).not.toContain('--moe-router-pre-softmax');
    expect(a).not.toContain('--expert-tensor-parallel-size');
    expect(exportMegatronArgs(c).notExpressible).toEqual([expect.stringMatching(/^dp 8: Megatron derives/)]);
  });

  it('reads flags left out as Megatron reads them: its own defaults', () => {
    const { config, notes } = fromMegatronArgs('--num-experts 8 --hidden-size 64 --lr 3e-4 --seq-length 4096');
    const c = validateMoEConfig(config);
    expect(c.tokenDispatcherType).toBe('allgather');
    expect(c.groupedGemm).toBe(false);
    expect(c.activation).toBe('gelu');
    expect(c.topk).toBe(2);
    expect(c.ffnHiddenSize).toBe(256); // 4 × hidden
    expect(c.etp).toBe(1);
    expect(notes).toEqual([
      '--lr: not an MoE-layer setting, ignored',
      '--seq-length: not an MoE-layer setting, ignored',
      expect.stringMatching(/exact \(erf\) GELU/),
    ]);
    // --swiglu without an FFN width: Megatron's int(4·h·2/3 / 64)·64; etp follows tp; recompute defaults to core_attn
    const s = configFromMegatronArgs("--num-experts 8 --hidden-size 192 --swiglu --tensor-model-parallel-size 2 --recompute-granularity selective --moe-router-load-balancing-type='seq_aux_loss'");
    expect(s.config.ffnHiddenSize).toBe(512);
    expect(s.config.etp).toBe(2);
    expect(s.config.recomputeModules).toEqual([]);
    expect(s.config.routerLoadBalancingType).toBe('seq_aux_loss');
    expect(s.notes).toContain('--recompute-modules core_attn: not part of the MoE layer, ignored');
    // dp from the launcher's world, as Megatron derives it: world / (tp·cp·pp)
    const launched = fromMegatronArgs('--num-experts 8 --hidden-size 64 --context-parallel-size 2 --expert-model-parallel-size 4', { worldSize: 8 });
    expect([launched.config.cp, launched.config.ep, launched.config.dp]).toEqual([2, 4, 4]);
    expect(launched.notes.some((n) => n.startsWith('dp'))).toBe(false);
    expect(() => fromMegatronArgs('--num-experts 8 --context-parallel-size 3', { worldSize: 8 })).toThrow(/world of 8 ranks does not divide into tp·cp·pp = 3/);
  });

  it('round-trips: Kiln config → flags → the same config', () => {
    const configs: MoEConfigInput[] = [
      base,
      { ...base, activation: 'gelu', tokenDispatcherType: 'allgather', groupedGemm: false },
      {
        numExperts: 64, hiddenSize: 1024, ffnHiddenSize: 512, numLayers: 24, topk: 6, routerScoreFunction: 'sigmoid',
        routerEnableExpertBias: true, routerBiasUpdateRate: 1e-4, routerNumGroups: 8, routerGroupTopk: 3,
        routerTopkScalingFactor: 2.5, routerLoadBalancingType: ['seq_aux_loss', 'global_aux_loss'], auxLossCoeff: [1e-4, 1e-3],
        zLossCoeff: 1e-3, inputJitterEps: 0.01, sharedExpertSize: 1024, sharedExpertGate: true, sharedExpertOverlap: true,
        tp: 2, etp: 1, ep: 8, pp: 2, cp: 2, dp: 8, recomputeModules: ['moe_act'], offloadModules: ['moe_act', 'expert_fc1'],
        fp8: 'hybrid', fp8Recipe: 'mxfp8', padExpertRowsToMultiple: 32, calculatePerTokenLoss: true,
      },
      { ...base, capacityFactor: 1.25, padToCapacity: true, dropPolicy: 'position', routerPreSoftmax: true, topk: 1 },
      { ...base, fp8: 'e4m3', fp8Recipe: 'delayed', fp8Margin: 1, fp8AmaxHistoryLen: 16, fp8AmaxComputeAlgo: 'max' },
      { ...base, fp4: 'e2m1', recomputeModules: ['moe', 'shared_experts'], sharedExpertSize: 32 },
      { ...base, routerLoadBalancingType: 'sinkhorn', topk: 1 },
    ];
    for (const input of configs) {
      const c = validateMoEConfig(input);
      const { args, notExpressible } = exportMegatronArgs(c);
      // dp is the one field Megatron takes from the launcher (the world size), not from a flag
      const back = configFromMegatronArgs(args, { dp: c.dp });
      expect(back.config, args.join(' ')).toEqual(c);
      expect(back.notes).toEqual([]);
      expect(notExpressible.every((n) => n.startsWith('dp '))).toBe(true);
    }
  });

  it('round-trips: Megatron flags → config → the same flags', () => {
    const flags =
      '--num-layers 8 --hidden-size 512 --num-experts 16 --moe-ffn-hidden-size 256 --moe-router-topk 4 ' +
      '--moe-router-score-function sqrtsoftplus --moe-router-enable-expert-bias --moe-router-load-balancing-type seq_aux_loss ' +
      '--moe-aux-loss-coeff 0.0001 --moe-expert-capacity-factor 1.5 --moe-token-drop-policy position --moe-grouped-gemm ' +
      '--moe-token-dispatcher-type alltoall --tensor-model-parallel-size 2 --expert-model-parallel-size 4 ' +
      '--expert-tensor-parallel-size 1 --fp8-format hybrid --fp8-recipe tensorwise --swiglu ' +
      '--recompute-granularity selective --recompute-modules moe_act moe';
    const { config: c, notes } = configFromMegatronArgs(flags);
    expect(c.dp).toBe(2); // world 4 = tp 2 × dp 2 holds ep 4 × etp 1
    expect(notes).toEqual([expect.stringMatching(/^dp 2: the smallest/)]);
    const parse = (a: string[]) => {
      const m = new Map<string, string>();
      let k = '';
      for (const t of a) {
        if (t.startsWith('--')) {
          k = t;
          m.set(k, '');
        } else m.set(k, `${m.get(k)} ${t}`.trim());
      }
      return m;
    };
    const ours = parse(toMegatronArgs(c));
    const theirs = parse(flags.split(' '));
    expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(theirs));
  });

  it('names the flag of a malformed value and refuses what MoEConfig cannot hold', () => {
    expect(() => fromMegatronArgs('--num-experts 8 --hidden-size 64 --moe-router-topk two')).toThrow("--moe-router-topk two: 'two' is not a number");
    expect(() => fromMegatronArgs('--moe-grouped-gemm yes')).toThrow('--moe-grouped-gemm yes: takes no value');
    expect(() => fromMegatronArgs('8 --num-experts')).toThrow("'8' comes before any --flag");
    expect(() => fromMegatronArgs('--recompute-granularity full')).toThrow(/whole transformer layers/);
    expect(() => configFromMegatronArgs('--num-experts 6 --hidden-size 64 --expert-model-parallel-size 4')).toThrow(/ep: numExperts \(6\) must be divisible by ep \(4\)/);
  });
});
