"""Independent reference casts for @kiln/moe-core's minifloat tests, from the ml_dtypes package
(float8_e4m3fn, float8_e5m2, float4_e2m1fn; round to nearest even, non-saturating).

Probes every finite value of each format, every midpoint between neighbours and the fp32
neighbours of each midpoint, plus overflow and underflow values; writes
src/fixtures/ml-dtypes-casts.json. Needs numpy and ml_dtypes (not needed by the tests):
PYTHONPATH=<dir with ml_dtypes> /usr/bin/python3 scripts/ml-dtypes-reference.py
"""
import json
import os

import ml_dtypes as md
import numpy as np

E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def enc(c):
    if np.isnan(c):
        return None
    if np.isinf(c):
        return 'inf' if c > 0 else '-inf'
    return float(c)


out = {'ml_dtypes': md.__version__}
for name, dt in (('e4m3', md.float8_e4m3fn), ('e5m2', md.float8_e5m2), ('e2m1', md.float4_e2m1fn)):
    if name == 'e2m1':
        values = E2M1 + [-v for v in E2M1]
    else:
        values = [float(v) for v in np.arange(256, dtype=np.uint8).view(dt).astype(np.float32)]
    fin = sorted(set(v for v in values if np.isfinite(v)))
    probes = list(fin)
    for a, b in zip(fin, fin[1:]):
        m = np.float32((a + b) / 2)
        probes += [float(m), float(np.nextafter(m, np.float32(-np.inf))), float(np.nextafter(m, np.float32(np.inf)))]
    probes += [1e9, -1e9, 464.0, 465.0, 61440.0, 61439.0, 7.0, 6.5, 1e-30, -1e-30]
    probes = [float(np.float32(p)) for p in probes]
    casts = [enc(np.float32(p).astype(dt).astype(np.float32)) for p in probes]
    out[name] = {'probes': probes, 'casts': casts}

path = os.path.join(os.path.dirname(__file__), '..', 'src', 'fixtures', 'ml-dtypes-casts.json')
with open(path + '.tmp', 'w') as f:
    json.dump(out, f)
os.replace(path + '.tmp', path)
print({k: len(v['probes']) for k, v in out.items() if k != 'ml_dtypes'})
