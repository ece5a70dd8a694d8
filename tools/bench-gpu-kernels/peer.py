"""PyTorch peers for the @kiln/gpu-kernels benchmark (run by bench.mjs, prints one JSON line).

- mamba's reference selective scan algorithm (the step-by-step loop of selective_scan_ref),
  forward + backward through autograd, at the requested shape;
- grouped GEMM as one torch.matmul per group, forward (and forward + backward).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)


def scan_ref(u, delta, A, B, C, D, z, delta_bias):
    # Mamba's reference recurrence, step by step (shapes as in mamba: u, delta, z [b, d, L];
    # A [d, N]; B, C [b, N, L]; D, delta_bias [d]).
    delta = F.softplus(delta + delta_bias[..., None])
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, u)
    x = A.new_zeros((batch, dim, dstate))
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum('bdn,bn->bd', x, C[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[:, None]
    return out * F.silu(z)


def timed(fn, runs, warmup=True):
    if warmup:
        fn()
    best = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return sum(best) / len(best)


def bench_scan(b, d, n, L, runs):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(b, d, L, generator=g, requires_grad=True)
    delta = (0.5 * torch.randn(b, d, L, generator=g)).requires_grad_()
    A = (-torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)).requires_grad_()
    B = torch.randn(b, n, L, generator=g, requires_grad=True)
    C = torch.randn(b, n, L, generator=g, requires_grad=True)
    D = torch.randn(d, generator=g, requires_grad=True)
    z = torch.randn(b, d, L, generator=g, requires_grad=True)
    bias = (0.1 * torch.randn(d, generator=g)).requires_grad_()
    w = torch.randn(b, d, L, generator=g)

    def step():
        out = scan_ref(u, delta, A, B, C, D, z, bias)
        (out * w).sum().backward()

    # Seconds per call are large here: one timed call, no warm-up (nothing to warm).
    return timed(step, runs, warmup=False)


def bench_grouped(sizes, k, n, runs):
    g = torch.Generator().manual_seed(1)
    m = sum(sizes)
    x = torch.randn(m, k, generator=g)
    w = torch.randn(len(sizes), k, n, generator=g)

    def fwd():
        outs = []
        s = 0
        for i, rows in enumerate(sizes):
            outs.append(x[s:s + rows] @ w[i])
            s += rows
        return torch.cat(outs)

    xg = x.clone().requires_grad_()
    wg = w.clone().requires_grad_()
    dy = torch.randn(m, n, generator=g)

    def fwd_bwd():
        outs = []
        s = 0
        for i, rows in enumerate(sizes):
            outs.append(xg[s:s + rows] @ wg[i])
            s += rows
        torch.cat(outs).backward(dy)

    with torch.no_grad():
        f = timed(fwd, runs)
    return f, timed(fwd_bwd, runs)


def main():
    cfg = json.loads(sys.argv[1])
    result = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    s = cfg['scan']
    if s:
        result['scan_fwd_bwd_s'] = bench_scan(s['batch'], s['dim'], s['N'], s['L'], s['runs'])
    gcfg = cfg['grouped']
    f, fb = bench_grouped(gcfg['sizes'], gcfg['K'], gcfg['N'], gcfg['runs'])
    result['grouped_fwd_s'] = f
    result['grouped_fwd_bwd_s'] = fb
    print(json.dumps(result))


if __name__ == '__main__':
    main()
