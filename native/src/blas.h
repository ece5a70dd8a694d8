// OpenBLAS, found at run time: the addon loads libopenblas with dlopen when it starts, so one
// binary (a prebuilt one included) uses OpenBLAS where it is installed and runs on its own
// GEMM where it is not. KILN_NATIVE_BLAS=off skips the search; KILN_OPENBLAS_LIB names a
// library file to try first.
#pragma once

#include <cstdint>

namespace kiln {

struct Blas {
  // cblas_sgemm with CBLAS's enum values passed as ints (row major 101, no-trans 111, trans 112).
  void (*sgemm)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                const float* b, int ldb, float beta, float* c, int ldc);
  void (*set_num_threads)(int);
  int (*get_num_threads)();
  char* (*get_config)();
  char* (*get_corename)();
  const char* path;  // the library file that was loaded
};

// The loaded OpenBLAS, or nullptr (not found, disabled, or missing a symbol). Loaded once.
const Blas* openblas();

}  // namespace kiln
