/*
 * Scaled JPEG decoding for neardup (src/scan/jpeg-scaled.ts), built to WebAssembly by build.sh.
 *
 * libjpeg reports fatal errors through error_exit, which must not return. Without
 * setjmp/longjmp (clang 14 cannot lower them to WebAssembly) it calls an imported JS function
 * that throws: the exception unwinds through these frames and nothing here runs again for that
 * decode. So that such an unwind leaks nothing, all of libjpeg's memory comes from one arena
 * (the jmemsys.h backend below) that is reset when the next input is handed over.
 *
 * The decode settings are those of libvips' jpegload with shrink-on-load, so that the pixels are
 * the ones sharp starts its resize from. Inputs whose decode could differ from libvips' (another
 * colour space, unusual subsampling, arithmetic coding, 12-bit) are refused with a status code
 * and left to libvips.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "jpeglib.h"
#include "jerror.h"
#include "jmemsys.h"

#define EXPORT(name) __attribute__((export_name(name)))

/* Throws a JS exception; never returns. */
__attribute__((import_module("env"), import_name("jpeg_error"), noreturn))
void js_jpeg_error(int msg_code);

/* ---- Arena: libjpeg's whole heap for one decode ---- */

extern unsigned char __heap_base;

#define WASM_PAGE 65536u
/* Enough for a 24-megapixel decode at full size plus its input; more is refused, not grown. */
#define ARENA_LIMIT (512u * 1024 * 1024)

static size_t arena_start, arena_top, arena_end;

static void arena_reset(void)
{
  if (!arena_start) {
    arena_start = ((size_t)&__heap_base + 15) & ~(size_t)15;
    arena_end = __builtin_wasm_memory_size(0) * WASM_PAGE;
  }
  arena_top = arena_start;
}

static void *arena_alloc(size_t n)
{
  if (n > ARENA_LIMIT) return NULL;
  n = (n + 15) & ~(size_t)15;
  if (n > ARENA_LIMIT - (arena_top - arena_start)) return NULL;
  if (arena_top + n > arena_end) {
    size_t pages = (arena_top + n - arena_end + WASM_PAGE - 1) / WASM_PAGE;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return NULL;
    arena_end += pages * WASM_PAGE;
  }
  void *p = (void *)arena_top;
  arena_top += n;
  return p;
}

/* The jmemsys.h interface. Frees are no-ops: the arena is dropped whole. */

void *jpeg_get_small(j_common_ptr cinfo, size_t size) { (void)cinfo; return arena_alloc(size); }
void jpeg_free_small(j_common_ptr cinfo, void *object, size_t size) { (void)cinfo; (void)object; (void)size; }
void *jpeg_get_large(j_common_ptr cinfo, size_t size) { (void)cinfo; return arena_alloc(size); }
void jpeg_free_large(j_common_ptr cinfo, void *object, size_t size) { (void)cinfo; (void)object; (void)size; }

size_t jpeg_mem_available(j_common_ptr cinfo, size_t min_bytes_needed, size_t max_bytes_needed, size_t already_allocated)
{
  (void)cinfo; (void)min_bytes_needed; (void)already_allocated;
  return max_bytes_needed;
}

/* Never reached: jpeg_mem_available always grants everything, so no backing store is asked for. */
void jpeg_open_backing_store(j_common_ptr cinfo, backing_store_ptr info, long total_bytes_needed)
{
  (void)info; (void)total_bytes_needed;
  ERREXIT(cinfo, JERR_NO_BACKING_STORE);
}

long jpeg_mem_init(j_common_ptr cinfo) { (void)cinfo; return 0; }
void jpeg_mem_term(j_common_ptr cinfo) { (void)cinfo; }

/*
 * Never reached: the decode below fixes quantize_colors = FALSE. These stand-ins keep the colour
 * quantizers (jquant1.c, jquant2.c) out of the module, and fail loudly should that ever change.
 */
void jinit_1pass_quantizer(j_decompress_ptr cinfo) { ERREXIT(cinfo, JERR_NOT_COMPILED); }
void jinit_2pass_quantizer(j_decompress_ptr cinfo) { ERREXIT(cinfo, JERR_NOT_COMPILED); }

/* ---- Errors and warnings: no stdio; warnings are counted for JS ---- */

static int warnings;

static void error_exit(j_common_ptr cinfo) { js_jpeg_error(cinfo->err->msg_code); }

static void emit_message(j_common_ptr cinfo, int msg_level)
{
  (void)cinfo;
  if (msg_level < 0) warnings++;
}

static void output_message(j_common_ptr cinfo) { (void)cinfo; }

static void format_message(j_common_ptr cinfo, char *buffer)
{
  (void)cinfo;
  buffer[0] = 0;
}

static void reset_error_mgr(j_common_ptr cinfo)
{
  cinfo->err->num_warnings = 0;
  cinfo->err->msg_code = 0;
}

/* ---- The decode ---- */

enum status {
  OK = 0,
  BAD_DENOM = 1,
  NOT_8_BIT = 2,
  ARITHMETIC = 3,
  COLOUR_SPACE = 4,
  SUBSAMPLING = 5,
  TOO_LARGE = 6,
  SHORT_OUTPUT = 7,
  ADOBE = 8,
  TOO_SMALL = 9,
};

static struct jpeg_decompress_struct cinfo;
static struct jpeg_error_mgr jerr;
static unsigned char *input;
static size_t input_size;
static unsigned char *output;
static int out_width, out_height;

/* Starts a decode: drops everything from the last one and returns room for `size` input bytes. */
EXPORT("jw_input")
unsigned char *jw_input(size_t size)
{
  arena_reset();
  output = NULL;
  out_width = out_height = 0;
  input = arena_alloc(size ? size : 1);
  input_size = input ? size : 0;
  return input;
}

/*
 * The layouts that decode here exactly as in sharp's mozjpeg: grey, 4:4:4, 4:2:2 and 4:2:0.
 * libjpeg-turbo 1.4.80 upsamples 4:4:0 differently (fancy h1v2 upsampling came in a later
 * version; measured up to 10 levels apart), and the rarer rest is left to libvips unmeasured.
 */
static int plain_sampling(void)
{
  if (cinfo.num_components == 1) return 1;
  jpeg_component_info *c = cinfo.comp_info;
  if (c[1].h_samp_factor != 1 || c[1].v_samp_factor != 1 || c[2].h_samp_factor != 1 || c[2].v_samp_factor != 1) return 0;
  int h = c[0].h_samp_factor, v = c[0].v_samp_factor;
  return (h == 1 && v == 1) || (h == 2 && v == 1) || (h == 2 && v == 2);
}

/* Decodes the input at 1/denom scale to interleaved RGB; 0 or a reason it was refused. */
EXPORT("jw_decode")
int jw_decode(int denom, int max_pixels)
{
  if (denom != 1 && denom != 2 && denom != 4 && denom != 8) return BAD_DENOM;
  warnings = 0;
  jerr.error_exit = error_exit;
  jerr.emit_message = emit_message;
  jerr.output_message = output_message;
  jerr.format_message = format_message;
  jerr.reset_error_mgr = reset_error_mgr;
  jerr.trace_level = 0;
  jerr.num_warnings = 0;
  jerr.msg_code = 0;
  cinfo.err = &jerr;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, input, input_size);
  jpeg_read_header(&cinfo, TRUE);

  if (cinfo.data_precision != 8) return NOT_8_BIT;
  if (cinfo.arith_code) return ARITHMETIC;
  if (cinfo.saw_Adobe_marker) return ADOBE;
  if (!((cinfo.num_components == 1 && cinfo.jpeg_color_space == JCS_GRAYSCALE) ||
        (cinfo.num_components == 3 && cinfo.jpeg_color_space == JCS_YCbCr)))
    return COLOUR_SPACE;
  if (!plain_sampling()) return SUBSAMPLING;
  if ((double)cinfo.image_width * cinfo.image_height > (double)max_pixels) return TOO_LARGE;

  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = denom;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  cinfo.quantize_colors = FALSE;
  jpeg_start_decompress(&cinfo);

  /*
   * libvips keeps floor(size / denom) pixels of libjpeg's ceil(size / denom): the partial last
   * column and row (scaled from less than a full denom of input) are dropped.
   */
  int width = cinfo.image_width / denom, height = cinfo.image_height / denom;
  if (width == 0 || height == 0) return TOO_SMALL;
  size_t stride = (size_t)cinfo.output_width * 3;
  unsigned char *out = arena_alloc(stride * cinfo.output_height);
  if (!out) ERREXIT1(&cinfo, JERR_OUT_OF_MEMORY, 0);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[8];
    int n = 0;
    for (; n < 8 && cinfo.output_scanline + n < cinfo.output_height; n++) rows[n] = out + (cinfo.output_scanline + n) * stride;
    if (jpeg_read_scanlines(&cinfo, rows, n) == 0) return SHORT_OUTPUT;
  }
  /* Reads on to the end of the file, so damage after the last scanline is warned about too. */
  jpeg_finish_decompress(&cinfo);
  for (int y = 1; y < height; y++) memmove(out + (size_t)y * width * 3, out + y * stride, (size_t)width * 3);
  output = out;
  out_width = width;
  out_height = height;
  return OK;
}

EXPORT("jw_output") unsigned char *jw_output(void) { return output; }
EXPORT("jw_width") int jw_width(void) { return out_width; }
EXPORT("jw_height") int jw_height(void) { return out_height; }
/* libjpeg's warnings (corrupt data it decoded through) during the last decode. */
EXPORT("jw_warnings") int jw_warnings(void) { return warnings; }

/* ---- Resampling the decoded image ---- */

/* Room for the resampling filters and results; valid until the next jw_input. */
EXPORT("jw_alloc")
void *jw_alloc(size_t size) { return arena_alloc(size); }

/*
 * One step of libvips' integer reduce along x (horizontal) or y, 8-bit RGB in and out: each output
 * sample is floor((Σ weight × input + bias) × scale / 2^shift) clamped to 0..255, its taps start at
 * start[o] (clamped at the edges, which repeats them). The filters are designed in JS (small.ts,
 * whose resizeFill runs the same loop); only this multiply-accumulate runs here, ~3.5× faster
 * than V8 runs it. scale 1 is vips_reduce (signed sums), another scale vips_shrink's box
 * (unsigned, libvips' multiply-and-shift division).
 */
EXPORT("jw_pass")
unsigned char *jw_pass(const unsigned char *src, int width, int height, int horizontal,
                       int out_len, int taps, const int32_t *start, const int32_t *weights,
                       int32_t bias, uint32_t scale, int shift)
{
  int line_len = horizontal ? width : height;
  int lines = horizontal ? height : out_len;
  int n = horizontal ? out_len * 3 : width * 3;
  unsigned char *out = arena_alloc((size_t)lines * n);
  int32_t *acc = arena_alloc((size_t)n * sizeof(int32_t));
  int32_t *at = arena_alloc((size_t)out_len * taps * sizeof(int32_t));
  if (!out || !acc || !at) return NULL;
  for (int i = 0; i < out_len * taps; i++) {
    int p = start[i / taps] + i % taps;
    at[i] = (p < 0 ? 0 : p >= line_len ? line_len - 1 : p) * (horizontal ? 3 : width * 3);
  }
  for (int line = 0; line < lines; line++) {
    if (horizontal) {
      const unsigned char *row = src + (size_t)line * width * 3;
      for (int o = 0; o < out_len; o++) {
        int32_t r = 0, g = 0, b = 0;
        for (int t = o * taps; t < (o + 1) * taps; t++) {
          const unsigned char *p = row + at[t];
          r += weights[t] * p[0]; g += weights[t] * p[1]; b += weights[t] * p[2];
        }
        acc[o * 3] = r; acc[o * 3 + 1] = g; acc[o * 3 + 2] = b;
      }
    } else {
      for (int x = 0; x < n; x++) acc[x] = 0;
      for (int t = line * taps; t < (line + 1) * taps; t++) {
        int32_t w = weights[t];
        const unsigned char *p = src + at[t];
        if (w != 0)
          for (int x = 0; x < n; x++) acc[x] += w * p[x];
      }
    }
    unsigned char *q = out + (size_t)line * n;
    if (scale == 1) {
      for (int x = 0; x < n; x++) {
        int32_t v = (acc[x] + bias) >> shift;
        q[x] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    } else {
      for (int x = 0; x < n; x++) {
        uint32_t v = ((uint32_t)(acc[x] + bias) * scale) >> shift;
        q[x] = v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/* ---- Enlarging a small image (small.ts's float path) ---- */

/*
 * The same arithmetic as small.ts's float `pass`, in the same order per output sample, so that
 * the results are identical to the last bit: doubles, each output the sum of its taps in kernel
 * order starting from 0 (WebAssembly has no fused multiply-add for clang to contract into).
 * Taps o run from bounds[o] to bounds[o + 1]: input pixel at[k] (edges already clamped), weight
 * w[k]. Along x pixel by pixel; along y a row at a time (clang vectorises across the row).
 */
EXPORT("jw_widen")
double *jw_widen(const unsigned char *src, int n)
{
  double *out = arena_alloc((size_t)n * sizeof(double));
  if (!out) return NULL;
  for (int i = 0; i < n; i++) out[i] = src[i];
  return out;
}

EXPORT("jw_fpass")
double *jw_fpass(const double *src, int width, int height, int horizontal, int out_len,
                 const int32_t *bounds, const int32_t *at, const double *w)
{
  size_t n = (size_t)(horizontal ? out_len * height : width * out_len) * 3;
  double *out = arena_alloc(n * sizeof(double));
  if (!out) return NULL;
  if (horizontal) {
    double *q = out;
    for (int y = 0; y < height; y++) {
      const double *row = src + (size_t)y * width * 3;
      for (int o = 0; o < out_len; o++, q += 3) {
        double r = 0, g = 0, b = 0;
        for (int k = bounds[o]; k < bounds[o + 1]; k++) {
          const double *p = row + at[k] * 3;
          r += p[0] * w[k]; g += p[1] * w[k]; b += p[2] * w[k];
        }
        q[0] = r; q[1] = g; q[2] = b;
      }
    }
  } else {
    int row = width * 3;
    for (int o = 0; o < out_len; o++) {
      double *q = out + (size_t)o * row;
      for (int x = 0; x < row; x++) q[x] = 0;
      for (int k = bounds[o]; k < bounds[o + 1]; k++) {
        const double *p = src + (size_t)at[k] * row;
        double wk = w[k];
        for (int x = 0; x < row; x++) q[x] += p[x] * wk;
      }
    }
  }
  return out;
}

/* To 8 bits as small.ts rounds: 0 below 0.5, 255 from 255, else (int)(x + 0.5). */
EXPORT("jw_narrow")
unsigned char *jw_narrow(const double *src, int n)
{
  unsigned char *out = arena_alloc((size_t)n);
  if (!out) return NULL;
  for (int i = 0; i < n; i++) {
    double x = src[i];
    out[i] = x < 0.5 ? 0 : x >= 255 ? 255 : (unsigned char)(int)(x + 0.5);
  }
  return out;
}
