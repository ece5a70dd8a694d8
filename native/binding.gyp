{
  # Machine questions are answered by scripts/gyp-config.cjs (see its header).
  "variables": {
    "kiln_march%": "<!(node scripts/gyp-config.cjs march)"
  },
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": [
        "src/addon.cc",
        "src/parallel.cc",
        "src/gemm.cc",
        "src/gemm_avx512.cc",
        "src/gemm_avx2.cc",
        "src/gemm_choice.cc",
        "src/blas.cc",
        "src/elementwise.cc",
        "src/reduce.cc",
        "src/layout.cc",
        "src/conv.cc",
        "src/pool.cc",
        "src/adam.cc",
        
        
        
        
        # Every op file of the gpu-kernels engineer, found at configure time (OPS.md).
        "<!@(node scripts/gyp-config.cjs ops-sources)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "src"
      ],
      # _ALL: any C++ exception (std::bad_alloc from a huge scratch buffer) becomes a JS Error.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions", "-O2", "-O1", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "<(kiln_march)"],
      "cflags_cc": ["-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "<(kiln_march)"],
      "ldflags": ["-pthread", "<!@(node scripts/gyp-config.cjs ldflags)"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CPLUSPLUSFLAGS": ["-fno-math-errno", "<(kiln_march)"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "Optimization": 2 } },
      "conditions": [
        ["OS=='linux'", { "libraries": ["-ldl"] }]
      ]
    }
  ]
}
