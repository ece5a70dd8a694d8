// Fused Adam update: one multi-threaded pass over (value, grad, m, v) instead of the ~13
// separate tfjs ops (each with its own full-size output) that tf.train.adam runs per weight.
// The arithmetic follows tfjs-core's AdamOptimizer.applyGradients step by step, with every
// hyper-parameter rounded to float32 as tfjs's scalar tensors are, so results agree with
// tf.train.adam to float rounding.
#include <cmath>

#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

struct AdamParams {
  float b1, b2, omb1, omb2, c1, c2, eps, neg_lr;
};

// One element range. A separate function with plain pointer arguments (not values read
// through the parallel_for closure) so GCC can prove the loop invariants and vectorize;
// the __restrict__ instantiation is used only when no output is also an input.
template <bool kDistinct>
void adam_range(const float* w, const float* g, const float* m, const float* v, float* ow, float* om, float* ov,
                int64_t begin, int64_t end, AdamParams p);

#define KILN_ADAM_BODY                                               \
  for (int64_t i = begin; i < end; ++i) {                            \
    const float gi = g[i];                                           \
    const float mi = m[i] * p.b1 + gi * p.omb1;                      \
    const float vi = v[i] * p.b2 + (gi * gi) * p.omb2;               \
    const float mhat = mi / p.c1;                                    \
    const float vhat = vi / p.c2;                                    \
    const float wi = (mhat / (std::sqrt(vhat) + p.eps)) * p.neg_lr + w[i]; \
    om[i] = mi;                                                      \
    ov[i] = vi;                                                      \
    ow[i] = wi;                                                      \
  }

template <>
void adam_range<true>(const float* __restrict__ w, const float* __restrict__ g, const float* __restrict__ m,
                      const float* __restrict__ v, float* __restrict__ ow, float* __restrict__ om,
                      float* __restrict__ ov, int64_t begin, int64_t end, AdamParams p) {
  KILN_ADAM_BODY
}

template <>
void adam_range<false>(const float* w, const float* g, const float* m, const float* v, float* ow, float* om, float* ov,
                       int64_t begin, int64_t end, AdamParams p) {
  KILN_ADAM_BODY
}

#undef KILN_ADAM_BODY

// adamUpdate(value, grad, m, v, outValue, outM, outV,
//            learningRate, beta1, beta2, epsilon, oneMinusAccBeta1, oneMinusAccBeta2)
//   outM = m·β1 + g·(1−β1);  outV = v·β2 + g²·(1−β2)
//   outValue = (outM/c1) / (sqrt(outV/c2) + ε) · (−lr) + value,  c_i = 1 − β_i^t
// Outputs may alias their inputs (every element is read before it is written).
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  const char* fn = "adamUpdate";
  auto w = arg_f32(info, 0, fn, "value");
  auto g = arg_f32(info, 1, fn, "grad");
  auto m = arg_f32(info, 2, fn, "m");
  auto v = arg_f32(info, 3, fn, "v");
  auto ow = arg_f32(info, 4, fn, "outValue");
  auto om = arg_f32(info, 5, fn, "outM");
  auto ov = arg_f32(info, 6, fn, "outV");
  const double lr = arg_number(info, 7, fn, "learningRate");
  const double beta1 = arg_number(info, 8, fn, "beta1");
  const double beta2 = arg_number(info, 9, fn, "beta2");
  const double eps = arg_number(info, 10, fn, "epsilon");
  const float c1 = static_cast<float>(arg_number(info, 11, fn, "oneMinusAccBeta1"));
  const float c2 = static_cast<float>(arg_number(info, 12, fn, "oneMinusAccBeta2"));
  Napi::Env env = info.Env();
  const size_t n = w.length;
  check_length(env, fn, "grad", g.length, n);
  check_length(env, fn, "m", m.length, n);
  check_length(env, fn, "v", v.length, n);
  check_length(env, fn, "outValue", ow.length, n);
  check_length(env, fn, "outM", om.length, n);
  check_length(env, fn, "outV", ov.length, n);
  // tfjs turns each JS number into a float32 scalar tensor: round the same way.
  // tfjs turns each JS number into a float32 scalar tensor: round the same way.
  const AdamParams p{static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(1.0 - beta1),
                     static_cast<float>(1.0 - beta2), c1, c2, static_cast<float>(eps), static_cast<float>(-lr)};
  const float *wp = w.data, *gp = g.data, *mp = m.data, *vp = v.data;
  float *owp = ow.data, *omp = om.data, *ovp = ov.data;
  // Distinct buffers (the kiln-native kernel writes fresh outputs) take the restrict path;
  // an in-place call (outputs are inputs) is still correct, elementwise, on the other.
  bool distinct = true;
  for (const float* out : {static_cast<const float*>(owp), static_cast<const float*>(omp), static_cast<const float*>(ovp)}) {
    for (const float* in : {wp, gp, mp, vp}) distinct = distinct && (out + n <= in || in + n <= out);
  }
  const auto apart = [n](const float* a, const float* b) { return a + n <= b || b + n <= a; };
  distinct = distinct && apart(owp, omp) && apart(owp, ovp) && apart(omp, ovp);
  parallel_for(0, static_cast<int64_t>(n), 1 << 14, [&](int64_t b, int64_t e) {
    if (distinct) adam_range<true>(wp, gp, mp, vp, owp, omp, ovp, b, e, p);
    else adam_range<false>(wp, gp, mp, vp, owp, omp, ovp, b, e, p);
  });
  return env.Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(adamUpdate, AdamUpdate);

}  // namespace kiln
