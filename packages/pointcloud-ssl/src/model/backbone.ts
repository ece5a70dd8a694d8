/**
 * The serialized point U-Net: an embedding, encoder stages of Mamba blocks joined by
 * serialized pooling, and decoder stages joined by unpooling with skip connections (PTv3's
 * shape with the attention replaced by the bidirectional selective scan). Block i of the
 * whole network scans in serialization order i mod #orders.
 */
import { type Rng, type Tensor, tf } from '@kiln/tensor';
import { broadcastToChildren, segmentSum } from './gather.js';
import { biMamba, initBiMamba, type MambaConfig } from './mamba.js';
import { cols, initLayerNorm, initLinear, layerNorm, linear, type ParamStore, addParam, param, rows, silu } from './params.js';
import { registerModel } from './registry.js';
import type { PointStructure } from './structure.js';

export interface BackboneConfig {
  /** Registry name of the model. */
  name: string;
  /** Input feature channels (see `pointFeatures`). */
  inChannels: number;
  /** Channels per encoder stage. */
  channels: number[];
  /** Blocks per encoder stage. */
  depths: number[];
  /** Decoder blocks after unpooling into stage s (s = 0 .. stages−2). */
  decoderDepths: number[];
  /** Hidden width of the block MLP relative to the channels. */
  mlpRatio: number;
  mamba: MambaConfig;
}

export interface ForwardOptions {
  /** Weights to use (default: the model's own); a teacher passes its EMA copy. */
  params?: ParamStore;
  /** 1 where the point's input is replaced by the learned mask token, [n] float. */
  mask?: Tensor;
}

export interface PointBackbone {
  readonly config: BackboneConfig;
  /** Channels of the per-point output features. */
  readonly outChannels: number;
  readonly params: ParamStore;
  /** Number of mixer blocks (orders cycle over these). */
  readonly blockCount: number;
  /** Per-point features [n, outChannels] for input features [n, inChannels]. */
  forward(feat: Tensor, structure: PointStructure, options?: ForwardOptions): Tensor;
}

function initBlock(store: ParamStore, rng: Rng, name: string, c: number, cfg: BackboneConfig): void {
  initLayerNorm(store, `${name}.norm1`, c);
  initBiMamba(store, rng, `${name}.mixer`, c, cfg.mamba);
  initLayerNorm(store, `${name}.norm2`, c);
  initLinear(store, rng, `${name}.mlp.fc1`, c, Math.round(c * cfg.mlpRatio));
  initLinear(store, rng, `${name}.mlp.fc2`, Math.round(c * cfg.mlpRatio), c);
}

export class SerializedMambaUNet implements PointBackbone {
  readonly params: ParamStore = new Map();
  readonly outChannels: number;
  readonly blockCount: number;

  constructor(
    readonly config: BackboneConfig,
    rng: Rng,
  ) {
    const { channels, depths, decoderDepths } = config;
    const stages = channels.length;
    if (stages < 1) throw new Error('SerializedMambaUNet: channels must name at least one stage');
    if (depths.length !== stages) throw new Error(`SerializedMambaUNet: depths has ${depths.length} entries for ${stages} stages`);
    if (decoderDepths.length !== stages - 1) {
      throw new Error(`SerializedMambaUNet: decoderDepths must have ${stages - 1} entries (one per unpooling), got ${decoderDepths.length}`);
    }
    const s = this.params;
    initLinear(s, rng, 'embed.proj', config.inChannels, channels[0]!);
    initLayerNorm(s, 'embed.norm', channels[0]!);
    addParam(s, 'embed.mask_token', rng.normal([channels[0]!], 0, 0.02));
    let blocks = 0;
    for (let st = 0; st < stages; st++) {
      if (st > 0) {
        initLinear(s, rng, `enc${st}.down.proj`, channels[st - 1]!, channels[st]!);
        initLayerNorm(s, `enc${st}.down.norm`, channels[st]!);
      }
      for (let b = 0; b < depths[st]!; b++, blocks++) initBlock(s, rng, `enc${st}.block${b}`, channels[st]!, config);
    }
    for (let st = stages - 2; st >= 0; st--) {
      initLinear(s, rng, `dec${st}.up.proj`, channels[st + 1]!, channels[st]!);
      initLinear(s, rng, `dec${st}.up.skip`, channels[st]!, channels[st]!);
      initLayerNorm(s, `dec${st}.up.norm`, channels[st]!);
      for (let b = 0; b < decoderDepths[st]!; b++, blocks++) initBlock(s, rng, `dec${st}.block${b}`, channels[st]!, config);
    }
    this.blockCount = blocks;
    this.outChannels = channels[0]!;
  }

  forward(feat: Tensor, structure: PointStructure, options: ForwardOptions = {}): Tensor {
    const p = options.params ?? this.params;
    const { channels, depths, decoderDepths } = this.config;
    const stages = channels.length;
    if (structure.levels.length < stages) throw new Error(`forward: the structure has ${structure.levels.length} levels, the model needs ${stages}`);
    if (feat.shape[0] !== structure.levels[0]!.n) throw new Error(`forward: ${feat.shape[0]} feature rows for ${structure.levels[0]!.n} points`);
    if (feat.shape[1] !== this.config.inChannels) throw new Error(`forward: features have ${feat.shape[1]} channels, the model expects ${this.config.inChannels}`);
    let blockIndex = 0;
    const block = (name: string, x: Tensor, level: number): Tensor => {
      const layouts = structure.levels[level]!.layouts;
      const layout = layouts[blockIndex++ % layouts.length]!;
      const h = tf.add(x, biMamba(p, `${name}.mixer`, layerNorm(p, `${name}.norm1`, x), layout, this.config.mamba));
      const m = linear(p, `${name}.mlp.fc2`, silu(linear(p, `${name}.mlp.fc1`, layerNorm(p, `${name}.norm2`, h))));
      return tf.add(h, m);
    };
    let x = linear(p, 'embed.proj', feat);
    if (options.mask) {
      const n = x.shape[0]!;
      const m = cols(tf.reshape(options.mask, [n, 1]), channels[0]!);
      x = tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, rows(param(p, 'embed.mask_token'), n)));
    }
    x = silu(layerNorm(p, 'embed.norm', x));
    const skips: Tensor[] = [];
    for (let st = 0; st < stages; st++) {
      if (st > 0) {
        // Serialized pooling: mean of the projected children of each cluster.
        const lv = structure.levels[st - 1]!;
        const nNext = structure.levels[st]!.n;
        const pooled = segmentSum(linear(p, `enc${st}.down.proj`, x), lv.grouping!, true);
        if (pooled.shape[0] !== nNext) throw new Error(`forward: level ${st - 1} pools into ${pooled.shape[0]} clusters, level ${st} has ${nNext} points`);
        x = silu(layerNorm(p, `enc${st}.down.norm`, pooled));
      }
      for (let b = 0; b < depths[st]!; b++) x = block(`enc${st}.block${b}`, x, st);
      skips.push(x);
    }
    for (let st = stages - 2; st >= 0; st--) {
      const lv = structure.levels[st]!;
      const up = broadcastToChildren(linear(p, `dec${st}.up.proj`, x), lv.grouping!);
      x = silu(layerNorm(p, `dec${st}.up.norm`, tf.add(up, linear(p, `dec${st}.up.skip`, skips[st]!))));
      for (let b = 0; b < decoderDepths[st]!; b++) x = block(`dec${st}.block${b}`, x, st);
    }
    return x;
  }
}

registerModel('SerializedMambaUNet', (config, rng) => new SerializedMambaUNet(config, rng));
