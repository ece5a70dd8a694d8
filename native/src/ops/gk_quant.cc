// @kiln/gpu-kernels: FP8 (E4M3 / E5M2) casts and NVFP4 quantization, round to nearest
// even (or stochastic with the shared counter hash), saturating, NaN preserved. Bit-exact
// with packages/gpu-kernels/src/quant/minifloat.ts.
#include <cmath>
#include <limits>
#include <vector>

#include "kiln_addon.h"
#include "parallel.h"

namespace {

struct Format {
  int mantissa, minExponent;
  float max;
};
constexpr Format kE4M3{3, -6, 448.0f};
constexpr Format kE5M2{2, -14, 57344.0f};
constexpr Format kE2M1{1, 0, 6.0f};

// Wellons' lowbias32 on (index ^ seed·golden): a uniform in [0, 1) per element.
inline float hash_uniform(uint32_t seed, uint32_t index) {
  uint32_t x = index ^ (seed * 0x9e3779b9u);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return static_cast<float>(x >> 8) / 16777216.0f;
}

// v rounded to the format; u < 0 means nearest-even, else ⌊q + u⌋.
inline float round_to(float v, const Format& f, float u) {
  if (std::isnan(v)) return v;
  const float a = std::fabs(v);
  const float sign = std::signbit(v) ? -1.0f : 1.0f;
  if (a >= f.max) return sign * f.max;
  if (a == 0.0f) return v;
  int e2;
  std::frexp(a, &e2);  // a = m·2^e2, m ∈ [0.5, 1)
  const int e = std::max(e2 - 1, f.minExponent);
  const float step = std::ldexp(1.0f, e - f.mantissa);
  const float q = a / step;  // exact
  const float r = u < 0.0f ? std::nearbyint(q) : std::floor(q + u);
  return sign * std::min(r * step, f.max);
}

// castFp8(x, out, scale, format: 0 e4m3 | 1 e5m2, stochastic, seed)
Napi::Value CastFp8(const Napi::CallbackInfo& info) {
  const char* fn = "castFp8";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto out = kiln::arg_f32(info, 1, fn, "out");
  const float scale = static_cast<float>(kiln::arg_number(info, 2, fn, "scale"));
  const Format f = kiln::arg_choice(info, 3, fn, "format", 2) == 0 ? kE4M3 : kE5M2;
  const bool stochastic = kiln::arg_bool(info, 4, fn, "stochastic");
  const uint32_t seed = kiln::arg_seed(info, 5, fn, "seed");
  kiln::check_length(info.Env(), fn, "out", out.length, x.length);
  if (!(scale > 0.0f) || !std::isfinite(scale)) throw Napi::RangeError::New(info.Env(), "castFp8: scale must be finite and > 0");
  kiln::parallel_for(0, x.length, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float u = stochastic ? hash_uniform(seed, static_cast<uint32_t>(i)) : -1.0f;
      out.data[i] = round_to(x.data[i] * scale, f, u) / scale;
    }
  });
  return info.Env().Undefined();
}

// quantizeNvfp4(x, values, blockScales, globalScale[1], rows, cols, blockShape: 0 1x16 | 1 16x16, stochastic, seed)
Napi::Value QuantizeNvfp4(const Napi::CallbackInfo& info) {
  const char* fn = "quantizeNvfp4";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto values = kiln::arg_f32(info, 1, fn, "values");
  auto scales = kiln::arg_f32(info, 2, fn, "blockScales");
  auto global = kiln::arg_f32(info, 3, fn, "globalScale");
  const int64_t rows = kiln::arg_int(info, 4, fn, "rows", 1);
  const int64_t cols = kiln::arg_int(info, 5, fn, "cols", 16);
  const bool tile = kiln::arg_choice(info, 6, fn, "blockShape", 2) == 1;
  const bool stochastic = kiln::arg_bool(info, 7, fn, "stochastic");
  const uint32_t seed = kiln::arg_seed(info, 8, fn, "seed");
  // Every element must fall in a whole block: a partial block would index past blockScales.
  if (cols % 16 != 0 || (tile && rows % 16 != 0)) {
    throw Napi::RangeError::New(info.Env(), std::string("quantizeNvfp4: cols") + (tile ? " and rows" : "") +
                                                " must be multiples of 16, got rows " + std::to_string(rows) + ", cols " + std::to_string(cols));
  }
  const int64_t bc = cols / 16, blocks = tile ? (rows / 16) * bc : rows * bc;
  kiln::check_shape(info.Env(), fn, "x", x.length, {rows, cols});
  kiln::check_shape(info.Env(), fn, "values", values.length, {rows, cols});
  kiln::check_length(info.Env(), fn, "blockScales", scales.length, blocks);
  kiln::check_length(info.Env(), fn, "globalScale", global.length, 1);
  auto block_of = [&](int64_t i) { return tile ? ((i / cols) / 16) * bc + (i % cols) / 16 : i / 16; };
  std::vector<float> bamax(blocks, 0.0f);
  float amax = 0.0f;
  for (int64_t i = 0; i < rows * cols; i++) {
    const float a = std::fabs(x.data[i]);
    amax = std::fmax(amax, a);  // fmax ignores NaN, as Math.max would not: NaN inputs stay NaN below
    float& m = bamax[block_of(i)];
    m = std::fmax(m, a);
  }
  const float sGlobal = amax > 0.0f ? amax / (448.0f * 6.0f) : 1.0f;
  global.data[0] = sGlobal;
  for (int64_t b = 0; b < blocks; b++) scales.data[b] = round_to((bamax[b] / 6.0f) / sGlobal, kE4M3, -1.0f);
  kiln::parallel_for(0, rows * cols, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float denom = scales.data[block_of(i)] * sGlobal;
      if (denom == 0.0f) {
        values.data[i] = 0.0f;
        continue;
      }
      const float u = stochastic ? hash_uniform(seed, static_cast<uint32_t>(i)) : -1.0f;
      values.data[i] = round_to(x.data[i] / denom, kE2M1, u) * denom;
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(castFp8, CastFp8);
KILN_EXPORT_FUNCTION(quantizeNvfp4, QuantizeNvfp4);
