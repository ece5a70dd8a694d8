import { type Rng, tf } from '@kiln/tensor';
import type { Communicator } from '../comm/communicator.js';
import { type MoEConfig, type MoEConfigInput, validateMoEConfig } from '../config.js';
import { type Permuter, getPermuter } from '../dispatch/permute.js';
import { type StepTimings, StagedGraph } from '../dispatch/staged.js';
import { EtpExchange } from '../dispatch/etp-exchange.js';
import { AllGatherDispatcher, AllToAllDispatcher, type TokenDispatcher } from '../dispatch/token-dispatcher.js';
import type { GroupedGemm } from '../experts/grouped-gemm.js';
import { ActivationOffloader } from '../memory/offload.js';
import { createQuantRecipe } from '../quant/qdq.js';
import { ExpertsStage, type MoELayerStats, PermuteStage, SharedExpertsStage, expertGemmsFor } from './moe-layer.js';
import type { TokenOrder } from '../losses/load-balancing.js';
import type { MoEMetricsTracker } from '../losses/metrics.js';
import { drawInputJitter } from '../router/jitter.js';
import { type RouterCollectives, TopKRouter } from '../router/router.js';
import { routeTokens } from './route.js';
import type { MoEWeights } from './weights.js';

export interface ExpertParallelOptions {
  rng?: Rng;
  offloader?: ActivationOffloader;
  permuter?: Permuter;
  groupedGemm?: GroupedGemm;
  layerNumber?: number;
  tracker?: MoEMetricsTracker;
  /**
   * The router's reductions over the tensor×context-parallel group (aux-loss token counts,
   * z-loss scaling), for a layer whose tokens are one context-parallel shard of sequences.
   */
  collectives?: RouterCollectives;
}

/** The groups an expert-parallel layer communicates over (see `expertGroups`). */
export interface ExpertParallelGroups {
  /** Dispatches tokens: one rank per expert shard. */
  ep: Communicator;
  /** Shares one expert shard's FFN slices (etp > 1), or null. */
  etp: Communicator | null;
}

/** Cotangents returned by `backward`: the input's and every local weight's. */
export interface ExpertParallelGrads {
  hidden: tf.Tensor2D;
  router: tf.Tensor;
  fc1: tf.Tensor;
  fc2: tf.Tensor;
  sharedFc1?: tf.Tensor;
  sharedFc2?: tf.Tensor;
  sharedGate?: tf.Tensor;
}

export interface ExpertParallelPass {
  output: tf.Tensor2D;
  stats: MoELayerStats;
  /**
   * Back-propagates `dOutput`. Router and shared-expert gradients are this rank's
   * contribution (sum them over the data-parallel group, as a DP all-reduce would); expert
   * gradients are complete for this rank's local experts.
   */
  backward(dOutput: tf.Tensor2D): Promise<ExpertParallelGrads>;
  /** Wall time of each named stage and dispatcher phase, forward and backward. */
  timings: StepTimings;
}

/**
 * The MoE layer on one rank of an expert-parallel group: the same route / permute / experts /
 * shared stages as MoELayer, with the token dispatcher's six phases around the experts and
 * a Communicator (worker threads, MPI) moving the tokens. Router and shared experts are
 * replicated; every rank brings its own tokens.
 *
 * With `etp` = 1 the communicator is the EP group and this rank holds experts
 * [rank·E/ep, (rank+1)·E/ep) in `weights.fc1/fc2`. With expert tensor parallelism (`etp` > 1)
 * the layer takes the groups of a world of etp·ep ranks laid out as Megatron's expert rank
 * generator does (etp fastest: rank = epRank·etp + etpRank; `ExpertParallelMoE.create` or
 * `expertGroups` split them): the EP group {e·etp + t} dispatches, and each ETP group
 * {e·etp … e·etp + etp − 1} shares experts [e·E/ep, (e+1)·E/ep), rank t holding the t-th slice
 * of their FFN (`initMoEWeights`' `etpRank` / `etpSize`): fc1 column-parallel (gate and up
 * slices for SwiGLU), fc2 row-parallel with the partial outputs reduced over the ETP group
 * (`EtpExchange`).
 */
export class ExpertParallelMoE {
  readonly config: MoEConfig;
  readonly router: TopKRouter;
  readonly permute: PermuteStage;
  readonly experts: ExpertsStage;
  readonly shared: SharedExpertsStage | null;
  readonly dispatcher: TokenDispatcher;
  /** The ETP group's exchange when etp > 1. */
  readonly etp: EtpExchange | null;
  readonly offloader: ActivationOffloader;
  private readonly rng: Rng | null;

  /** The EP and ETP groups (an EP group alone when given a communicator). */
  readonly groups: ExpertParallelGroups;

  /**
   * `comm` is the EP group (etp = 1), or the EP and ETP groups; `create` splits a world into
   * them.
   */
  constructor(
    config: MoEConfig | MoEConfigInput,
    readonly weights: MoEWeights,
    comm: Communicator | ExpertParallelGroups,
    options: ExpertParallelOptions = {},
  ) {
    const groups: ExpertParallelGroups = 'ep' in comm ? comm : { ep: comm, etp: null };
    this.groups = groups;
    this.config = validateMoEConfig(withExpertParallel(config, groups.ep.size * (groups.etp?.size ?? 1)));
    const c = this.config;
    if ((groups.etp?.size ?? 1) !== c.etp) {
      throw new Error(`ExpertParallelMoE: config.etp is ${c.etp} but the ETP group has ${groups.etp?.size ?? 1} ranks (split a world with ExpertParallelMoE.create or expertGroups)`);
    }
    const L = c.numExperts / c.ep;
    const F = c.ffnHiddenSize / c.etp;
    if (!Number.isInteger(F)) throw new Error(`ExpertParallelMoE: ffnHiddenSize ${c.ffnHiddenSize} does not divide over etp ${c.etp}`);
    const F1 = c.activation === 'swiglu' ? 2 * F : F;
    const want1 = [L, c.hiddenSize, F1].join();
    const want2 = [L, F, c.hiddenSize].join();
    if (weights.fc1.shape.join() !== want1 || weights.fc2.shape.join() !== want2) {
      throw new Error(
        `ExpertParallelMoE: rank ${groups.ep.rank} of the EP group should hold fc1 [${want1}] and fc2 [${want2}] (numExperts ${c.numExperts} / ep ${c.ep} local experts, ffn ${c.ffnHiddenSize} / etp ${c.etp}), weights hold fc1 [${weights.fc1.shape}], fc2 [${weights.fc2.shape}]`,
      );
    }
    this.offloader = options.offloader ?? new ActivationOffloader();
    this.router = new TopKRouter(c, { weightVariable: weights.router, layerNumber: options.layerNumber, tracker: options.tracker, collectives: options.collectives });
    const permuter = options.permuter ?? getPermuter();
    this.permute = new PermuteStage(c, permuter);
    const recipe = createQuantRecipe(c, options.rng);
    this.experts = new ExpertsStage(c, this.offloader, expertGemmsFor(c, recipe, options.groupedGemm), recipe);
    this.shared = c.sharedExpertSize ? new SharedExpertsStage(c) : null;
    this.dispatcher =
      c.tokenDispatcherType === 'allgather'
        ? new AllGatherDispatcher(groups.ep, permuter, c.numExperts, c.hiddenSize)
        : new AllToAllDispatcher(groups.ep, permuter, c.numExperts, c.hiddenSize);
    this.etp = groups.etp ? new EtpExchange(groups.etp, L, c.hiddenSize) : null;
    this.rng = options.rng ?? null;
  }

  /** The layer on this rank of `world` (etp·ep ranks, etp fastest), splitting it into EP and ETP groups when etp > 1: a collective over `world`. */
  static async create(config: MoEConfig | MoEConfigInput, weights: MoEWeights, world: Communicator, options: ExpertParallelOptions = {}): Promise<ExpertParallelMoE> {
    const groups = await expertGroups(world, validateMoEConfig(withExpertParallel(config, world.size)).etp);
    return new ExpertParallelMoE(config, weights, groups, options);
  }

  /** End of a training step: expert-bias update, fresh global aux-loss counts, delayed FP8 scales (see `MoELayer.endStep`). */
  endStep(): void {
    this.router.updateExpertBias();
    this.router.resetGlobalAuxLossTracker();
    this.experts.endStep();
  }

  /** One forward on this rank; `training: false` evaluates (no jitter, aux/z losses or token counting), as `MoELayer.forward`. */
  async forward(hidden: tf.Tensor2D, options: { seqLength?: number; order?: TokenOrder; training?: boolean } = {}): Promise<ExpertParallelPass> {
    const c = this.config;
    const w = this.weights;
    const T = hidden.shape[0];
    if (hidden.rank !== 2 || hidden.shape[1] !== c.hiddenSize) {
      throw new Error(`ExpertParallelMoE.forward: hidden shape [${hidden.shape}] is not [tokens, hiddenSize ${c.hiddenSize}]`);
    }
    const training = options.training ?? true;
    const jitter = training ? drawInputJitter([T, c.hiddenSize], c.inputJitterEps, this.rng) : null;
    let routed = false;
    const stats: MoELayerStats = { tokensPerExpert: new Float32Array(c.numExperts), losses: {}, capacity: null };
    const route = {
      kind: 'local' as const,
      name: 'route',
      inputs: ['hidden', 'router'],
      outputs: ['probs'],
      run: ([h, r]: tf.Tensor[]) => {
        const out = routeTokens(this.router, h as tf.Tensor2D, r as tf.Tensor2D, { jitter, seqLength: options.seqLength, order: options.order, training, record: !routed });
        if (!routed) {
          routed = true;
          stats.tokensPerExpert = this.router.lastTokensPerExpert;
          stats.losses = { ...this.router.lastLosses };
          stats.capacity = out.capacity;
          this.dispatcher.setRouting({
            routingMap: out.routingMap,
            numTokens: T,
            plan: (map, n, offset, count) => this.permute.plan({ ...out, routingMap: map }, n, offset, count),
          });
        }
        return [out.probs];
      },
    };
    const etp = this.etp;
    const experts = {
      kind: 'local' as const,
      name: 'experts',
      inputs: [etp ? 'expertInputEtp' : 'expertInput', 'fc1', 'fc2'],
      outputs: [etp ? 'expertOutputEtp' : 'expertOutput'],
      run: ([x, a, b]: tf.Tensor[]) => [this.experts.forward(x as tf.Tensor2D, a!, b!, etp ? etp.rowsPerLocalExpert() : this.dispatcher.rowsPerLocalExpert())],
    };
    // ETP: all-gather the dispatched rows over the group before the experts, reduce-scatter the partial outputs after
    const expertSteps = etp
      ? [etp.gatherStep('expertInput', 'expertInputEtp', () => this.dispatcher.rowsPerLocalExpert()), experts, etp.scatterStep('expertOutputEtp', 'expertOutput')]
      : [experts];
    const sharedNames = w.sharedGate ? ['hidden', 'sharedFc1', 'sharedFc2', 'sharedGate'] : ['hidden', 'sharedFc1', 'sharedFc2'];
    const shared = this.shared
      ? {
          kind: 'local' as const,
          name: 'sharedExperts',
          inputs: sharedNames,
          outputs: ['sharedOutput'],
          run: ([h, a, b, g]: tf.Tensor[]) => [this.shared!.forward(h as tf.Tensor2D, a!, b!, g ?? null)],
          // with overlap: after the dispatch all-to-all is started, forward and backward
          ...(c.sharedExpertOverlap ? { overlaps: 'tokenDispatch' } : {}),
        }
      : null;
    const output = {
      kind: 'local' as const,
      name: 'output',
      inputs: shared ? ['routedOutput', 'sharedOutput'] : ['routedOutput'],
      outputs: ['output'],
      run: (xs: tf.Tensor[]) => [xs.length === 2 ? tf.add(xs[0]!, xs[1]!) : tf.clone(xs[0]!)],
    };
    const [pre, dispatch, post] = this.dispatcher.dispatchSteps();
    // With overlap the shared experts run after the all-to-all is started and before it is
    // awaited; in backward after the reverse all-to-all is started (StagedGraph's `overlaps`).
    const steps = [route, pre!, ...(shared && !c.sharedExpertOverlap ? [shared] : []), dispatch!, ...(shared && c.sharedExpertOverlap ? [shared] : []), post!, ...expertSteps, ...this.dispatcher.combineSteps(), output];
    const graph = new StagedGraph(steps);
    const feeds: Record<string, tf.Tensor> = { hidden, router: w.router, fc1: w.fc1, fc2: w.fc2 };
    if (w.sharedFc1 && w.sharedFc2) Object.assign(feeds, { sharedFc1: w.sharedFc1, sharedFc2: w.sharedFc2 });
    if (w.sharedGate) feeds.sharedGate = w.sharedGate;
    const [out] = await graph.forward(feeds, ['output']);
    return {
      output: out as tf.Tensor2D,
      stats,
      timings: graph.timings,
      backward: async (dOutput) => {
        const wrt = Object.keys(feeds);
        const g = await graph.backward({ output: dOutput }, wrt);
        jitter?.dispose();
        return { ...g, hidden: g.hidden as tf.Tensor2D } as ExpertParallelGrads;
      },
    };
  }
}

/**
 * The config for a world of `worldSize` expert ranks: ep = worldSize / etp (etp from the
 * config, default tp). When the attention world (tp·cp·dp·pp) cannot hold etp·ep·pp, dp is
 * set to make it the same world (the expert ranks are data-parallel ranks of attention, as in
 * Parallel Folding).
 */
export function withExpertParallel(config: MoEConfig | MoEConfigInput, worldSize: number): MoEConfigInput {
  const tp = config.tp ?? 1;
  const cp = config.cp ?? 1;
  const pp = config.pp ?? 1;
  const etp = config.etp ?? tp;
  if (!Number.isInteger(worldSize / etp)) throw new Error(`ExpertParallelMoE: ${worldSize} ranks do not divide into ETP groups of etp ${etp}`);
  const ep = worldSize / etp;
  const world = tp * cp * (config.dp ?? 1) * pp;
  return world % (etp * ep * pp) === 0 ? { ...config, ep } : { ...config, ep, dp: worldSize / (tp * cp * pp) };
}

/**
 * The EP and ETP groups of this rank in a world of etp·ep ranks (etp fastest, Megatron's
 * expert order etp-ep-…): ETP group {e·etp + t : t}, EP group {e·etp + t : e}. A collective
 * over `world` (every rank calls it).
 */
export async function expertGroups(world: Communicator, etp: number): Promise<ExpertParallelGroups> {
  if (etp === 1) return { ep: world, etp: null };
  if (!world.subgroups) throw new Error(`ExpertParallelMoE: etp ${etp} > 1 needs a Communicator with subgroups()`);
  if (world.size % etp !== 0) throw new Error(`ExpertParallelMoE: ${world.size} ranks do not divide into ETP groups of etp ${etp}`);
  const ep = world.size / etp;
  const epGroups = Array.from({ length: etp }, (_, t) => Array.from({ length: ep }, (_, e) => e * etp + t));
  const etpGroups = Array.from({ length: ep }, (_, e) => Array.from({ length: etp }, (_, t) => e * etp + t));
  const epGroup = await world.subgroups(epGroups);
  const etpGroup = await world.subgroups(etpGroups);
  if (!epGroup || !etpGroup) throw new Error(`ExpertParallelMoE: rank ${world.rank} is in no EP or ETP group of ${world.size} ranks`);
  return { ep: epGroup, etp: etpGroup };
}
