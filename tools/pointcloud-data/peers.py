"""Python peers for tools/pointcloud-data/bench.mjs: the same serialization and grid sampling
work in PyTorch (2 threads) and numpy, written from the bit definitions in FACTS.md.

argv[1]: a binary file written by bench.mjs: int32 header [n, scenes, depth], then
gridCoord int32 [n, 3], batch int32 [n], coord float32 [n, 3].
argv[2]: runs per case. Prints one JSON object: [median, best] seconds per case and a checksum of every code array, so
bench.mjs can also confirm that both sides computed identical codes.
"""
import json
import statistics
import sys
import time

import numpy as np
import torch

torch.set_num_threads(2)


RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 7


def timed(fn, warmup=1):
    # [median, best] seconds: on a shared machine the best run is the steadier figure
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return [statistics.median(samples), min(samples)]


def spread_lut():
    # bit i of a byte goes to bit 3i
    v = torch.arange(256, dtype=torch.int64)
    out = torch.zeros(256, dtype=torch.int64)
    for i in range(8):
        out |= ((v >> i) & 1) << (3 * i)
    return out


SPREAD = spread_lut()


def z_code(g, depth):
    x, y, z = g[:, 0], g[:, 1], g[:, 2]
    lo = (SPREAD[x & 255] << 2) | (SPREAD[y & 255] << 1) | SPREAD[z & 255]
    if depth <= 8:
        return lo
    hi = (SPREAD[(x >> 8) & 255] << 2) | (SPREAD[(y >> 8) & 255] << 1) | SPREAD[(z >> 8) & 255]
    return (hi << 24) | lo


def hilbert_code(g, depth):
    # Skilling's transposed-axes loop on whole columns, then interleave and Gray-decode.
    x = g.clone()
    q = 1 << (depth - 1)
    while q > 1:
        p = q - 1
        for i in range(3):
            bit = (x[:, i] & q) != 0
            # invert low bits of axis 0 where the bit is set
            x0 = torch.where(bit, x[:, 0] ^ p, x[:, 0])
            # exchange low bits of axis 0 and axis i where it is clear
            t = (x0 ^ x[:, i]) & p
            t = torch.where(bit, torch.zeros_like(t), t)
            x[:, 0] = x0 ^ t
            if i != 0:
                x[:, i] = x[:, i] ^ t
        q >>= 1
    code = z_code(x, depth)
    shift = 1
    while shift < 3 * depth:
        code = code ^ (code >> shift)
        shift <<= 1
    return code


def encode(g, b, depth, order):
    if order.endswith('-trans'):
        g = g[:, [1, 0, 2]]
    code = z_code(g, depth) if order.startswith('z') else hilbert_code(g, depth)
    return (b << (3 * depth)) | code


def grid_sample_numpy(coord, offset, grid_size, rng):
    # per scene: floor(coord / size) - min, unique cells with inverse, one random member each
    kept = []
    start = 0
    for end in offset:
        c = coord[start:end]
        g = np.floor(c / grid_size).astype(np.int64)
        g -= g.min(0)
        dims = g.max(0) + 1
        key = g[:, 0] + dims[0] * (g[:, 1] + dims[1] * g[:, 2])
        idx_sort = np.argsort(key, kind='stable')
        _, inverse, count = np.unique(key[idx_sort], return_inverse=True, return_counts=True)
        pick = np.cumsum(np.insert(count, 0, 0)[:-1]) + rng.integers(0, count.max(), count.size) % count
        kept.append(idx_sort[pick] + start)
        start = end
    return np.concatenate(kept)


def main():
    raw = open(sys.argv[1], 'rb').read()
    n, scenes, depth = np.frombuffer(raw, dtype=np.int32, count=3)
    pos = 12
    grid = np.frombuffer(raw, dtype=np.int32, count=3 * n, offset=pos).reshape(n, 3)
    pos += 12 * n
    batch = np.frombuffer(raw, dtype=np.int32, count=n, offset=pos)
    pos += 4 * n
    coord = np.frombuffer(raw, dtype=np.float32, count=3 * n, offset=pos).reshape(n, 3)
    offset = np.cumsum(np.bincount(batch, minlength=scenes))
    g = torch.from_numpy(grid.astype(np.int64))
    b = torch.from_numpy(batch.astype(np.int64))
    out = {'times': {}, 'checksums': {}}
    for order in ['z', 'z-trans', 'hilbert', 'hilbert-trans']:
        code = encode(g, b, int(depth), order)
        # checksum: sum of code * (i % 1000 + 1) mod 2^61-1 (exact in Python ints)
        w = torch.arange(n, dtype=torch.int64) % 1000 + 1
        out['checksums'][order] = str(((code % 2147483647) * w).sum().item() % 2305843009213693951)
        out['times'][f'encode {order}'] = timed(lambda: encode(g, b, int(depth), order))
    out['times']['serialize 4 orders (encode + argsort + inverse)'] = timed(
        lambda: [
            (lambda c: (lambda o: torch.zeros_like(o).scatter_(0, o, torch.arange(n)))(torch.argsort(c)))(
                encode(g, b, int(depth), order)
            )
            for order in ['z', 'z-trans', 'hilbert', 'hilbert-trans']
        ]
    )
    rng = np.random.default_rng(0)
    out['times']['grid sample 0.02 (numpy)'] = timed(lambda: grid_sample_numpy(coord, offset, 0.02, rng))
    print(json.dumps(out))


main()
