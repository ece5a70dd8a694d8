// How far the scan state carries one scene into the next: scenes A, B1, B2, … serialized as
// one CSP sequence in that order; A's colours are perturbed (coordinates untouched, so the
// sequence layout is identical), and the change of every later point's backbone features is
// binned by its distance in the serialized sequence from A's last point (mean over the
// serialization orders at full resolution). Without CSP the change is exactly zero.
import { concatScenes, modelInput } from '@kiln/pointcloud-ssl';
import { createRng, tf } from '@kiln/tensor';

export const DISTANCE_BINS = [1, 64, 256, 1024, 4096, Number.POSITIVE_INFINITY];

async function features(config, backbone, batch) {
  const input = modelInput(batch, config, { crossScene: true, sceneOrder: Int32Array.from(batch.offset, (_, i) => i) });
  const feat = tf.tidy(() => backbone.forward(input.feat, input.structure));
  const out = (await feat.data()).slice();
  feat.dispose();
  input.feat.dispose();
  return { feat: out, level: input.structure.levels[0] };
}

/** Relative feature change (mean |Δf| / mean |f|) of the points after A, per distance bin. */
export async function stateReach(config, backbone, scenes, seed) {
  const batch = concatScenes(scenes);
  const rng = createRng(seed);
  const color = batch.color.slice();
  const aEnd = batch.offset[0];
  for (let i = 0; i < aEnd * 3; i++) color[i] = Math.min(1, Math.max(0, color[i] + (rng.next() - 0.5)));
  const base = await features(config, backbone, batch);
  const moved = await features(config, backbone, { ...batch, color });
  const c = backbone.outChannels;
  const n = batch.coord.length / 3;
  // Distance of each point from A's last point, averaged over the orders' forward layouts.
  const dist = new Float64Array(n);
  for (const layout of base.level.layouts) {
    let last = -1;
    for (let p = 0; p < aEnd; p++) last = Math.max(last, layout.forwardSlot[p]);
    for (let p = aEnd; p < n; p++) dist[p] += (layout.forwardSlot[p] - last) / base.level.layouts.length;
  }
  const bins = DISTANCE_BINS.slice(0, -1).map((lo, i) => ({ from: lo, to: DISTANCE_BINS[i + 1], change: 0, norm: 0, points: 0 }));
  for (let p = aEnd; p < n; p++) {
    const bin = bins.find((b) => dist[p] >= b.from && dist[p] < b.to);
    if (!bin) continue;
    for (let k = 0; k < c; k++) {
      bin.change += Math.abs(moved.feat[p * c + k] - base.feat[p * c + k]);
      bin.norm += Math.abs(base.feat[p * c + k]);
    }
    bin.points++;
  }
  let aChange = 0;
  let aNorm = 0;
  for (let i = 0; i < aEnd * c; i++) {
    aChange += Math.abs(moved.feat[i] - base.feat[i]);
    aNorm += Math.abs(base.feat[i]);
  }
  return {
    sceneA: aNorm > 0 ? aChange / aNorm : 0,
    bins: bins.map((b) => ({ from: b.from, to: Number.isFinite(b.to) ? b.to : null, points: b.points, change: b.norm > 0 ? b.change / b.norm : null })),
  };
}
