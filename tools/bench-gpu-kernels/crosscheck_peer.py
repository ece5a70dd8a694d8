"""Torch side of crosscheck.mjs: mamba's selective-scan reference recurrence and
Megatron-Core's top-k routing, written out here in PyTorch, applied to the cases read from
stdin (JSON); prints the results as JSON."""
import json
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(2)


def scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, initial_state=None):
    if delta_bias is not None:
        delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A))
    # B, C: [batch, N, L], [batch, G, N, L] (channel d uses group d // (dim / G)) or constant [dim, N].
    if B.dim() == 2:
        deltaB_u = torch.einsum('bdl,dn,bdl->bdln', delta, B, u)
    elif B.dim() == 3:
        deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, u)
    else:
        deltaB_u = torch.einsum('bdl,bdnl,bdl->bdln', delta, B.repeat_interleave(dim // B.shape[1], dim=1), u)
    if C.dim() == 4:
        C = C.repeat_interleave(dim // C.shape[1], dim=1)
    x = A.new_zeros((batch, dim, dstate)) if initial_state is None else initial_state
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        if C.dim() == 2:
            ys.append(torch.einsum('bdn,dn->bd', x, C))
        elif C.dim() == 3:
            ys.append(torch.einsum('bdn,bn->bd', x, C[:, :, i]))
        else:
            ys.append(torch.einsum('bdn,bdn->bd', x, C[:, :, :, i]))
    out = torch.stack(ys, dim=2)
    if D is not None:
        out = out + u * D[:, None]
    if z is not None:
        out = out * F.silu(z)
    return out, x


def group_limited_topk(scores, topk, num_tokens, num_experts, num_groups, group_topk):
    group_scores = scores.view(num_tokens, num_groups, -1).topk(topk // group_topk, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=group_topk, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(num_tokens, num_groups, num_experts // num_groups).reshape(num_tokens, -1)
    masked = scores.masked_fill(~score_mask.bool(), float('-inf'))
    return torch.topk(masked, k=topk, dim=-1)


def route(logits, topk, use_pre_softmax=False, num_groups=None, group_topk=None, scaling_factor=None, score_function='softmax', expert_bias=None):
    num_tokens, num_experts = logits.shape

    def compute_topk(scores, k):
        if group_topk:
            return group_limited_topk(scores, k, num_tokens, num_experts, num_groups, group_topk)
        return torch.topk(scores, k=k, dim=1)

    if score_function == 'softmax':
        if use_pre_softmax:
            scores = torch.softmax(logits, dim=-1, dtype=torch.float32)
            probs, top_indices = compute_topk(scores, topk)
        else:
            scores, top_indices = compute_topk(logits, topk)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    else:
        scores = torch.sigmoid(logits.float()) if score_function == 'sigmoid' else F.softplus(logits.float()).sqrt()
        if expert_bias is not None:
            _, top_indices = compute_topk(scores + expert_bias.float(), topk)
            scores = torch.gather(scores, dim=1, index=top_indices)
        else:
            scores, top_indices = compute_topk(scores, topk)
        probs = scores / (scores.sum(dim=-1, keepdim=True) + 1e-20) if topk > 1 else scores
    if scaling_factor:
        probs = probs * scaling_factor
    routing_probs = torch.zeros_like(logits).scatter(1, top_indices, probs)
    routing_map = torch.zeros_like(logits).int().scatter(1, top_indices, 1).bool()
    return routing_probs, routing_map


def t(case, name):
    v = case.get(name)
    return None if v is None else torch.tensor(v['data'], dtype=torch.float32).reshape(v['shape'])


def main():
    cases = json.load(sys.stdin)
    out = []
    for c in cases:
        if c['op'] == 'scan':
            o, last = scan_ref(t(c, 'u'), t(c, 'delta'), t(c, 'A'), t(c, 'B'), t(c, 'C'), t(c, 'D'), t(c, 'z'), t(c, 'deltaBias'), c['softplus'], t(c, 'initialState'))
            out.append({'out': o.flatten().tolist(), 'last': last.flatten().tolist()})
        else:
            o = c['opts']
            bias = t(c, 'expertBias')
            probs, rmap = route(t(c, 'logits'), o['topk'], o.get('usePreSoftmax', False), o.get('numGroups'), o.get('groupTopk'), o.get('scalingFactor'), o.get('scoreFunction', 'softmax'), bias)
            out.append({'probs': probs.flatten().tolist(), 'map': rmap.int().flatten().tolist()})
    print(json.dumps(out))


main()
