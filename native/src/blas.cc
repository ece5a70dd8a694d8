// Loads OpenBLAS with dlopen (see blas.h).
#include "blas.h"

#include <cstdlib>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define KILN_HAVE_DLOPEN 1
#endif

namespace kiln {
namespace {

#ifdef KILN_HAVE_DLOPEN
std::vector<std::string> candidates() {
  std::vector<std::string> names;
  if (const char* lib = std::getenv("KILN_OPENBLAS_LIB")) names.emplace_back(lib);
#ifdef __APPLE__
  names.insert(names.end(), {"libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
                             "/usr/local/opt/openblas/lib/libopenblas.dylib"});
#else
  names.insert(names.end(), {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblaso.so.0"});
#endif
  return names;
}

template <typename F>
bool bind(void* handle, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(handle, name));
  return out != nullptr;
}

const Blas* load() {
  const char* setting = std::getenv("KILN_NATIVE_BLAS");
  if (setting && (std::string(setting) == "off" || std::string(setting) == "0")) return nullptr;
  for (const std::string& name : candidates()) {
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) continue;
    static Blas blas;
    static std::string path;
    if (bind(handle, "cblas_sgemm", blas.sgemm) && bind(handle, "openblas_set_num_threads", blas.set_num_threads) &&
        bind(handle, "openblas_get_num_threads", blas.get_num_threads) &&
        bind(handle, "openblas_get_config", blas.get_config) &&
        bind(handle, "openblas_get_corename", blas.get_corename)) {
      path = name;
      blas.path = path.c_str();
      return &blas;
    }
    dlclose(handle);
  }
  return nullptr;
}
#else
const Blas* load() { return nullptr; }
#endif

}  // namespace

const Blas* openblas() {
  static const Blas* blas = load();
  return blas;
}

}  // namespace kiln
