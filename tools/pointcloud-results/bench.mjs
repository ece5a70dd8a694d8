#!/usr/bin/env node
// Throughput of a CSP pre-training step (points per second) and of the selective scan it is
// built on, the scan side by side with a PyTorch peer (mamba's selective_scan_ref loop) in
// the same run. Run with `pnpm bench` (root) or `node bench.mjs`.
import { execFileSync } from 'node:child_process';
import { createRng, describeBackendChoice, initBackend, tf } from '@kiln/tensor';
import { kernelScan, pretrain, resolveConfig, selectiveScanName, selectiveScanReference } from '@kiln/pointcloud-ssl';

const choice = await initBackend();
console.log(describeBackendChoice(choice));
console.log(`model scan: ${selectiveScanName()}`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// 1. pre-training steps, default preset, CSP vs per-scene
for (const crossScene of [true, false]) {
  for (const objective of ['distill', 'msc']) {
    const cfg = resolveConfig('default', { pretrain: { steps: 6, crossScene, objective } });
    const times = [];
    let points = 0;
    await pretrain(cfg, {
      onStep: (i) => {
        if (i.step > 0) times.push(i.ms);
        points = i.points;
      },
    });
    const ms = median(times);
    console.log(`pretrain step (${objective}, ${crossScene ? 'CSP' : 'per-scene'}, ${cfg.pretrain.batchScenes} scenes, ${points} points): ${ms.toFixed(0)} ms median → ${((points / ms) * 1000).toFixed(0)} points/s`);
  }
}

// 2. the selective scan, forward + backward, vs PyTorch's sequential reference
const [batch, dim, len, n] = [1, 16, 640, 4];
const rng = createRng(1);
const args = {
  u: rng.normal([batch, dim, len]),
  delta: rng.normal([batch, dim, len]),
  A: tf.neg(tf.exp(rng.normal([dim, n], 0, 0.5))),
  B: rng.normal([batch, n, len]),
  C: rng.normal([batch, n, len]),
  D: rng.normal([dim]),
  deltaSoftplus: true,
};
const timeScan = (algorithm) => {
  const f = (u) => tf.sum((algorithm === 'kernel' ? kernelScan({ ...args, u }) : selectiveScanReference({ ...args, u }, { algorithm, chunkSize: 32 })).y);
  const ts = [];
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    const g = tf.grad(f)(args.u);
    g.dataSync();
    g.dispose();
    if (i > 0) ts.push(performance.now() - t0);
  }
  return median(ts);
};
const ours = { kernel: timeScan('kernel'), recurrence: timeScan('recurrence'), ssd: timeScan('ssd') };
const py = `
import time, torch
torch.set_num_threads(2)
b, d, L, n = ${batch}, ${dim}, ${len}, ${n}
u = torch.randn(b, d, L, requires_grad=True); delta = torch.randn(b, d, L); A = -torch.exp(0.5 * torch.randn(d, n))
B = torch.randn(b, n, L); C = torch.randn(b, n, L); D = torch.randn(d)
def ref(u):
    dt = torch.nn.functional.softplus(delta)
    dA = torch.exp(torch.einsum('bdl,dn->bdln', dt, A)); dBu = torch.einsum('bdl,bnl,bdl->bdln', dt, B, u)
    x = u.new_zeros(b, d, n); ys = []
    for i in range(L):
        x = dA[:, :, i] * x + dBu[:, :, i]
        ys.append(torch.einsum('bdn,bn->bd', x, C[:, :, i]))
    return torch.stack(ys, 2) + u * D[None, :, None]
ts = []
for i in range(6):
    t0 = time.perf_counter(); y = ref(u).sum(); y.backward(); u.grad = None
    if i > 0: ts.append((time.perf_counter() - t0) * 1000)
ts.sort(); print(ts[len(ts) // 2])
`;
let torchMs = Number.NaN;
try {
  torchMs = Number(execFileSync('/usr/bin/python3', ['-c', py], { env: { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' } }).toString().trim());
} catch (e) {
  console.log(`PyTorch peer unavailable: ${e.message.split('\n')[0]}`);
}
const shape = `[${batch}, ${dim}, ${len}], N = ${n}`;
console.log(`selective scan fwd+bwd ${shape}: gpu-kernels op ${ours.kernel.toFixed(1)} ms, reference recurrence ${ours.recurrence.toFixed(1)} ms, reference ssd ${ours.ssd.toFixed(1)} ms, torch selective_scan_ref ${torchMs.toFixed(1)} ms`);
console.log(`ratio torch / ours: gpu-kernels ${(torchMs / ours.kernel).toFixed(2)}×, recurrence ${(torchMs / ours.recurrence).toFixed(2)}×, ssd ${(torchMs / ours.ssd).toFixed(2)}× (> 1 = ours faster)`);
