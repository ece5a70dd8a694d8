"""The CSP pre-training step of @kiln/pointcloud-ssl in PyTorch (Debian's python3-torch, CPU),
as the speed peer of tools/bench-pointcloud/bench.mjs.

The same serialized Mamba U-Net (embedding, encoder stages of bidirectional Mamba blocks joined
by serialized mean pooling, decoder stages joined by unpooling with skip connections, block i
scanning in serialization order i mod #orders), the same parameters (names and shapes), the
same distillation objective (EMA teacher on view 1, masked student on view 2, prototype head,
Sinkhorn-Knopp targets), Adam and the EMA update. The selective scan is mamba.py-style pure
PyTorch: Δ·A and Δ·B·u materialised as [rows, dim, L, N] and a parallel (Blelloch) scan in
torch ops with its own backward.

The batches come prepared from the benchmark (a safetensors file: features, masks, and every
serialization layout and pooling map of both views), so both sides run the step on the same
inputs; host-side data preparation is outside the step on both sides.

  torch_pointcloud.py BATCHES.safetensors serve   prints {"ready": ..., "params": ...}; then for
                                                  each line "step" on stdin runs one step on the
                                                  next batch and prints {"ms": ..., "cpuMs": ...,
                                                  "loss": ...} (wall and process CPU time)
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("KILN_BENCH_THREADS", "2")))

DTYPES = {"F32": np.float32, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + size :]
    tensors = {}
    for name, e in header.items():
        start, end = e["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


# ---------------------------------------------------------------- the parallel scan


def pscan_(A, X):
    """In place over axis 2 of [rows, dim, L, N] (L a power of two): X[t] ← A[t]·X[t−1] + X[t].
    Blelloch: an up-sweep that folds pairs into their right element, then a down-sweep that
    completes the left elements; A is overwritten with segment products."""
    rows, dim, L, N = A.shape
    steps = int(math.log2(L))
    Aa, Xa = A, X
    for _ in range(steps):
        T = Xa.size(2)
        Aa = Aa.view(rows, dim, T // 2, 2, N)
        Xa = Xa.view(rows, dim, T // 2, 2, N)
        Xa[:, :, :, 1].add_(Aa[:, :, :, 1] * Xa[:, :, :, 0])
        Aa[:, :, :, 1].mul_(Aa[:, :, :, 0])
        Aa = Aa[:, :, :, 1]
        Xa = Xa[:, :, :, 1]
    for k in range(steps - 2, -1, -1):
        Aa = A[:, :, 2**k - 1 : L : 2**k]
        Xa = X[:, :, 2**k - 1 : L : 2**k]
        T = Xa.size(2)
        Aa = Aa.view(rows, dim, T // 2, 2, N)
        Xa = Xa.view(rows, dim, T // 2, 2, N)
        Xa[:, :, 1:, 0].add_(Aa[:, :, 1:, 0] * Xa[:, :, :-1, 1])


class PScan(torch.autograd.Function):
    """h_t = a_t·h_{t−1} + x_t over axis 1 of [rows, L, dim, N], h_{−1} = 0 (mamba.py's PScan)."""

    @staticmethod
    def forward(ctx, A_in, X_in):
        L = X_in.size(1)
        Lp = 1 << max(0, (L - 1).bit_length())
        A = A_in.transpose(1, 2)
        X = X_in.transpose(1, 2)
        if Lp != L:
            A = F.pad(A, (0, 0, 0, Lp - L))
            X = F.pad(X, (0, 0, 0, Lp - L))
        A = A.contiguous()
        X = X.contiguous()
        pscan_(A, X)
        H = X[:, :, :L]
        ctx.save_for_backward(A_in, H)
        return H.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad_in):
        A_in, H = ctx.saved_tensors  # A [rows, L, dim, N], H [rows, dim, L, N]
        L = H.size(2)
        Lp = 1 << max(0, (L - 1).bit_length())
        # λ_t = g_t + a_{t+1}·λ_{t+1}: the same scan, backwards in time, on A shifted by one.
        A = F.pad(A_in.transpose(1, 2)[:, :, 1:], (0, 0, 0, 1 + Lp - L)).flip(2).contiguous()
        G = F.pad(grad_in.transpose(1, 2), (0, 0, 0, Lp - L)).flip(2).contiguous()
        pscan_(A, G)
        G = G.flip(2)[:, :, :L]
        dA = torch.zeros_like(H)
        dA[:, :, 1:] = H[:, :, :-1] * G[:, :, 1:]
        return dA.transpose(1, 2), G.transpose(1, 2)


def selective_scan(u, delta, A, B, C, D):
    """u, delta [rows, L, dim] (Δ after softplus); A [dim, N]; B, C [rows, L, N]; D [dim]."""
    deltaA = torch.exp(delta.unsqueeze(-1) * A)  # [rows, L, dim, N]
    BX = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # [rows, L, dim, N]
    hs = PScan.apply(deltaA, BX)
    y = (hs @ C.unsqueeze(-1)).squeeze(3)  # [rows, L, dim]
    return y + D * u


# ---------------------------------------------------------------- the model


class Params:
    """Named tensors, shaped as @kiln/pointcloud-ssl's ParamStore (weights [in, out])."""

    def __init__(self):
        self.t = {}

    def add(self, name, tensor):
        self.t[name] = tensor.float().requires_grad_()

    def linear(self, name, fan_in, fan_out, bias=True):
        limit = math.sqrt(6 / (fan_in + fan_out))
        self.add(f"{name}.weight", torch.empty(fan_in, fan_out).uniform_(-limit, limit))
        if bias:
            self.add(f"{name}.bias", torch.zeros(fan_out))

    def norm(self, name, c):
        self.add(f"{name}.weight", torch.ones(c))
        self.add(f"{name}.bias", torch.zeros(c))


def mamba_dims(c, m):
    return round(m["expand"] * c), (m["dtRank"] if m["dtRank"] > 0 else math.ceil(c / 16))


def init_block(P, name, c, cfg):
    m = cfg["mamba"]
    inner, rank = mamba_dims(c, m)
    P.norm(f"{name}.norm1", c)
    P.linear(f"{name}.mixer.in_proj", c, 2 * inner, bias=False)
    P.linear(f"{name}.mixer.out_proj", inner, c, bias=False)
    for d in ("fwd", "bwd"):
        p = f"{name}.mixer.{d}"
        k = 1 / math.sqrt(m["dConv"])
        P.add(f"{p}.conv.weight", torch.empty(m["dConv"], inner).uniform_(-k, k))
        P.add(f"{p}.conv.bias", torch.zeros(inner))
        P.linear(f"{p}.x_proj", inner, rank + 2 * m["dState"], bias=False)
        r = 1 / math.sqrt(rank)
        P.add(f"{p}.dt_proj.weight", torch.empty(rank, inner).uniform_(-r, r))
        dt = torch.exp(torch.empty(inner).uniform_(math.log(1e-3), math.log(1e-1)))
        P.add(f"{p}.dt_proj.bias", dt + torch.log(-torch.expm1(-dt)))
        P.add(f"{p}.A_log", torch.log(torch.arange(1, m["dState"] + 1).float()).repeat(inner, 1))
        P.add(f"{p}.D", torch.ones(inner))
    P.norm(f"{name}.norm2", c)
    hidden = round(c * cfg["mlpRatio"])
    P.linear(f"{name}.mlp.fc1", c, hidden)
    P.linear(f"{name}.mlp.fc2", hidden, c)


def init_backbone(cfg):
    P = Params()
    ch, depths, dec = cfg["channels"], cfg["depths"], cfg["decoderDepths"]
    P.linear("embed.proj", cfg["inChannels"], ch[0])
    P.norm("embed.norm", ch[0])
    P.add("embed.mask_token", torch.randn(ch[0]) * 0.02)
    for st in range(len(ch)):
        if st > 0:
            P.linear(f"enc{st}.down.proj", ch[st - 1], ch[st])
            P.norm(f"enc{st}.down.norm", ch[st])
        for b in range(depths[st]):
            init_block(P, f"enc{st}.block{b}", ch[st], cfg)
    for st in range(len(ch) - 2, -1, -1):
        P.linear(f"dec{st}.up.proj", ch[st + 1], ch[st])
        P.linear(f"dec{st}.up.skip", ch[st], ch[st])
        P.norm(f"dec{st}.up.norm", ch[st])
        for b in range(dec[st]):
            init_block(P, f"dec{st}.block{b}", ch[st], cfg)
    return P


def init_head(c, proj_dim, prototypes):
    P = Params()
    P.linear("ssl.proj1", c, c)
    P.linear("ssl.proj2", c, proj_dim)
    P.add("ssl.prototypes", torch.randn(proj_dim, prototypes))
    P.linear("ssl.pred1", proj_dim, proj_dim)
    P.linear("ssl.pred2", proj_dim, proj_dim)
    return P


def linear(p, name, x):
    b = p.get(f"{name}.bias")
    w = p[f"{name}.weight"]
    return torch.addmm(b, x, w) if b is not None else x @ w


def layer_norm(p, name, x):
    return F.layer_norm(x, (x.size(-1),), p[f"{name}.weight"], p[f"{name}.bias"], 1e-5)


def direction(p, pre, seq, rows, length, m, inner, rank):
    N = m["dState"]
    K = m["dConv"]
    w = p[f"{pre}.conv.weight"]  # [K, inner]: weight[k] multiplies the input K−1−k steps back
    x = seq.view(rows, length, inner).transpose(1, 2)
    conv = F.conv1d(x, w.t().unsqueeze(1), p[f"{pre}.conv.bias"], padding=K - 1, groups=inner)[:, :, :length]
    u = F.silu(conv).transpose(1, 2)  # [rows, L, inner]
    dt_low, B, C = torch.split(u @ p[f"{pre}.x_proj.weight"], [rank, N, N], dim=-1)
    delta = F.softplus(dt_low @ p[f"{pre}.dt_proj.weight"] + p[f"{pre}.dt_proj.bias"])
    A = -torch.exp(p[f"{pre}.A_log"])
    y = selective_scan(u, delta, A, B, C, p[f"{pre}.D"])
    return y.reshape(rows * length, inner)


def bi_mamba(p, name, x, layout, m):
    n, c = x.shape
    inner, rank = mamba_dims(c, m)
    xz = x @ p[f"{name}.in_proj.weight"]
    xs, z = xz[:, :inner], xz[:, inner:]
    padded = torch.cat([xs, xs.new_zeros(1, inner)])
    mixed = None
    for d in ("fwd", "bwd"):
        slots, back = layout[d]
        seq = padded.index_select(0, slots)  # padding slots hold n: a zero row
        y = direction(p, f"{name}.{d}", seq, layout["rows"], layout["length"], m, inner, rank)
        per_point = y.index_select(0, back)
        mixed = per_point if mixed is None else mixed + per_point
    return (mixed * F.silu(z)) @ p[f"{name}.out_proj.weight"]


def backbone_forward(p, cfg, feat, structure, mask=None):
    ch, depths, dec = cfg["channels"], cfg["depths"], cfg["decoderDepths"]
    m = cfg["mamba"]
    index = [0]

    def block(name, x, level):
        layouts = structure[level]["layouts"]
        layout = layouts[index[0] % len(layouts)]
        index[0] += 1
        h = x + bi_mamba(p, f"{name}.mixer", layer_norm(p, f"{name}.norm1", x), layout, m)
        return h + linear(p, f"{name}.mlp.fc2", F.silu(linear(p, f"{name}.mlp.fc1", layer_norm(p, f"{name}.norm2", h))))

    x = linear(p, "embed.proj", feat)
    if mask is not None:
        mm = mask.unsqueeze(1)
        x = x * (1 - mm) + mm * p["embed.mask_token"]
    x = F.silu(layer_norm(p, "embed.norm", x))
    skips = []
    for st in range(len(ch)):
        if st > 0:
            pool = structure[st - 1]["pool"]
            proj = linear(p, f"enc{st}.down.proj", x)
            pooled = proj.new_zeros(pool["clusters"], proj.size(1)).index_add_(0, pool["segment"], proj) / pool["counts"]
            x = F.silu(layer_norm(p, f"enc{st}.down.norm", pooled))
        for b in range(depths[st]):
            x = block(f"enc{st}.block{b}", x, st)
        skips.append(x)
    for st in range(len(ch) - 2, -1, -1):
        pool = structure[st]["pool"]
        up = linear(p, f"dec{st}.up.proj", x).index_select(0, pool["segment"])
        x = F.silu(layer_norm(p, f"dec{st}.up.norm", up + linear(p, f"dec{st}.up.skip", skips[st])))
        for b in range(dec[st]):
            x = block(f"dec{st}.block{b}", x, st)
    return x


def l2_normalize(x, eps=1e-6):
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + eps)


def project(h, x):
    return l2_normalize(linear(h, "ssl.proj2", F.silu(linear(h, "ssl.proj1", x))))


def prototype_scores(h, z):
    return z @ l2_normalize(h["ssl.prototypes"].t()).t()


def sinkhorn_knopp(scores, temperature, iterations):
    n, k = scores.shape
    scaled = scores / temperature
    q = torch.exp(scaled - scaled.max())
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(0, keepdim=True) / k
        q = q / q.sum(1, keepdim=True) / n
    return q * n


def momentum_at(step, steps, start, end):
    if steps <= 1:
        return end
    return end - (end - start) * (math.cos(math.pi * step / (steps - 1)) + 1) / 2


# ---------------------------------------------------------------- batches and the step


def load_batches(path):
    t, meta = read_safetensors(path)
    info = json.loads(meta["batches"])
    batches = []
    for b, batch in enumerate(info):
        views = []
        for v in (1, 2):
            pre = f"b{b}.v{v}"
            levels = []
            for lv in batch["levels"][v - 1]:
                L = lv["level"]
                layouts = []
                for o in range(lv["orders"]):
                    q = f"{pre}.l{L}.o{o}"
                    fwd = t[f"{q}.forward"]
                    layouts.append(
                        {
                            "rows": fwd.shape[0],
                            "length": fwd.shape[1],
                            "fwd": (fwd.reshape(-1).long(), t[f"{q}.forwardSlot"].long()),
                            "bwd": (t[f"{q}.backward"].reshape(-1).long(), t[f"{q}.backwardSlot"].long()),
                        }
                    )
                level = {"layouts": layouts}
                if f"{pre}.l{L}.pool.segment" in t:
                    ptr = t[f"{pre}.l{L}.pool.ptr"].long()
                    level["pool"] = {
                        "segment": t[f"{pre}.l{L}.pool.segment"].long(),
                        "clusters": ptr.numel() - 1,
                        "counts": (ptr[1:] - ptr[:-1]).float().unsqueeze(1),
                    }
                levels.append(level)
            views.append({"feat": t[f"{pre}.feat"], "structure": levels})
        batches.append({"views": views, "mask": t[f"b{b}.mask"]})
    return batches, json.loads(meta["config"])


class Trainer:
    def __init__(self, cfg):
        torch.manual_seed(0)
        self.cfg = cfg
        model, pre = cfg["model"], cfg["pretrain"]
        self.student = init_backbone(model)
        self.head = init_head(model["channels"][0], pre["projectionDim"], pre["prototypes"])
        self.teacher = {k: v.detach().clone() for k, v in self.student.t.items()}
        self.teacher_head = {k: v.detach().clone() for k, v in self.head.t.items()}
        params = list(self.student.t.values()) + list(self.head.t.values())
        # tfjs's Adam on the CPU backends uses ε = 1e-7
        self.optimizer = torch.optim.Adam(params, lr=pre["lr"], eps=1e-7)
        self.step_index = 0

    def param_count(self):
        return sum(v.numel() for v in self.student.t.values()) + sum(v.numel() for v in self.head.t.values())

    def step(self, batch):
        cfg, pre = self.cfg["model"], self.cfg["pretrain"]
        v1, v2 = batch["views"]
        with torch.no_grad():
            z = project(self.teacher_head, backbone_forward(self.teacher, cfg, v1["feat"], v1["structure"]))
            target = sinkhorn_knopp(prototype_scores(self.teacher_head, z), pre["teacherTemperature"], pre["sinkhornIterations"])
        self.optimizer.zero_grad(set_to_none=True)
        z = project(self.head.t, backbone_forward(self.student.t, cfg, v2["feat"], v2["structure"], batch["mask"]))
        logp = F.log_softmax(prototype_scores(self.head.t, z) / pre["studentTemperature"], dim=1)
        loss = -(target * logp).sum(1).mean()
        loss.backward()
        self.optimizer.step()
        momentum = momentum_at(self.step_index, pre["steps"], *pre["momentum"])
        with torch.no_grad():
            for store, src in ((self.teacher, self.student.t), (self.teacher_head, self.head.t)):
                keys = list(store)
                torch._foreach_mul_([store[k] for k in keys], momentum)
                torch._foreach_add_([store[k] for k in keys], [src[k] for k in keys], alpha=1 - momentum)
        self.step_index += 1
        return loss.item()


def main():
    if len(sys.argv) != 3 or sys.argv[2] != "serve":
        sys.exit("usage: torch_pointcloud.py BATCHES.safetensors serve")
    batches, cfg = load_batches(sys.argv[1])
    trainer = Trainer(cfg)
    trainer.step(batches[0])  # warm-up
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__, "params": trainer.param_count()}), flush=True)
    i = 1
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t0 = time.perf_counter()
        c0 = time.process_time()
        loss = trainer.step(batches[i % len(batches)])
        cpu = time.process_time() - c0
        print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "cpuMs": cpu * 1000, "loss": loss}), flush=True)
        i += 1


if __name__ == "__main__":
    main()
