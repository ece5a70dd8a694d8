#!/usr/bin/env node
/**
 * Cross-checks @kiln/gpu-kernels against its anchors run in PyTorch (crosscheck_peer.py):
 * selectiveScan against mamba's reference recurrence, topkRouter against Megatron-Core's
 * top-k routing with every score function, group limit, bias and scaling, on random inputs
 * (no exact ties: torch leaves their order unspecified). Prints the worst errors; exits 1 on
 * a mismatch. Runs the ops on kiln-native when available (else cpu).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectiveScan, topkRouter } from '@kiln/gpu-kernels';
import { createRng, initBackend } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const backend = await initBackend({ prefer: 'kiln-native' });
const plain = (t) => ({ shape: t.shape, data: Array.from(t.dataSync()) });
const cases = [];
const ours = [];

// B/C layout: 'var' [batch, N, L], a group count G [batch, G, N, L], or 'const' [dim, N].
const SCANS = [
  [2, 4, 3, 17, true, true, 'var', 'var'],
  [1, 3, 5, 1, false, true, 'var', 'var'],
  [2, 2, 4, 70, true, false, 'var', 'var'],
  [2, 6, 3, 9, true, true, 3, 2],
  [2, 4, 4, 12, true, true, 'const', 'var'],
  [1, 6, 2, 8, false, true, 2, 'const'],
];
for (const [batch, dim, N, L, full, softplus, layoutB, layoutC] of SCANS) {
  const rng = createRng(L);
  const operand = (layout) => (layout === 'var' ? rng.normal([batch, N, L]) : layout === 'const' ? rng.normal([dim, N]) : rng.normal([batch, layout, N, L]));
  const a = { u: rng.normal([batch, dim, L]), delta: rng.normal([batch, dim, L], 0, 0.6), A: rng.normal([dim, N], -1, 0.3), B: operand(layoutB), C: operand(layoutC) };
  if (full) Object.assign(a, { D: rng.normal([dim]), z: rng.normal([batch, dim, L]), deltaBias: rng.normal([dim], 0, 0.3), initialState: rng.normal([batch, dim, N]) });
  const r = selectiveScan({ ...a, deltaSoftplus: softplus, returnLastState: true });
  ours.push({ out: r.out.dataSync(), last: r.lastState.dataSync() });
  cases.push({ op: 'scan', softplus, ...Object.fromEntries(Object.entries(a).map(([k, v]) => [k, plain(v)])) });
}
const ROUTES = [
  [{ topk: 2 }, 8],
  [{ topk: 3, usePreSoftmax: true, scalingFactor: 2.5 }, 10],
  [{ topk: 1 }, 4],
  [{ topk: 4, scoreFunction: 'sigmoid', numGroups: 4, groupTopk: 2, scalingFactor: 2.5 }, 16, true],
  [{ topk: 3, scoreFunction: 'sqrtsoftplus' }, 9, true],
  [{ topk: 1, scoreFunction: 'sigmoid' }, 6],
  [{ topk: 6, numGroups: 8, groupTopk: 3 }, 32],
  [{ topk: 2, usePreSoftmax: true, numGroups: 2, groupTopk: 1 }, 6],
];
for (const [opts, E, bias] of ROUTES) {
  const rng = createRng(E * 7);
  const logits = rng.normal([64, E], 0, 2);
  const expertBias = bias ? rng.normal([E], 0, 0.2) : undefined;
  const r = topkRouter(logits, expertBias ? { ...opts, expertBias } : opts);
  ours.push({ probs: r.probs.dataSync(), map: r.routingMap.dataSync() });
  cases.push({ op: 'router', opts, logits: plain(logits), expertBias: expertBias ? plain(expertBias) : undefined });
}

const peer = spawnSync('/usr/bin/python3', [path.join(here, 'crosscheck_peer.py')], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 1 << 28 });
if (peer.status !== 0) {
  console.error(peer.stderr);
  process.exit(2);
}
const theirs = JSON.parse(peer.stdout);
let failed = 0;
const maxRel = (a, b) => {
  let m = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return m / (1 + s);
};
cases.forEach((c, i) => {
  if (c.op === 'scan') {
    const e = Math.max(maxRel(ours[i].out, theirs[i].out), maxRel(ours[i].last, theirs[i].last));
    const ok = e < 1e-5;
    failed += ok ? 0 : 1;
    console.log(`${ok ? 'ok  ' : 'FAIL'} selectiveScan [${c.u.shape}] N=${c.A.shape[1]} B [${c.B.shape}] C [${c.C.shape}] vs mamba's reference: rel err ${e.toExponential(2)}`);
  } else {
    const mapSame = ours[i].map.every((v, j) => Number(v) === theirs[i].map[j]);
    const e = maxRel(ours[i].probs, theirs[i].probs);
    const ok = mapSame && e < 1e-6;
    failed += ok ? 0 : 1;
    console.log(`${ok ? 'ok  ' : 'FAIL'} topkRouter ${JSON.stringify(c.opts)}${c.expertBias ? ' +bias' : ''} vs Megatron-Core: map ${mapSame ? 'identical' : 'DIFFERS'}, probs rel err ${e.toExponential(2)}`);
  }
});
console.log(`${failed ? 'FAILED' : 'PASSED'} on ${backend.name}: ${cases.length - failed}/${cases.length}`);
process.exit(failed ? 1 : 0);
