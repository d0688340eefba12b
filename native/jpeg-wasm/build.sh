#!/bin/sh
# Builds jpeg-scaled.wasm, which is committed: installs and tests never need clang.
# Debian 12: apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32
set -eu
cd "$(dirname "$0")"
L=libjpeg-turbo
# libjpeg-turbo's decoder, C code paths only (jsimd_none.c). Left out: the quantizers (never
# enabled; stand-ins in jpeg-scaled.c), jerror.c (its message formatting pulls in stdio; the
# wrapper installs its own error manager) and jmemnobs.c (replaced by the wrapper's arena).
SOURCES="jpeg-scaled.c $L/jcomapi.c $L/jdapimin.c $L/jdapistd.c $L/jdatasrc.c $L/jdcoefct.c
  $L/jdcolor.c $L/jddctmgr.c $L/jdhuff.c $L/jdinput.c $L/jdmainct.c $L/jdmarker.c $L/jdmaster.c
  $L/jdmerge.c $L/jdphuff.c $L/jdpostct.c $L/jdsample.c $L/jidctint.c $L/jidctred.c
  $L/jidctfst.c $L/jidctflt.c $L/jmemmgr.c $L/jutils.c $L/jsimd_none.c"
clang --target=wasm32-wasi -O2 -msimd128 -ffp-contract=off -nostartfiles \
  -I. -I$L \
  -Wno-shift-negative-value \
  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=131072 -Wl,--stack-first \
  -o jpeg-scaled.wasm $SOURCES
ls -l jpeg-scaled.wasm
