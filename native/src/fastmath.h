// Branch-free float math the compiler vectorizes (glibc's expf/tanhf are scalar calls).
// exp: Cephes-style range reduction + degree-6 polynomial, max relative error ~2 ulp over
// the float range; NaN in gives NaN out, x > 88.72 gives inf, x < -87.3 gives 0 (the float result would be
// denormal there; the difference is below 1.2e-38).
#pragma once

#include <cstdint>
#include <cstring>

namespace kiln {

inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline float fast_exp(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.72f ? 88.72f : x);
  // Adding and subtracting 1.5·2^23 rounds to nearest-even without a libm call, which
  // keeps the loop vectorizable.
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // Two-part ln 2 keeps the reduced argument exact to float precision.
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  const float y = p * scale;
  return x != x ? x : (x < -87.3f ? 0.0f : y);
}

inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

// tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): no cancellation for large |x|; for
// |x| < 0.0625 the odd Taylor polynomial keeps the relative error small near 0.
inline float fast_tanh(float x) {
  const float ax = x < 0.f ? -x : x;
  const float e = fast_exp(-2.0f * ax);
  float t = (1.0f - e) / (1.0f + e);
  const float x2 = x * x;
  const float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.053968254f)));
  t = x < 0.f ? -t : t;
  return ax < 0.0625f ? small : t;
}

}  // namespace kiln
