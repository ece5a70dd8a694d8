"""The same MoE layer as @kiln/moe-core's MoELayer (softmax top-k router, Megatron permute,
per-expert SwiGLU MLPs, prob-weighted unpermute), forward + backward, in Debian's
python3-torch.

  torch_moe.py T H F E K RUNS          one JSON line: median and min ms per forward+backward
  torch_moe.py T H F E K serve         after a warm-up step prints {"ready": ...}; then for each
                                       line "step" on stdin runs one step and prints {"ms": ...},
                                       so the caller can interleave these steps with its own
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
T, H, FF, E, K = (int(v) for v in sys.argv[1:6])
SERVE = sys.argv[6] == "serve"
RUNS = 0 if SERVE else int(sys.argv[6])
g = torch.Generator().manual_seed(0)
x = torch.randn(T, H, generator=g, requires_grad=True)
router = (torch.randn(E, H, generator=g) * 0.02).requires_grad_()
w1 = (torch.randn(E, H, 2 * FF, generator=g) * 0.02).requires_grad_()
w2 = (torch.randn(E, FF, H, generator=g) * 0.02).requires_grad_()
dy = torch.randn(T, H, generator=g)


def layer(x):
    logits = x.float() @ router.t()
    top_v, top_i = logits.topk(K, dim=-1)
    probs = torch.zeros(T, E).scatter(1, top_i, torch.softmax(top_v, dim=-1))
    routing_map = torch.zeros(T, E, dtype=torch.bool).scatter(1, top_i, True)
    # Megatron's permute: expert-major, token order inside each expert
    token_idx = routing_map.t().contiguous().nonzero()[:, 1]
    counts = routing_map.sum(0).tolist()
    rows = x.index_select(0, token_idx)
    outs = []
    for e, chunk in enumerate(rows.split(counts)):
        if chunk.shape[0] == 0:
            continue
        gate, up = (chunk @ w1[e]).chunk(2, dim=-1)
        outs.append((F.silu(gate) * up) @ w2[e])
    out = torch.cat(outs)
    weights = probs.t().contiguous().masked_select(routing_map.t().contiguous())
    return torch.zeros(T, H).index_add(0, token_idx, out * weights.unsqueeze(1))


def step():
    for p in (x, router, w1, w2):
        p.grad = None
    layer(x).backward(dy)


step()  # warm-up
if SERVE:
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t0 = time.perf_counter()
        step()
        print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}), flush=True)
    sys.exit(0)
times = []
for _ in range(RUNS):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"medianMs": times[len(times) // 2], "minMs": times[0], "threads": torch.get_num_threads(), "torch": torch.__version__}))
