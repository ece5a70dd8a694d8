{
  # Open MPI's compile and link flags come from its compiler wrapper (or pkg-config's
  # ompi), found by scripts/mpi-config.cjs; scripts/install.mjs skips the build when
  # neither exists, so the rest of Kiln installs without MPI.
  "targets": [
    {
      "target_name": "kiln_mpi",
      "sources": ["src/mpi_binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-O2", "-std=c++17", "-fexceptions", "<!@(node scripts/mpi-config.cjs cflags)"],
      "libraries": ["<!@(node scripts/mpi-config.cjs libs)", "-ldl"],
      "ldflags": ["-pthread"]
    }
  ]
}
