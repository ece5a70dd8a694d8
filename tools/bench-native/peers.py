"""PyTorch peer for tools/bench-native/bench.mjs: the same work, timed in this process.

A small server: reads one JSON case per line on stdin, answers one JSON line with the
seconds of each timed run ({"samples": [...]}). Inputs are built once per case id, so
bench.mjs can alternate peer and kiln-native rounds on a shared machine.
bench.mjs starts it with OPENBLAS_CORETYPE=SkylakeX (Debian's OpenBLAS 0.3.21 does not
recognize this CPU; with SkylakeX its sgemm is correct and at full speed) and
torch.set_num_threads(threads).
"""
import json
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.set_grad_enabled(False)
prepared = {}


def gemm(m, n, k, trans_a, trans_b):
    torch.manual_seed(0)
    # Stored as tfjs stores them; .t() is a view, so torch hands the transposes to sgemm.
    a = torch.rand(k, m) * 2 - 1 if trans_a else torch.rand(m, k) * 2 - 1
    b = torch.rand(n, k) * 2 - 1 if trans_b else torch.rand(k, n) * 2 - 1
    a = a.t() if trans_a else a
    b = b.t() if trans_b else b
    return lambda: torch.mm(a, b)


def small_ops(op, reps):
    """`reps` calls of one small op (the tfjs side runs the same loop); per-call cost."""
    torch.manual_seed(0)
    a = torch.rand(64, 64)
    b = torch.rand(64, 64)
    v = torch.rand(64)
    idx = torch.randint(0, 64, (64,))
    fn = {
        "add": lambda: a + b,
        "mulBroadcast": lambda: a * v,
        "matMul": lambda: a @ b,
        "relu": lambda: torch.relu(a),
        "sigmoid": lambda: torch.sigmoid(a),
        "sum": lambda: a.sum(1),
        "transpose": lambda: a.t().contiguous(),
        "concat": lambda: torch.cat((a, b), 0),
        "gather": lambda: a.index_select(0, idx),
    }[op]

    def run():
        for _ in range(reps):
            fn()

    return run


def mlp(batch, width, layers):
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
        with torch.enable_grad():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()

    return step


def elementwise(n):
    x = torch.rand(n) * 2 - 1
    # tanh(x * 1.5 + 0.25) * sigmoid(x) - x^2, one new tensor per op as in tfjs
    return lambda: torch.sub(torch.mul(torch.tanh(torch.add(torch.mul(x, 1.5), 0.25)), torch.sigmoid(x)), torch.square(x))


def reduction(rows, cols):
    x = torch.rand(rows, cols)
    return lambda: (x.sum(dim=1), x.max(dim=0).values, x.mean())


def prepare(case):
    kind = case["kind"]
    if kind == "gemm":
        return gemm(case["m"], case["n"], case["k"], case["transA"], case["transB"])
    if kind == "small":
        return small_ops(case["op"], case["reps"])
    if kind == "mlp":
        return mlp(case["batch"], case["width"], case["layers"])
    if kind == "elementwise":
        return elementwise(case["n"])
    if kind == "reduction":
        return reduction(case["rows"], case["cols"])
    raise ValueError(f"unknown case kind {kind!r}")


print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": torch.__config__.show().count("OpenBLAS") > 0}), flush=True)
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
