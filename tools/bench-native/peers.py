"""Python peers for tools/bench-native/bench.mjs: numpy (OpenBLAS) and PyTorch, same work.

A small server: reads one JSON case per line on stdin, answers one JSON line with the
seconds of each timed run ({"samples": [...]}). Inputs are built once per case id, so
bench.mjs can alternate peer and kiln-native rounds on a shared machine.
Run with OPENBLAS_CORETYPE=SkylakeX (set by bench.mjs; DESIGN.md explains why).
"""
import json
import sys
import time

import numpy as np
import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
prepared = {}


def gemm_numpy(n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return lambda: a @ b


def mlp_torch(batch, width, layers):
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

    return step


def elementwise_torch(n):
    x = torch.rand(n) * 2 - 1
    # tanh(x * 1.5 + 0.25) * sigmoid(x) - x^2, one new tensor per op as in tfjs
    return lambda: torch.sub(torch.mul(torch.tanh(torch.add(torch.mul(x, 1.5), 0.25)), torch.sigmoid(x)), torch.square(x))


def reduction_torch(rows, cols):
    x = torch.rand(rows, cols)
    return lambda: (x.sum(dim=1), x.max(dim=0).values, x.mean())


def prepare(case):
    kind = case["kind"]
    if kind == "gemm":
        return gemm_numpy(case["n"])
    if kind == "mlp":
        return mlp_torch(case["batch"], case["width"], case["layers"])
    if kind == "elementwise":
        return elementwise_torch(case["n"])
    if kind == "reduction":
        return reduction_torch(case["rows"], case["cols"])
    raise ValueError(f"unknown case kind {kind!r}")


print(json.dumps({"numpy": np.__version__, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    case = json.loads(line)
    fn = prepared.get(case["id"])
    if fn is None:
        fn = prepared[case["id"]] = prepare(case)
        fn()  # warm-up
    samples = []
    for _ in range(case["runs"]):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    print(json.dumps({"samples": samples}), flush=True)
