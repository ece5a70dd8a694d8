#!/usr/bin/python3
"""
The numpy peer of Kiln's scene loader (tools/pointcloud-data/bench-loader.mjs): the same scene
folders read as Pointcept's DefaultDataset reads them (np.load of every array, astype), then
the same training transforms as Kiln's default pipeline, written here with numpy the way
Pointcept's transform.py computes them (CenterShift, RandomDropout, GridSample with the FNV
hash, SphereCrop, RandomRotate ×3, RandomScale, RandomFlip, RandomJitter, the three chromatic
transforms, NormalizeColor).

argv: the scene folders' parent, runs, grid size, SphereCrop point_max.
Prints one JSON line: per case [median, best] seconds per scene.
"""

import json
import os
import statistics
import sys
import time

import numpy as np

ROOT, RUNS, GRID, POINT_MAX = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)


def load(path):
    d = {}
    for name in ("coord", "color", "normal", "segment", "instance"):
        d[name] = np.load(os.path.join(path, name + ".npy"))
    d["coord"] = d["coord"].astype(np.float32)
    d["color"] = d["color"].astype(np.float32)
    d["normal"] = d["normal"].astype(np.float32)
    d["segment"] = d["segment"].reshape([-1]).astype(np.int32)
    d["instance"] = d["instance"].reshape([-1]).astype(np.int32)
    return d


KEYS = ("coord", "color", "normal", "segment", "instance")


def select(d, idx):
    return {k: (v[idx] if k in KEYS else v) for k, v in d.items()}


def center_shift(d, apply_z):
    lo, hi = d["coord"].min(0), d["coord"].max(0)
    d["coord"] = d["coord"] - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2] if apply_z else 0], dtype=np.float32)
    return d


def fnv(arr):
    arr = arr.astype(np.uint64, copy=False)
    h = np.uint64(14695981039346656037) * np.ones(arr.shape[0], dtype=np.uint64)
    for j in range(arr.shape[1]):
        h *= np.uint64(1099511628211)
        h = np.bitwise_xor(h, arr[:, j])
    return h


def grid_sample(d):
    g = np.floor(d["coord"] / GRID).astype(int)
    g -= g.min(0)
    key = fnv(g)
    order = np.argsort(key)
    _, count = np.unique(key[order], return_counts=True)
    pick = np.cumsum(np.insert(count, 0, 0)[0:-1]) + rng.integers(0, count.max(), count.size) % count
    out = select(d, order[pick])
    out["grid_coord"] = g[order[pick]]
    return out


def sphere_crop(d):
    n = d["coord"].shape[0]
    if n <= POINT_MAX:
        return d
    c = d["coord"][rng.integers(n)]
    return select(d, np.argsort(np.sum(np.square(d["coord"] - c), 1))[:POINT_MAX])


def rotate(d, angle, axis, center, p):
    if rng.random() > p:
        return d
    a = rng.uniform(angle[0], angle[1]) * np.pi
    c, s = np.cos(a), np.sin(a)
    rot = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]], "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}[axis]
    rot = np.array(rot)
    if center is None:
        lo, hi = d["coord"].min(0), d["coord"].max(0)
        center = (lo + hi) / 2
    d["coord"] = np.dot(d["coord"] - center, rot.T) + center
    d["normal"] = np.dot(d["normal"], rot.T)
    return d


def view(d):
    d = dict(d)
    d = rotate(d, [-1, 1], "z", [0, 0, 0], 0.5)
    d = rotate(d, [-1 / 64, 1 / 64], "x", None, 0.5)
    d = rotate(d, [-1 / 64, 1 / 64], "y", None, 0.5)
    d["coord"] = d["coord"] * rng.uniform(0.9, 1.1, 1)
    for axis in (0, 1):
        if rng.random() < 0.5:
            d["coord"][:, axis] = -d["coord"][:, axis]
            d["normal"][:, axis] = -d["normal"][:, axis]
    d["coord"] = d["coord"] + np.clip(0.005 * rng.standard_normal((d["coord"].shape[0], 3)), -0.02, 0.02)
    color = d["color"]
    if rng.random() < 0.2:
        lo, hi = color.min(0, keepdims=True), color.max(0, keepdims=True)
        scale = np.divide(255, hi - lo, out=np.ones_like(hi), where=(hi - lo) > 0)
        b = rng.random()
        color = (1 - b) * color + b * (color - lo) * scale
    if rng.random() < 0.95:
        color = np.clip(color + (rng.random((1, 3)) - 0.5) * 255 * 2 * 0.05, 0, 255)
    if rng.random() < 0.95:
        color = np.clip(color + rng.standard_normal((color.shape[0], 3)) * 0.05 * 255, 0, 255)
    d["color"] = color / 255
    return d


def pipeline(d):
    d = center_shift(d, True)
    if rng.random() < 0.2:
        n = d["coord"].shape[0]
        d = select(d, rng.choice(n, int(n * 0.8), replace=False))
    d = grid_sample(d)
    if POINT_MAX > 0:
        d = sphere_crop(d)
    d = center_shift(d, False)
    return view(d)


def timed(fn):
    fn()
    samples = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return [statistics.median(samples), min(samples)]


scenes = sorted(os.path.join(ROOT, "train", s) for s in os.listdir(os.path.join(ROOT, "train")))
loaded = [load(s) for s in scenes]
per_scene = len(scenes)
out = {
    "read": [t / per_scene for t in timed(lambda: [load(s) for s in scenes])],
    "transform": [t / per_scene for t in timed(lambda: [pipeline(dict(d)) for d in loaded])],
    "read + transform": [t / per_scene for t in timed(lambda: [pipeline(load(s)) for s in scenes])],
}
print(json.dumps({"times": out, "numpy": np.__version__}))
