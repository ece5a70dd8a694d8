// Data- and expert-parallel training steps over MPI, each checked in-program against the
// same computation done by one process, and printed so runs on 1, 2 and 4 ranks can be
// compared. Plain JavaScript math keeps the check about the communication alone.
import { finalizeMpi, initMpi } from '../dist/index.js';

const world = await initMpi({ onError: 'throw' });
const { rank, size } = world;

// Deterministic data: a tiny linear congruential generator shared by every rank.
function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const rand = lcg(12345);
const features = 6;
const globalBatch = 16;
const X = Array.from({ length: globalBatch }, () => Float64Array.from({ length: features }, rand));
const trueW = Float64Array.from({ length: features }, rand);
const y = X.map((x) => x.reduce((s, v, j) => s + v * trueW[j], 0));

// --- Data parallel: each rank takes a contiguous shard of the global batch; gradients
// (already divided by the global batch) are summed with allReduce.
function gradient(w, rows) {
  const g = new Float64Array(features);
  let loss = 0;
  for (const i of rows) {
    const err = X[i].reduce((s, v, j) => s + v * w[j], 0) - y[i];
    loss += err * err / globalBatch;
    for (let j = 0; j < features; j++) g[j] += (2 * err * X[i][j]) / globalBatch;
  }
  return { g, loss };
}
const perRank = globalBatch / size;
const mine = Array.from({ length: perRank }, (_, k) => rank * perRank + k);
const all = [...Array(globalBatch).keys()];
let w = new Float64Array(features);
let wRef = new Float64Array(features);
const losses = [];
let maxGradDiff = 0;
for (let step = 0; step < 20; step++) {
  const local = gradient(w, mine);
  const packed = Float32Array.from([...local.g, local.loss]);
  const summed = await world.allReduce(packed, 'sum');
  const ref = gradient(wRef, all);
  for (let j = 0; j < features; j++) maxGradDiff = Math.max(maxGradDiff, Math.abs(summed[j] - ref.g[j]));
  losses.push(summed[features]);
  w = w.map((v, j) => v - 0.1 * summed[j]);
  wRef = wRef.map((v, j) => v - 0.1 * ref.g[j]);
}

// --- Expert parallel: 4 experts (a scale each) spread over the ranks; each rank routes its
// tokens (top-1 by a fixed rule) to the rank owning the expert with allToAllV, the expert
// rank applies it, and a second allToAllV brings results home.
const experts = 4;
const expertScale = (e) => 0.5 + e;
const ownerOf = (e) => Math.floor((e * size) / experts);
const tokensPerRank = 8 / size;
const myTokens = Array.from({ length: tokensPerRank }, (_, k) => rank * tokensPerRank + k);
const tokenValue = (t) => 1 + t * 0.25;
const expertOf = (t) => (t * 3) % experts;
const outbound = Array.from({ length: size }, () => []);
for (const t of myTokens) outbound[ownerOf(expertOf(t))].push(t, tokenValue(t));
const arrived = await world.allToAllV(outbound.map((c) => Float32Array.from(c)));
const processed = arrived.map((chunk) => {
  const out = new Float32Array(chunk.length);
  for (let i = 0; i < chunk.length; i += 2) {
    out[i] = chunk[i];
    out[i + 1] = chunk[i + 1] * expertScale(expertOf(chunk[i]));
  }
  return out;
});
const returned = await world.allToAllV(processed);
const results = new Map();
for (const chunk of returned) for (let i = 0; i < chunk.length; i += 2) results.set(chunk[i], chunk[i + 1]);
let maxExpertDiff = 0;
for (const t of myTokens) maxExpertDiff = Math.max(maxExpertDiff, Math.abs(results.get(t) - tokenValue(t) * expertScale(expertOf(t))));
const gathered = await world.allGather(Float32Array.from(myTokens.map((t) => results.get(t))));

console.log(JSON.stringify({ rank, size, losses, maxGradDiff, maxExpertDiff, expertOutputs: gathered.flatMap((g) => Array.from(g)) }));
await finalizeMpi();
