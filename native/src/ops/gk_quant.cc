// @kiln/gpu-kernels: FP8 (E4M3 / E5M2) casts, round to nearest even (or stochastic with the
// shared counter hash), saturating, NaN preserved. Bit-exact with
// packages/gpu-kernels/src/quant/minifloat.ts.
#include <cmath>
#include <limits>

#include "kiln_addon.h"
#include "parallel.h"

namespace {

struct Format {
  int mantissa, minExponent;
  float max;
};
constexpr Format kE4M3{3, -6, 448.0f};
constexpr Format kE5M2{2, -14, 57344.0f};

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

}  // namespace

KILN_EXPORT_FUNCTION(castFp8, CastFp8);
