#define BUILD "neardup-wasm"
#define INLINE inline __attribute__((always_inline))
#define PACKAGE_NAME "libjpeg-turbo"
#define VERSION "1.4.80"
