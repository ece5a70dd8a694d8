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
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const float omb1 = static_cast<float>(1.0 - beta1), omb2 = static_cast<float>(1.0 - beta2);
  const float e = static_cast<float>(eps), neg_lr = static_cast<float>(-lr);
  const float* __restrict__ wp = w.data;
  const float* __restrict__ gp = g.data;
  const float* mp = m.data;
  const float* vp = v.data;
  float* owp = ow.data;
  float* omp = om.data;
  float* ovp = ov.data;
  parallel_for(0, static_cast<int64_t>(n), 1 << 14, [&](int64_t b, int64_t end) {
#pragma omp simd
    for (int64_t i = b; i < end; ++i) {
      const float gi = gp[i];
      const float mi = mp[i] * b1 + gi * omb1;
      const float vi = vp[i] * b2 + (gi * gi) * omb2;
      const float mhat = mi / c1;
      const float vhat = vi / c2;
      const float wi = (mhat / (std::sqrt(vhat) + e)) * neg_lr + wp[i];
      omp[i] = mi;
      ovp[i] = vi;
      owp[i] = wi;
    }
  });
  return env.Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(adamUpdate, AdamUpdate);

}  // namespace kiln
