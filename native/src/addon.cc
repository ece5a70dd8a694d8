// Module entry: runs every registration (kiln_addon.h) and exports the addon's core
// functions (build info, thread pool, GEMM path, batched matmul).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <dlfcn.h>
#endif

#include "gemm.h"
#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

struct Registration {
  std::string name;
  ExportInit init = nullptr;
  Napi::Function::Callback fn = nullptr;
};

std::vector<Registration>& registry() {
  // Function-local so registrars in other translation units can run first.
  static std::vector<Registration> r;
  return r;
}

[[noreturn]] void type_error(const Napi::CallbackInfo& info, const char* fn, const char* name, const char* want) {
  throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be " + want);
}

Napi::TypedArray typed(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name,
                       const char* want) {
  if (index >= info.Length() || !info[index].IsTypedArray()) type_error(info, fn, name, want);
  return info[index].As<Napi::TypedArray>();
}

}  // namespace

void register_exports(const char* name, ExportInit init) { registry().push_back({name, init, nullptr}); }
void register_function(const char* name, Napi::Function::Callback fn) { registry().push_back({name, nullptr, fn}); }

void run_registrations(Napi::Env env, Napi::Object exports) {
  for (const auto& r : registry()) {
    if (r.fn) {
      if (exports.Has(r.name)) {
        throw Napi::Error::New(env, "@kiln/native: two op files export the same name '" + r.name + "'");
      }
      exports.Set(r.name, Napi::Function::New(env, r.fn, r.name));
    } else {
      r.init(env, exports);
    }
  }
}

ArrayView<float> arg_f32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  auto t = typed(info, index, fn, name, "a Float32Array");
  if (t.TypedArrayType() != napi_float32_array) type_error(info, fn, name, "a Float32Array");
  auto a = t.As<Napi::Float32Array>();
  return {a.Data(), a.ElementLength()};
}

ArrayView<int32_t> arg_i32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  auto t = typed(info, index, fn, name, "an Int32Array");
  if (t.TypedArrayType() != napi_int32_array) type_error(info, fn, name, "an Int32Array");
  auto a = t.As<Napi::Int32Array>();
  return {a.Data(), a.ElementLength()};
}

ArrayView<uint32_t> arg_word(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  auto t = typed(info, index, fn, name, "a Float32Array, Int32Array or Uint32Array");
  const auto kind = t.TypedArrayType();
  if (kind != napi_float32_array && kind != napi_int32_array && kind != napi_uint32_array) {
    type_error(info, fn, name, "a Float32Array, Int32Array or Uint32Array");
  }
  auto* base = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  return {reinterpret_cast<uint32_t*>(base), t.ElementLength()};
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name, int64_t min_value) {
  if (index >= info.Length() || !info[index].IsNumber()) type_error(info, fn, name, "a number");
  const double v = info[index].As<Napi::Number>().DoubleValue();
  if (v != static_cast<double>(static_cast<int64_t>(v)) || v < static_cast<double>(min_value)) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be an integer >= " +
                                                std::to_string(min_value) + ", got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

double arg_number(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  if (index >= info.Length() || !info[index].IsNumber()) type_error(info, fn, name, "a number");
  return info[index].As<Napi::Number>().DoubleValue();
}

bool arg_bool(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  if (index >= info.Length() || !info[index].IsBoolean()) type_error(info, fn, name, "a boolean");
  return info[index].As<Napi::Boolean>().Value();
}

std::string arg_string(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  if (index >= info.Length() || !info[index].IsString()) type_error(info, fn, name, "a string");
  return info[index].As<Napi::String>().Utf8Value();
}

void check_length(Napi::Env env, const char* fn, const char* name, size_t got, size_t want) {
  if (got != want) {
    throw Napi::RangeError::New(env, std::string(fn) + ": " + name + " has " + std::to_string(got) +
                                         " elements, expected " + std::to_string(want));
  }
}

namespace {

const char* path_name(GemmPath p) {
  switch (p) {
    case GemmPath::Blas: return "blas";
    case GemmPath::Builtin: return "builtin";
    case GemmPath::Portable: return "portable";
  }
  return "?";
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", num_threads());
  o.Set("gemmPath", path_name(gemm_path()));
  o.Set("blas", blas_description());
  o.Set("blasLinked", blas_available());
  o.Set("builtinKernel", builtin_kernel_name());
  o.Set("blasThreads", gemm_threads());
#if defined(__AVX512F__)
  o.Set("simd", "avx512");
#elif defined(__AVX2__)
  o.Set("simd", "avx2");
#elif defined(__ARM_NEON)
  o.Set("simd", "neon");
#else
  o.Set("simd", "none");
#endif
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(arg_int(info, 0, "setNumThreads", "n", 1)));
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value SetGemmPath(const Napi::CallbackInfo& info) {
  const std::string want = arg_string(info, 0, "setGemmPath", "path");
  GemmPath p;
  if (want == "blas") p = GemmPath::Blas;
  else if (want == "builtin") p = GemmPath::Builtin;
  else if (want == "portable") p = GemmPath::Portable;
  else throw Napi::RangeError::New(info.Env(), "setGemmPath: path must be 'blas', 'builtin' or 'portable', got '" + want + "'");
  if (!set_gemm_path(p)) {
    throw Napi::Error::New(info.Env(), "setGemmPath: this build of @kiln/native is not linked with a BLAS");
  }
  return Napi::String::New(info.Env(), path_name(gemm_path()));
}

// matmul(a, b, out, batchA, batchB, m, n, k, transA, transB)
// a: batchA x (m x k, or k x m when transA); b: batchB x (k x n, or n x k when transB);
// out: max(batchA, batchB) x m x n. A batch of 1 broadcasts against the other.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  const char* fn = "matmul";
  auto a = arg_f32(info, 0, fn, "a");
  auto b = arg_f32(info, 1, fn, "b");
  auto out = arg_f32(info, 2, fn, "out");
  const int64_t ba = arg_int(info, 3, fn, "batchA", 1), bb = arg_int(info, 4, fn, "batchB", 1);
  const int64_t m = arg_int(info, 5, fn, "m"), n = arg_int(info, 6, fn, "n"), k = arg_int(info, 7, fn, "k");
  const bool ta = arg_bool(info, 8, fn, "transA"), tb = arg_bool(info, 9, fn, "transB");
  if (ba != bb && ba != 1 && bb != 1) {
    throw Napi::RangeError::New(info.Env(), "matmul: batch sizes " + std::to_string(ba) + " and " + std::to_string(bb) +
                                                " do not broadcast");
  }
  const int64_t batch = std::max(ba, bb);
  check_length(info.Env(), fn, "a", a.length, static_cast<size_t>(ba * m * k));
  check_length(info.Env(), fn, "b", b.length, static_cast<size_t>(bb * k * n));
  check_length(info.Env(), fn, "out", out.length, static_cast<size_t>(batch * m * n));
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  auto one = [&](int64_t i) {
    sgemm(ta, tb, m, n, k, 1.f, a.data + (ba == 1 ? 0 : i) * m * k, lda, b.data + (bb == 1 ? 0 : i) * k * n, ldb, 0.f,
          out.data + i * m * n, n);
  };
  // Many small products: one per thread at a time. Few large ones: each uses the pool.
  if (batch > 1 && m * n * k < (int64_t{1} << 18)) {
    parallel_for(0, batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(info, Info);
KILN_EXPORT_FUNCTION(setNumThreads, SetNumThreads);
KILN_EXPORT_FUNCTION(setGemmPath, SetGemmPath);
KILN_EXPORT_FUNCTION(matmul, MatMul);

}  // namespace kiln

// Keeps this shared object mapped until the process ends.
//
// Node unloads (dlclose) an addon when the last environment that loaded it goes away: a
// worker thread that was the only user of the addon unmaps it in its cleanup, before its
// V8 isolate is torn down. The isolate's teardown then frees every ArrayBuffer still alive,
// and those made by allocF32 (pool.cc) call this library's BackingStore deleter, which
// by then is unmapped code: the whole process died with SIGSEGV whenever a worker that had
// used kiln-native exited (an evaluation job in the eval server, finished or failed).
// A second dlopen with RTLD_NODELETE makes the loader keep the code; its handle is never
// closed on purpose. Loading in several workers shares one mapping, as before.
static void pin_library() {
#ifndef _WIN32
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&pin_library), &self) != 0 && self.dli_fname != nullptr) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
  }
#endif
}

static Napi::Object InitKilnNative(Napi::Env env, Napi::Object exports) {
  pin_library();
  // OpenBLAS starts with one thread per core; KILN_NUM_THREADS applies to it as well.
  kiln::gemm_set_threads(kiln::num_threads());
  kiln::run_registrations(env, exports);
  return exports;
}

NODE_API_MODULE(kiln_native, InitKilnNative)
