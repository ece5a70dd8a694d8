// Helpers shared by @kiln/gpu-kernels' op files (native/src/ops/gk_*.cc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace gk {

// exp(x) in float, written so loops over it auto-vectorize (std::exp does not without
// -ffast-math): x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by its degree-7 Taylor polynomial
// (relative error < 2e-7), 2^n assembled in the exponent bits.
static inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = std::floor(x * 1.4426950408889634f + 0.5f);
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.9841270e-4f;
  p = p * r + 1.3888889e-3f;
  p = p * r + 8.3333333e-3f;
  p = p * r + 4.1666667e-2f;
  p = p * r + 1.6666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// mamba's softplus: log1p(exp(x)), the identity above 20.
static inline float softplus(float x) { return x <= 20.0f ? std::log1p(std::exp(x)) : x; }

}  // namespace gk
