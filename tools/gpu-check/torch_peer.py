#!/usr/bin/env python3
"""PyTorch on CUDA for the device check: the GEMM and MLP-step tasks of bench.mjs at the same
shapes, named as bench.mjs names them, written as {task: {bestMs, medianMs}} for its --torch
column. Each timed step ends with torch.cuda.synchronize().

Usage: python3 torch_peer.py [--quick | --full] [--runs N] --json FILE
"""
import argparse
import json
import statistics
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
ap.add_argument("--full", action="store_true")
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--json", required=True)
args = ap.parse_args()
if not torch.cuda.is_available():
    raise SystemExit("torch_peer: torch.cuda is not available")
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = False  # fp32 GEMM, as the webgpu kernels compute
quick = args.quick and not args.full
gemm_sizes = [64, 256] if quick else [1024, 4096]
batch, width, layers = (64, 64, 4) if quick else (4096, 1024, 4)


def timed(step):
    step()
    torch.cuda.synchronize()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return {"bestMs": min(times), "medianMs": statistics.median(times)}


out = {}
for n in gemm_sizes:
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    out[f"gemm {n}x{n}x{n}"] = timed(lambda: a @ b)

mlp = torch.nn.Sequential(*[m for i in range(layers) for m in ([torch.nn.Linear(width, width)] + ([torch.nn.ReLU()] if i < layers - 1 else []))]).to(dev)
opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
x = torch.rand(batch, width, device=dev) * 2 - 1
y = torch.rand(batch, width, device=dev) * 2 - 1


def mlp_step():
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(mlp(x), y)
    loss.backward()
    opt.step()


out[f"mlp train step (batch {batch}, {layers}x{width}, adam)"] = timed(mlp_step)
with open(args.json, "w") as f:
    json.dump(out, f, indent=2)
for k, v in out.items():
    print(f"{k}: best {v['bestMs']:.3f} ms, median {v['medianMs']:.3f} ms")
