"""Python peers for tools/bench-native/bench.mjs: numpy (OpenBLAS) and PyTorch, same work.

Reads one JSON request on argv[1], prints one JSON result: median seconds per case.
Run with OPENBLAS_CORETYPE=SkylakeX (set by bench.mjs; DESIGN.md explains why).
"""
import json
import statistics
import sys
import time

import numpy as np
import torch

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def gemm_numpy(n, runs):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return timed(lambda: a @ b, 2, runs)


def mlp_torch(batch, width, layers, runs):
    torch.manual_seed(0)
    mods = []
    for i in range(layers):
        mods.append(torch.nn.Linear(width, width))
        if i < layers - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, width)
    y = torch.randn(batch, width)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    return timed(step, 2, runs)


def elementwise_torch(n, runs):
    x = torch.rand(n) * 2 - 1
    # tanh(x * 1.5 + 0.25) * sigmoid(x) - x^2, one new tensor per op as in tfjs
    return timed(lambda: torch.sub(torch.mul(torch.tanh(torch.add(torch.mul(x, 1.5), 0.25)), torch.sigmoid(x)), torch.square(x)), 2, runs)


def reduction_torch(rows, cols, runs):
    x = torch.rand(rows, cols)
    return timed(lambda: (x.sum(dim=1), x.max(dim=0).values, x.mean()), 2, runs)


req = json.loads(sys.argv[1])
out = {"numpy": np.__version__, "torch": torch.__version__, "threads": torch.get_num_threads()}
for case in req:
    kind = case["kind"]
    if kind == "gemm":
        out[case["id"]] = gemm_numpy(case["n"], case["runs"])
    elif kind == "mlp":
        out[case["id"]] = mlp_torch(case["batch"], case["width"], case["layers"], case["runs"])
    elif kind == "elementwise":
        out[case["id"]] = elementwise_torch(case["n"], case["runs"])
    elif kind == "reduction":
        out[case["id"]] = reduction_torch(case["rows"], case["cols"], case["runs"])
print(json.dumps(out))
