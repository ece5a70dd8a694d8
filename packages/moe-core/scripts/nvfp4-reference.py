"""NVFP4 reference values for @kiln/moe-core, re-implementing Transformer Engine's reference
NVFP4 quantizer (transformer_engine/pytorch/custom_recipes/quantization_ref_nvfp4.py,
_quantize_blockwise_reference, non-4over6, non-pow2) in numpy fp32, with ml_dtypes for the
E4M3 block-scale cast. Dequantized value = q · s_block · amax / (6 · 448), the factor TE's GEMM
applies. Writes src/fixtures/nvfp4-reference.json. Needs numpy and ml_dtypes:
PYTHONPATH=<dir with ml_dtypes> /usr/bin/python3 scripts/nvfp4-reference.py
"""
import json
import os

import ml_dtypes as md
import numpy as np

f32 = np.float32
FLT_MAX = np.finfo(np.float32).max


def cast_fp4(x):
    # TE's cast_to_fp4x2 thresholds (round to nearest even, saturating at 6).
    a = np.abs(x)
    grid = np.select(
        [a <= 0.25, a < 0.75, a <= 1.25, a < 1.75, a <= 2.5, a < 3.5, a <= 5.0],
        [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
        6.0,
    )
    return np.where(x < 0, -grid, grid).astype(np.float32)


def nvfp4(x, tile):
    m, n = x.shape
    ty, tx = tile
    gamax = f32(np.max(np.abs(x)))
    with np.errstate(divide='ignore'):
        genc = f32(f32(448.0 * 6.0) / gamax)
    genc = min(genc, FLT_MAX)
    if genc == 0:
        genc = f32(1.0)
    gdec = f32(f32(1.0) / genc)
    mult = f32(genc * f32(f32(1.0) / f32(6.0)))
    out = np.zeros_like(x)
    scales = []
    for bi in range(0, m, ty):
        for bj in range(0, n, tx):
            blk = x[bi:bi + ty, bj:bj + tx]
            vmax = f32(np.max(np.abs(blk)))
            ds = min(f32(vmax * mult), FLT_MAX)
            ds = f32(np.clip(ds, -448, 448))
            ds = f32(np.float32(ds).astype(md.float8_e4m3fn).astype(np.float32))
            with np.errstate(divide='ignore'):
                es = f32(f32(1.0) / f32(ds * gdec))
            es = min(es, FLT_MAX)
            q = cast_fp4(np.clip((blk * es).astype(np.float32), -6, 6))
            out[bi:bi + ty, bj:bj + tx] = q * ds * f32(gamax / f32(6 * 448))
            scales.append(float(ds))
    return out, scales, float(gamax)


rng = np.random.default_rng(11)
cases = []
for (m, n, tile, scale) in ((4, 32, (1, 16), 1.0), (16, 48, (1, 16), 30.0), (32, 32, (16, 16), 0.01), (16, 16, (16, 16), 1e4)):
    x = (rng.standard_normal((m, n)) * scale).astype(np.float32)
    x[0, 3] *= 8  # one outlier block
    out, scales, gamax = nvfp4(x, tile)
    cases.append(dict(rows=m, cols=n, tile=list(tile), x=x.flatten().tolist(), out=out.flatten().tolist(), blockScales=scales, globalAmax=gamax))

path = os.path.join(os.path.dirname(__file__), '..', 'src', 'fixtures', 'nvfp4-reference.json')
with open(path + '.tmp', 'w') as f:
    json.dump({'cases': cases}, f)
os.replace(path + '.tmp', path)
print(len(cases), 'cases')
