"""Reference values for @kiln/moe-core's router, losses and capacity tests.

Re-implements, in PyTorch (Debian python3-torch), the formulas of Megatron-Core's
megatron/core/transformer/moe/moe_utils.py (topk_routing_with_score_function,
group_limited_topk, compute_routing_scores_for_aux_loss, switch_load_balancing_loss_func,
z_loss_func, sinkhorn, apply_router_token_dropping, pad_routing_map, get_updated_expert_bias)
and writes src/fixtures/megatron-reference.json. Run: /usr/bin/python3 scripts/megatron-reference.py
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
torch.set_num_threads(1)


def group_limited_topk(scores, topk, num_tokens, num_experts, num_groups, group_topk):
    group_scores = scores.view(num_tokens, num_groups, -1).topk(topk // group_topk, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=group_topk, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(num_tokens, num_groups, num_experts // num_groups).reshape(num_tokens, -1)
    masked = scores.masked_fill(~score_mask.bool(), float('-inf'))
    return torch.topk(masked, k=topk, dim=-1)


def route(logits, topk, pre=False, num_groups=None, group_topk=None, scaling=None, fn='softmax', bias=None):
    T, E = logits.shape

    def ctopk(s):
        if group_topk:
            return group_limited_topk(s, topk, T, E, num_groups, group_topk)
        return torch.topk(s, k=topk, dim=1)

    if fn == 'softmax':
        if pre:
            scores = torch.softmax(logits, dim=-1, dtype=torch.float32)
            probs, idx = ctopk(scores)
        else:
            scores, idx = ctopk(logits)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    else:
        scores = torch.sigmoid(logits.float()) if fn == 'sigmoid' else torch.nn.functional.softplus(logits.float()).sqrt()
        if bias is not None:
            _, idx = ctopk(scores + bias)
            scores = torch.gather(scores, 1, idx)
        else:
            scores, idx = ctopk(scores)
        probs = scores / (scores.sum(dim=-1, keepdim=True) + 1e-20) if topk > 1 else scores
    if scaling:
        probs = probs * scaling
    rp = torch.zeros_like(logits).scatter(1, idx, probs)
    rm = torch.zeros_like(logits).int().scatter(1, idx, 1).bool()
    return rp, rm, idx


def aux_scores(logits, topk, fn):
    if fn == 'softmax':
        s = torch.softmax(logits, dim=-1, dtype=torch.float32)
    elif fn == 'sigmoid':
        s = torch.sigmoid(logits)
        s = s / (s.sum(dim=-1, keepdim=True) + 1e-20)
    else:
        s = torch.nn.functional.softplus(logits).sqrt()
        s = s / (s.sum(dim=-1, keepdim=True) + 1e-20)
    _, idx = torch.topk(s, k=topk, dim=1)
    return torch.zeros_like(logits).int().scatter(1, idx, 1).bool(), s


def switch_loss(probs, tpe, T, topk, E, coeff):
    return torch.sum(probs.sum(dim=0) * tpe) * (E * coeff / (topk * T * T))


def z_loss(logits, coeff):
    return torch.mean(torch.square(torch.logsumexp(logits, dim=-1))) * coeff


def sinkhorn(cost, tol=0.0001):
    cost = torch.exp(cost)
    d0 = torch.ones(cost.size(0), dtype=cost.dtype)
    d1 = torch.ones(cost.size(1), dtype=cost.dtype)
    eps = 0.00000001
    error = 1e9
    d1_old = d1
    while error > tol:
        d0 = (1 / d0.size(0)) * 1 / (torch.sum(d1 * cost, 1) + eps)
        d1 = (1 / d1.size(0)) * 1 / (torch.sum(d0.unsqueeze(1) * cost, 0) + eps)
        error = torch.mean(torch.abs(d1_old - d1))
        d1_old = d1
    return d1 * cost * d0.unsqueeze(1)


def drop(rp, rm, topk, factor, policy, pad):
    T, E = rp.shape
    cap = math.ceil((T * topk / E) * factor)
    if cap > T:
        cm = torch.ones_like(rp).bool()
    else:
        key = rp if policy == 'probs' else rm.int()
        _, ci = torch.topk(key, k=cap, dim=0, sorted=False)
        cm = torch.zeros_like(rp).scatter(0, ci, 1).bool()
    fm = cm if pad else torch.logical_and(rm, cm)
    return rp * fm, fm, cap


def pad_map(rm, mult):
    rm = rm.clone().transpose(0, 1)
    n = rm.sum(dim=1)
    to_pad = (-n) % mult
    zr = torch.cumsum((rm == 0).int(), dim=1)
    rm[zr <= to_pad.unsqueeze(1)] = 1
    return rm.transpose(0, 1)


def L(t):
    return t.detach().double().tolist()


cases = []
configs = [
    dict(topk=2, fn='softmax'),
    dict(topk=2, fn='softmax', pre=True),
    dict(topk=1, fn='softmax', pre=True),
    dict(topk=3, fn='sigmoid'),
    dict(topk=1, fn='sigmoid'),
    dict(topk=2, fn='sqrtsoftplus'),
    dict(topk=4, fn='sigmoid', bias=True, num_groups=4, group_topk=2, scaling=2.5),
    dict(topk=4, fn='softmax', num_groups=4, group_topk=2),
    dict(topk=2, fn='softmax', pre=True, num_groups=2, group_topk=1, scaling=1.5),
    dict(topk=2, fn='sqrtsoftplus', bias=True),
]
for ci, cfg in enumerate(configs):
    for tie in (False, True):
        T, E = 12, 8
        logits = torch.randn(T, E)
        if tie:
            logits = torch.round(logits * 2) / 2  # many exact ties
        logits.requires_grad_(True)
        bias = (torch.round(torch.randn(E) * 4) / 40) if cfg.get('bias') else None
        rp, rm, idx = route(logits, cfg['topk'], cfg.get('pre', False), cfg.get('num_groups'), cfg.get('group_topk'),
                            cfg.get('scaling'), cfg['fn'], bias)
        w = torch.randn(T, E)
        (rp * w).sum().backward()
        amap, ascores = aux_scores(logits.detach(), cfg['topk'], cfg['fn'])
        cases.append(dict(
            kind='route', config={k: v for k, v in cfg.items() if k != 'bias'}, logits=L(logits), bias=None if bias is None else L(bias),
            probs=L(rp), routingMap=L(rm.int()), topIndices=idx.tolist(), weights=L(w), grad=L(logits.grad),
            auxScores=L(ascores), auxMap=L(amap.int()),
        ))

# Losses with gradients.
for fn in ('softmax', 'sigmoid'):
    T, E, k = 16, 8, 2
    logits = torch.randn(T, E, requires_grad=True)
    amap, s = aux_scores(logits, k, fn)
    tpe = amap.sum(dim=0).float()
    loss = switch_loss(s, tpe, T, k, E, 0.01)
    g, = torch.autograd.grad(loss, logits, retain_graph=True)
    # seq aux loss, S=4, B=4: tokens in sb order
    S, B = 4, 4
    s2 = s.reshape(S, -1)
    m2 = amap.reshape(S, -1)
    seq = switch_loss(s2, m2.sum(dim=0).float(), S, k, E, 0.01) / B
    gs, = torch.autograd.grad(seq, logits)
    z = z_loss(logits, 0.001)
    gz, = torch.autograd.grad(z, logits)
    cases.append(dict(kind='loss', fn=fn, logits=L(logits), topk=k, coeff=0.01, tokensPerExpert=L(tpe), aux=loss.item(), auxGrad=L(g),
                      seqLength=S, bsz=B, seqAux=seq.item(), seqGrad=L(gs), zCoeff=0.001, z=z.item(), zGrad=L(gz)))

# Sinkhorn.
for T, E in ((6, 4), (10, 8)):
    logits = torch.randn(T, E)
    cases.append(dict(kind='sinkhorn', logits=L(logits), out=L(sinkhorn(logits))))

# Capacity dropping and padding.
for policy in ('probs', 'position'):
    for pad in (False, True):
        for factor in (0.5, 1.0, 1.5, 4.0):
            T, E, k = 10, 4, 2
            logits = torch.round(torch.randn(T, E) * 2) / 2
            rp, rm, _ = route(logits, k, fn='softmax')
            fp, fm, cap = drop(rp, rm, k, factor, policy, pad)
            cases.append(dict(kind='drop', policy=policy, pad=pad, factor=factor, topk=k, probs=L(rp), map=L(rm.int()),
                              outProbs=L(fp), outMap=L(fm.int()), capacity=cap))
for mult in (1, 3, 4):
    rm = torch.rand(9, 5) < 0.3
    cases.append(dict(kind='pad', multiple=mult, map=L(rm.int()), out=L(pad_map(rm.int(), mult))))

# torch.topk on CPU: the exact order of ties (and NaN) for many sizes.
g = torch.Generator().manual_seed(7)
for n in list(range(1, 40)) + [63, 64, 65, 100, 128, 129, 200, 256]:
    for k in sorted({1, 2, 3, max(1, n // 4), max(1, n // 2), n}):
        if k > n:
            continue
        v = torch.randint(0, 4, (n,), generator=g).float()
        if n % 5 == 0:
            v[torch.randint(0, n, (2,), generator=g)] = float('nan')
        cases.append(dict(kind='topk', values=[None if math.isnan(x) else x for x in v.tolist()], k=k,
                          sorted=torch.topk(v, k).indices.tolist(), unsorted=torch.topk(v, k, sorted=False).indices.tolist()))

# Expert-bias update.
tpe = torch.tensor([5., 3., 4., 4., 0., 8.])
b = torch.tensor([0.1, -0.2, 0.0, 0.3, 0.0, 0.05])
avg = tpe.sum(dim=-1, keepdim=True) / tpe.shape[-1]
cases.append(dict(kind='bias', tokensPerExpert=L(tpe), bias=L(b), rate=0.01, out=L(b + torch.sign(avg - tpe) * 0.01)))

# TopKRouter.routing end to end (one rank): z-loss on the logits, routing, token dropping,
# aux / seq / global aux losses attached to the probs by an identity-forward autograd function.
class AuxScaler(torch.autograd.Function):
    @staticmethod
    def forward(ctx, output, aux_loss):
        ctx.save_for_backward(aux_loss)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (aux_loss,) = ctx.saved_tensors
        return grad_output, torch.ones_like(aux_loss)


def router_routing(logits, cfg, seq_length, bsz, tracker_counts):
    T, E = logits.shape
    k = cfg['topk']
    if cfg.get('z'):
        z = z_loss(logits, cfg['z'])
        logits = AuxScaler.apply(logits, z * T if cfg.get('per_token') else z)
    rp, rm, _ = route(logits, k, cfg.get('pre', False), cfg.get('num_groups'), cfg.get('group_topk'), cfg.get('scaling'), cfg['fn'], None)
    if cfg.get('factor'):
        rp, rm, _ = drop(rp, rm, k, cfg['factor'], cfg.get('policy', 'probs'), cfg.get('pad', False))
    amap, s = aux_scores(logits, k, cfg['fn'])
    mult = (lambda loss: loss * T) if cfg.get('per_token') else (lambda loss: loss)
    if cfg.get('aux'):
        loss = switch_loss(s, amap.sum(dim=0).float(), T, k, E, cfg['aux'])
        rp = AuxScaler.apply(rp, mult(loss))
    if cfg.get('seq'):
        s2 = s.reshape(seq_length, -1)
        m2 = amap.reshape(seq_length, -1)
        loss = switch_loss(s2, m2.sum(dim=0).float(), seq_length, k, E, cfg['seq']) / bsz
        rp = AuxScaler.apply(rp, mult(loss))
    if cfg.get('glob'):
        tracker_counts['sum'] = tracker_counts['sum'] + amap.sum(dim=0).float()
        tracker_counts['steps'] += 1
        loss = switch_loss(s, tracker_counts['sum'] / tracker_counts['steps'], T, k, E, cfg['glob'])
        rp = AuxScaler.apply(rp, mult(loss))
    return rp, rm


router_cfgs = [
    dict(fn='softmax', topk=2, aux=0.01, z=0.001),
    dict(fn='sigmoid', topk=2, seq=0.1, glob=0.05, factor=1.0, per_token=True),
    dict(fn='sqrtsoftplus', topk=3, aux=0.02, seq=0.01, factor=0.75, pad=True, scaling=2.0),
    dict(fn='softmax', topk=2, pre=True, num_groups=4, group_topk=2, glob=0.03, z=0.01, factor=1.25, policy='position'),
]
for cfg in router_cfgs:
    S, Bz, E = 4, 3, 8
    tracker_counts = {'sum': torch.zeros(E), 'steps': 0}
    steps = []
    for step in range(2):
        logits = torch.randn(S * Bz, E, requires_grad=True)
        rp, rm = router_routing(logits, cfg, S, Bz, tracker_counts)
        w = torch.randn(S * Bz, E)
        (rp * w).sum().backward()
        steps.append(dict(logits=L(logits), weights=L(w), probs=L(rp), map=L(rm.int()), grad=L(logits.grad)))
    cases.append(dict(kind='router', config=cfg, seqLength=S, bsz=Bz, steps=steps))

# RankGenerator (megatron/core/parallel_state.py): groups for every mask of random layouts.
def masked_groups(world_size, parallel_size, mask):
    def prefix_product(a, init=1):
        r = [init]
        for v in a:
            init = init * v
            r.append(init)
        return r

    def decompose(index, shape):
        stride = prefix_product(shape)
        return [(index // d) % s for s, d in zip(shape, stride)]

    masked_shape = [s for s, m in zip(parallel_size, mask) if m]
    unmasked_shape = [s for s, m in zip(parallel_size, mask) if not m]
    gstride = prefix_product(parallel_size)
    masked_stride = [d for d, m in zip(gstride, mask) if m]
    unmasked_stride = [d for d, m in zip(gstride, mask) if not m]
    group_size = prefix_product(masked_shape)[-1]
    ranks = []
    for gi in range(world_size // group_size):
        gidx = decompose(gi, unmasked_shape)
        ranks.append([sum(x * y for x, y in zip(decompose(r, masked_shape), masked_stride))
                      + sum(x * y for x, y in zip(gidx, unmasked_stride)) for r in range(group_size)])
    return ranks


import itertools
import random as _random

_r = _random.Random(5)
for _ in range(12):
    sizes = {'tp': _r.choice([1, 2, 4]), 'pp': _r.choice([1, 2, 3]), 'dp': _r.choice([1, 2, 3])}
    if _r.random() < 0.5:
        sizes['ep'], sizes['cp'] = _r.choice([1, 2, 4]), 1
    else:
        sizes['ep'], sizes['cp'] = 1, _r.choice([1, 2])
    names = ['tp', 'cp', 'ep', 'dp', 'pp']
    _r.shuffle(names)
    order = '-'.join(names)
    offset = _r.choice([0, 0, 8])
    world = 1
    for v in sizes.values():
        world *= v
    ordered = [sizes[t] for t in names]
    groups = {}
    for k in range(1, 4):
        for combo in itertools.combinations(names, k):
            token = '-'.join(combo)
            mask = [t in combo for t in names]
            groups[token] = [[x + offset for x in g] for g in masked_groups(world, ordered, mask)]
    cases.append(dict(kind='ranks', sizes=sizes, order=order, rankOffset=offset, groups=groups))

out = os.path.join(os.path.dirname(__file__), '..', 'src', 'fixtures', 'megatron-reference.json')
with open(out + '.tmp', 'w') as f:
    json.dump(dict(torch=torch.__version__, cases=cases), f)
os.replace(out + '.tmp', out)
print(f'wrote {len(cases)} cases to {out}')
