#!/bin/sh
# Builds verify.wasm, which is committed: installs and tests never need clang.
# Debian 12: apt-get install -y clang lld
set -eu
cd "$(dirname "$0")"
# No libc (-nostdlib; the C uses compiler builtins only), no entry point. -mbulk-memory lets clang
# lower its zero-fills to memory.fill instead of calling memset. -ffp-contract=off: no fused
# multiply-adds, so that the arithmetic is the source's (the planes match the reference's bits).
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -ffp-contract=off -nostdlib \
  -Wall -Wextra -Wno-unused-parameter \
  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 -Wl,--stack-first \
  -o verify.wasm verify.c
chmod -x verify.wasm
ls -l verify.wasm
