/**
 * Per-layer logging of MoE metrics (Megatron's `MoEMetricsTracker`): the router records each
 * aux loss divided by its coefficient for its layer during forward; `report()` scales by the
 * micro-batch factor, averages over the layers that recorded, and clears.
 */
import { tf } from '@kiln/tensor';

export interface MetricSummary {
  /** Value per layer (index = layer number − 1), times the loss scale. */
  perLayer: number[];
  /** Mean over the layers that recorded a value. */
  mean: number;
}

export class MoEMetricsTracker {
  private readonly metrics = new Map<string, { values: Float64Array; recorded: boolean[] }>();

  /** Accumulate a scalar for a 1-based layer number out of numLayers. */
  record(name: string, value: number | tf.Tensor, layerNumber: number, numLayers: number): void {
    if (!Number.isInteger(layerNumber) || layerNumber < 1 || layerNumber > numLayers) {
      throw new Error(`MoEMetricsTracker.record(${name}): layerNumber must be in [1, ${numLayers}], got ${layerNumber}`);
    }
    const v = value instanceof tf.Tensor ? value.dataSync()[0]! : value;
    let entry = this.metrics.get(name);
    if (!entry || entry.values.length < numLayers) {
      const values = new Float64Array(numLayers);
      const recorded = new Array<boolean>(numLayers).fill(false);
      if (entry) {
        values.set(entry.values);
        entry.recorded.forEach((r, i) => {
          recorded[i] = r;
        });
      }
      entry = { values, recorded };
      this.metrics.set(name, entry);
    }
    entry.values[layerNumber - 1]! += v;
    entry.recorded[layerNumber - 1] = true;
  }

  /** Names recorded since the last clear. */
  names(): string[] {
    return [...this.metrics.keys()];
  }

  /** Current per-layer values of a metric without clearing (undefined if never recorded). */
  get(name: string): number[] | undefined {
    const e = this.metrics.get(name);
    return e ? Array.from(e.values) : undefined;
  }

  /** Summaries of every metric, each value times lossScale (1 / micro-batches), then clear. */
  report(lossScale = 1): Record<string, MetricSummary> {
    const out: Record<string, MetricSummary> = {};
    for (const [name, e] of this.metrics) {
      const perLayer = Array.from(e.values, (v) => v * lossScale);
      const used = perLayer.filter((_, i) => e.recorded[i]);
      out[name] = { perLayer, mean: used.length ? used.reduce((a, b) => a + b, 0) / used.length : 0 };
    }
    this.clear();
    return out;
  }

  clear(): void {
    this.metrics.clear();
  }
}

let globalTracker: MoEMetricsTracker | null = null;

/** The process-wide tracker routers record into by default. */
export function getMoEMetricsTracker(): MoEMetricsTracker {
  if (!globalTracker) globalTracker = new MoEMetricsTracker();
  return globalTracker;
}

/** Replace the process-wide tracker. */
export function setMoEMetricsTracker(tracker: MoEMetricsTracker): void {
  globalTracker = tracker;
}
