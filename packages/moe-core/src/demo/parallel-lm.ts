/**
 * One training step of the demo LM on one rank of a world folded as Megatron folds it
 * (attention tp1·cp·dp, experts ep·edp on the same ranks; order tp-cp-ep-dp-pp): the global
 * batch's rows split over dp, every sequence's tokens over cp (load-balanced chunks, K/V
 * all-gathered in attention), the experts over ep (tokens dispatched all-to-all by
 * `ExpertParallelMoE`). tfjs's tape cannot span the communication, so the model runs as a
 * `StagedGraph`: local pieces (embedding, q/k/v, attention, norms, head) differentiated by
 * re-running them, K/V exchanges and MoE layers as communication steps with their own
 * backward.
 *
 * Gradient and loss scaling follow Megatron-Core: each rank's loss is the mean over its own
 * tokens; gradients are summed over the data×context-parallel ranks and divided by dp·cp (the
 * experts' over their expert-data-parallel ranks, by the same dp·cp); the MoE aux losses are
 * scaled by cp in backward (`MoEAuxLossAutoScaler.set_loss_scale(loss_scale · cp)`), while the
 * router sums its token counts over the CP group and divides the z-loss by cp
 * (`tp_cp_group`). The update is then that of one process on the whole batch.
 */
import { type Rng, tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';
import { auxLossCoeffFor } from '../config.js';
import { StagedGraph, type Step } from '../dispatch/staged.js';
import { ExpertParallelMoE, type ExpertParallelPass } from '../layer/expert-parallel.js';
import type { MoEWeights } from '../layer/weights.js';
import { getAuxLossScale, setAuxLossScale } from '../losses/auto-scaler.js';
import { ParallelFolding } from '../parallel/rank-generator.js';
import type { RouterCollectives } from '../router/router.js';
import { KvAllGather, contextParallelPositions, contextParallelSpans, shardSequence } from './context-parallel.js';
import { type MoeLm, attentionResidual, crossEntropy, embedTokens, lmHead, qkvProjection, rmsNorm } from './moe-lm.js';

/** How the world is split: context-parallel and expert-parallel sizes (dp = world / cp). */
export interface LmParallelLayout {
  cp: number;
  ep: number;
}

/** This rank's groups. */
export interface LmParallelGroups {
  world: Communicator;
  /** The ranks sharing one sequence's tokens. */
  cp: Communicator;
  /** The ranks dispatching tokens to each other's experts. */
  ep: Communicator;
  /** The ranks holding the same experts (their gradients are summed over it). */
  edp: Communicator;
  /** Data-parallel size and this rank's index. */
  dp: number;
  dpRank: number;
}

/** What one step reports (identical on every rank). */
export interface ParallelStepResult {
  /** Mean cross-entropy over the global batch. */
  loss: number;
  /** Per layer: routed tokens per expert over the global batch. */
  tokensPerExpert: Float32Array[];
  /** Per layer: aux / z loss values summed over the CP group, averaged over dp (what one process on the batch reports). */
  routerLosses: Record<string, number>[];
}

/**
 * The router's sum of token counts over the CP group (aux losses) is a synchronous callback,
 * but the group's collectives are asynchronous. So before each MoE layer a probe runs the
 * router on the layer's input (recording nothing), the counts it asks to reduce are summed
 * over the group, and the layer's own routing — forward and the re-run in backward — gets
 * them back in call order. A call whose local counts differ from the probe's fails loudly.
 */
export class RouterCountExchange {
  private captured: Float32Array[] = [];
  private reduced: Float32Array[] = [];
  private capturing = false;
  private next = 0;

  constructor(readonly group: Communicator) {}

  get collectives(): RouterCollectives {
    return { tpCpSize: this.group.size, allReduceTpCp: (local) => this.reduce(local) };
  }

  private reduce(local: Float32Array): ArrayLike<number> {
    if (this.capturing) {
      this.captured.push(Float32Array.from(local));
      return local;
    }
    if (this.reduced.length === 0) throw new Error('RouterCountExchange: the router reduced counts that no probe exchanged');
    const i = this.next++ % this.reduced.length;
    const probed = this.captured[i]!;
    if (probed.length !== local.length || probed.some((v, j) => v !== local[j])) {
      throw new Error('RouterCountExchange: the routing differs from the probe (input jitter under context parallelism?)');
    }
    return this.reduced[i]!;
  }

  /** Runs `probe` (a router forward), then sums the counts it reduced over the group. */
  async exchange(probe: () => void): Promise<void> {
    this.captured = [];
    this.capturing = true;
    try {
      probe();
    } finally {
      this.capturing = false;
    }
    this.next = 0;
    if (this.captured.length === 0) {
      this.reduced = [];
      return;
    }
    const packed = new Float32Array(this.captured.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.captured) {
      packed.set(c, at);
      at += c.length;
    }
    const summed = await this.group.allReduce(packed);
    at = 0;
    this.reduced = this.captured.map((c) => {
      const part = summed.slice(at, at + c.length);
      at += c.length;
      return part;
    });
  }
}

/** The MoE weights of one layer in the order of `ExpertParallelMoE`'s backward keys. */
const MOE_KEYS = ['router', 'fc1', 'fc2', 'sharedFc1', 'sharedFc2', 'sharedGate'] as const;
type MoeKey = (typeof MOE_KEYS)[number];

interface Param {
  /** Name in the staged graph. */
  name: string;
  variable: tf.Variable;
  /** Routed-expert weights: reduced over the expert-data-parallel group. */
  expert: boolean;
}

export class ParallelLmStep {
  /** Per block: the layer on this rank and its weights (local expert slices when ep > 1). */
  readonly layers: ExpertParallelMoE[];
  private readonly params: Param[];
  private readonly kv: KvAllGather[] = [];
  /** Per block, with cp > 1: the router's count exchange. */
  private readonly counts: (RouterCountExchange | null)[];

  private constructor(
    readonly model: MoeLm,
    readonly groups: LmParallelGroups,
    readonly layout: LmParallelLayout,
    layers: ExpertParallelMoE[],
    counts: (RouterCountExchange | null)[],
  ) {
    this.layers = layers;
    this.counts = counts;
    const m = model;
    this.params = [
      { name: 'embed', variable: m.embed, expert: false },
      { name: 'pos', variable: m.pos, expert: false },
      { name: 'finalNorm', variable: m.finalNorm, expert: false },
      { name: 'headBias', variable: m.headBias, expert: false },
    ];
    m.blocks.forEach((b, l) => {
      const own = { norm1: b.norm1, wq: b.wq, wk: b.wk, wv: b.wv, proj: b.proj, norm2: b.norm2 };
      for (const [k, v] of Object.entries(own)) this.params.push({ name: `${l}.${k}`, variable: v, expert: false });
      const w = layers[l]!.weights;
      for (const k of MOE_KEYS) {
        const v = w[k];
        if (v) this.params.push({ name: `${l}.${k}`, variable: v, expert: k === 'fc1' || k === 'fc2' });
      }
    });
  }

  /**
   * Splits `world` into the layout's groups (a collective: every rank calls it) and builds
   * this rank's MoE layers: with ep > 1 each holds its slice of the model's experts as
   * variables of its own (`syncModel` writes them back into the model).
   */
  static async create(model: MoeLm, world: Communicator, layout: LmParallelLayout): Promise<ParallelLmStep> {
    const { cp, ep } = layout;
    for (const [k, v] of Object.entries({ cp, ep })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`parallel LM: ${k} must be a positive integer, got ${String(v)}`);
    }
    if (world.size % cp !== 0) throw new Error(`parallel LM: the ${world.size} ranks do not divide into context-parallel groups of ${cp}`);
    if (world.size % ep !== 0) throw new Error(`parallel LM: the ${world.size} ranks do not divide into expert-parallel groups of ${ep}`);
    const c = model.moeConfig;
    if (c.numExperts % ep !== 0) throw new Error(`parallel LM: ${c.numExperts} experts do not divide over ep ${ep}`);
    if (auxLossCoeffFor(c, 'global_aux_loss') > 0 && world.size > 1) {
      throw new Error('parallel LM: global_aux_loss is not supported across ranks (its counts would need an all-reduce inside the router)');
    }
    if (!world.subgroups) throw new Error('parallel LM: context or expert parallelism needs a Communicator with subgroups()');
    const folding = new ParallelFolding({ worldSize: world.size, cp, ep, etp: 1 });
    const split = async (groups: number[][], what: string) => {
      const g = await world.subgroups!(groups);
      if (!g) throw new Error(`parallel LM: rank ${world.rank} is in no ${what} group`);
      return g;
    };
    const cpGroup = await split(folding.attentionGroups('cp'), 'cp');
    const dpGroup = await split(folding.attentionGroups('dp'), 'dp');
    const epGroup = await split(folding.expertGroups('ep'), 'ep');
    const edpGroup = await split(folding.expertGroups('edp'), 'edp');
    const groups: LmParallelGroups = { world, cp: cpGroup, ep: epGroup, edp: edpGroup, dp: folding.dp, dpRank: dpGroup.rank };
    const counts = model.blocks.map(() => (cp > 1 ? new RouterCountExchange(cpGroup) : null));
    const L = c.numExperts / ep;
    const layers = model.blocks.map((b, l) => {
      const full = b.moeWeights;
      const weights: MoEWeights =
        ep === 1
          ? full
          : {
              ...full,
              fc1: tf.variable(tf.slice(full.fc1, [epGroup.rank * L, 0, 0], [L, -1, -1])),
              fc2: tf.variable(tf.slice(full.fc2, [epGroup.rank * L, 0, 0], [L, -1, -1])),
            };
      // the model layer's own RNG (jitter, stochastic rounding), so checkpoints keep one stream
      const rng = (b.moe as unknown as { rng?: Rng | null }).rng ?? undefined;
      return new ExpertParallelMoE(c, weights, epGroup, { layerNumber: l + 1, rng, collectives: counts[l]?.collectives });
    });
    return new ParallelLmStep(model, groups, layout, layers, counts);
  }

  /** The variables this rank trains (the model's, with its local expert slices in place of the full experts). */
  trainableVariables(): tf.Variable[] {
    return this.params.map((p) => p.variable);
  }

  /**
   * One step on the global batch `x`, `y` ([batch, seqLength] row-major, identical on every
   * rank): forward and backward on this rank's rows and tokens, gradients reduced, `optimizer`
   * applied. Collective over the world.
   */
  async step(x: Int32Array, y: Int32Array, batch: number, seqLength: number, optimizer: tf.Optimizer): Promise<ParallelStepResult> {
    const { cp } = this.layout;
    const { dp, dpRank } = this.groups;
    if (batch % dp !== 0) throw new Error(`parallel LM: the global batch (${batch}) must divide evenly over dp ${dp}`);
    const rows = batch / dp;
    const mine = (a: Int32Array) => shardSequence(a.subarray(dpRank * rows * seqLength, (dpRank + 1) * rows * seqLength), rows, seqLength, cp, this.groups.cp.rank);
    const xs = mine(x);
    const ys = mine(y);
    const localLength = seqLength / cp;
    const previousScale = getAuxLossScale();
    setAuxLossScale(previousScale * cp);
    const engine = tf.engine();
    engine.startScope();
    let lossValue: number;
    let grads: Float32Array[];
    const passes: ExpertParallelPass[] = [];
    try {
      const graph = new StagedGraph(this.steps(xs, ys, rows, seqLength, localLength, passes));
      const feeds: Record<string, tf.Tensor> = {};
      for (const p of this.params) feeds[p.name] = p.variable;
      const [loss] = await graph.forward(feeds, ['loss']);
      lossValue = (await loss!.data())[0]!;
      const g = await graph.backward({ loss: tf.scalar(1) }, this.params.map((p) => p.name));
      grads = await Promise.all(this.params.map((p) => g[p.name]!.data() as Promise<Float32Array>));
      grads = grads.map((a) => Float32Array.from(a));
    } finally {
      engine.endScope();
      setAuxLossScale(previousScale);
    }
    await this.applyReduced(grads, optimizer);
    return this.report(lossValue, passes);
  }

  /** The staged graph of one forward on this rank's tokens (`xs`, `ys`: [rows, localLength]). */
  private steps(xs: Int32Array, ys: Int32Array, rows: number, seqLength: number, localLength: number, passes: ExpertParallelPass[]): Step[] {
    const m = this.model;
    const { heads, vocab } = m.shape;
    const cp = this.layout.cp;
    const cpRank = this.groups.cp.rank;
    const positions = contextParallelPositions(seqLength, cp, cpRank);
    const spans = contextParallelSpans(seqLength, cp, cpRank);
    const tokens = tf.tensor2d(xs, [rows, localLength], 'int32');
    const targets = tf.tensor2d(ys, [rows, localLength], 'int32');
    const steps: Step[] = [
      { kind: 'local', name: 'embed', inputs: ['embed', 'pos'], outputs: ['0.in'], run: ([e, p]) => [embedTokens(tokens, positions, e!, p!, vocab)] },
    ];
    m.blocks.forEach((_, l) => {
      const h = `${l}.in`;
      if (!this.kv[l]) this.kv[l] = new KvAllGather(this.groups.cp, rows, seqLength, m.shape.dModel);
      const layer = this.layers[l]!;
      const moeWeights = MOE_KEYS.filter((k) => layer.weights[k]);
      steps.push(
        { kind: 'local', name: `${l}.qkv`, inputs: [h, `${l}.norm1`, `${l}.wq`, `${l}.wk`, `${l}.wv`], outputs: [`${l}.q`, `${l}.k`, `${l}.v`], run: ([x, n, q, k, v]) => qkvProjection(x!, n!, q!, k!, v!) },
        this.kv[l]!.step(`${l}.kv`, [`${l}.k`, `${l}.v`], [`${l}.kFull`, `${l}.vFull`]),
        {
          kind: 'local',
          name: `${l}.attention`,
          inputs: [h, `${l}.q`, `${l}.kFull`, `${l}.vFull`, `${l}.proj`],
          outputs: [`${l}.mid`],
          run: ([x, q, k, v, p]) => [attentionResidual(x!, q!, k!, v!, p!, { batch: rows, heads, spans, keyLength: seqLength })],
        },
        { kind: 'local', name: `${l}.norm2`, inputs: [`${l}.mid`, `${l}.norm2`], outputs: [`${l}.moeIn`], run: ([x, n]) => [rmsNorm(x!, n!)] },
        {
          kind: 'comm',
          name: `${l}.moe`,
          inputs: [`${l}.moeIn`, ...moeWeights.map((k) => `${l}.${k}`)],
          outputs: [`${l}.moeOut`],
          forward: async ([x]) => {
            const input = x as tf.Tensor2D;
            const counts = this.counts[l];
            if (counts) {
              const router = layer.router;
              await counts.exchange(() => {
                tf.tidy(() => {
                  router.routing(router.gating(input, layer.weights.router as tf.Tensor2D), { seqLength: localLength, order: 'bs', record: false });
                });
              });
            }
            const pass = await layer.forward(input, { seqLength: localLength, order: 'bs' });
            passes[l] = pass;
            return [pass.output];
          },
          backward: async ([dy]) => {
            const g = await passes[l]!.backward(dy as tf.Tensor2D);
            return [g.hidden, ...moeWeights.map((k) => g[k as MoeKey]!)];
          },
        },
        { kind: 'local', name: `${l}.residual`, inputs: [`${l}.mid`, `${l}.moeOut`], outputs: [`${l + 1}.in`], run: ([a, b]) => [tf.add(a!, b!)] },
      );
    });
    steps.push({
      kind: 'local',
      name: 'head',
      inputs: [`${m.blocks.length}.in`, 'finalNorm', 'embed', 'headBias'],
      outputs: ['loss'],
      run: ([x, n, e, b]) => [crossEntropy(lmHead(x!, n!, e!, b!), targets, vocab)],
    });
    return steps;
  }

  /** Sums gradients over their groups, divides by dp·cp and applies them. */
  private async applyReduced(grads: Float32Array[], optimizer: tf.Optimizer): Promise<void> {
    const scale = 1 / (this.groups.dp * this.layout.cp);
    const reduceOver = async (group: Communicator, expert: boolean) => {
      const idx = this.params.flatMap((p, i) => (p.expert === expert ? [i] : []));
      if (idx.length === 0) return;
      const packed = new Float32Array(idx.reduce((n, i) => n + grads[i]!.length, 0));
      let at = 0;
      for (const i of idx) {
        packed.set(grads[i]!, at);
        at += grads[i]!.length;
      }
      const summed = group.size > 1 ? await group.allReduce(packed) : packed;
      at = 0;
      for (const i of idx) {
        const g = summed.subarray(at, at + grads[i]!.length);
        grads[i] = Float32Array.from(g, (v) => v * scale);
        at += g.length;
      }
    };
    await reduceOver(this.groups.world, false);
    await reduceOver(this.groups.edp, true);
    const named: tf.NamedTensorMap = {};
    this.params.forEach((p, i) => {
      named[p.variable.name] = tf.tensor(grads[i]!, p.variable.shape, 'float32');
    });
    optimizer.applyGradients(named);
    tf.dispose(Object.values(named));
  }

  /** Loss, expert load and router losses over the global batch (one all-reduce). */
  private async report(localLoss: number, passes: ExpertParallelPass[]): Promise<ParallelStepResult> {
    const E = this.model.moeConfig.numExperts;
    const keys = passes.map((p) => Object.keys(p.stats.losses).sort());
    const packed = [localLoss];
    passes.forEach((p, l) => {
      packed.push(...p.stats.tokensPerExpert);
      for (const k of keys[l]!) packed.push(p.stats.losses[k as keyof typeof p.stats.losses]!);
    });
    const world = this.groups.world;
    const summed = world.size > 1 ? await world.allReduce(Float32Array.from(packed)) : Float32Array.from(packed);
    let at = 1;
    const tokensPerExpert: Float32Array[] = [];
    const routerLosses: Record<string, number>[] = [];
    passes.forEach((_, l) => {
      tokensPerExpert.push(summed.slice(at, at + E));
      at += E;
      const losses: Record<string, number> = {};
      for (const k of keys[l]!) losses[k] = summed[at++]! / this.groups.dp;
      routerLosses.push(losses);
    });
    return { loss: summed[0]! / world.size, tokensPerExpert, routerLosses };
  }

  /**
   * End of a global batch (`MoELayer.endStep` on every rank): the expert bias moves with the
   * world's token counts (`updateExpertBias`), the routers' global aux-loss counts start over and
   * delayed-scaling FP8 histories roll once. Collective over the world.
   */
  async endStep(): Promise<void> {
    await this.updateExpertBias();
    for (const layer of this.layers) {
      layer.router.resetGlobalAuxLossTracker();
      layer.experts.endStep();
    }
  }

  /**
   * End of a global batch: the aux-loss-free expert bias moves with the token counts summed
   * over the world (Megatron's tp·dp·cp all-reduce), and the model's routers get the new bias.
   */
  async updateExpertBias(): Promise<void> {
    const states = this.layers.map((l) => l.router.expertBias);
    if (states.every((s) => !s)) return;
    const E = this.model.moeConfig.numExperts;
    const local = new Float32Array(states.length * E);
    states.forEach((s, l) => {
      if (s) local.set(s.localTokensPerExpert, l * E);
    });
    const world = this.groups.world;
    const global = world.size > 1 ? await world.allReduce(local) : local;
    states.forEach((s, l) => {
      if (!s) return;
      s.update(() => global.subarray(l * E, (l + 1) * E));
      const modelState = this.model.blocks[l]!.moe.router.expertBias;
      if (modelState) modelState.bias = Float32Array.from(s.bias);
    });
  }

  /** Copies the model routers' expert bias into this rank's layers (after a resume). */
  loadExpertBias(): void {
    this.layers.forEach((layer, l) => {
      const from = this.model.blocks[l]!.moe.router.expertBias;
      if (layer.router.expertBias && from) layer.router.expertBias.bias = Float32Array.from(from.bias);
    });
  }

  /**
   * Writes every rank's expert slices back into the model's full expert weights (an
   * all-gather over the EP group; nothing to do when ep = 1), so that evaluation, sampling
   * and checkpoints see the trained experts. Collective over the world.
   */
  async syncModel(): Promise<void> {
    if (this.layout.ep === 1) return;
    for (const [l, layer] of this.layers.entries()) {
      const full = this.model.blocks[l]!.moeWeights;
      for (const k of ['fc1', 'fc2'] as const) {
        const parts = await this.groups.ep.allGather((await layer.weights[k].data()) as Float32Array);
        const joined = new Float32Array(full[k].size);
        let at = 0;
        for (const p of parts) {
          joined.set(p, at);
          at += p.length;
        }
        const t = tf.tensor(joined, full[k].shape, 'float32');
        full[k].assign(t);
        t.dispose();
      }
    }
  }
}
