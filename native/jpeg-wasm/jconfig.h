/* jconfig.h for the WebAssembly build (build.sh); the configure-generated one does not exist here. */
#define JPEG_LIB_VERSION  62
#define LIBJPEG_TURBO_VERSION 1.4.80
#define BITS_IN_JSAMPLE  8
#define HAVE_STDDEF_H 1
#define HAVE_STDLIB_H 1
#define HAVE_UNSIGNED_CHAR 1
#define HAVE_UNSIGNED_SHORT 1
/* jpeg_mem_src: the whole file is handed over in memory. */
#define MEM_SRCDST_SUPPORTED 1
/* No JPEGMEM environment variable in a WASI-less module. */
#define NO_GETENV 1
#define SIZEOF_SIZE_T 4
