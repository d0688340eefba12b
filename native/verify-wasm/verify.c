/*
 * The candidate-pair verifier of src/verify/reference.ts in C for WebAssembly (SIMD128), driven
 * by src/verify/kernel.ts: the same method and parameters, and the same numbers to ~1e-7. The
 * parameters (Gaussian taps, the Hann window, the hypotheses' zoom·cos and zoom·sin, eps) are
 * written by TS from GEOMETRY before vk_init: there is one source of truth. No libc (-nostdlib).
 *
 * Work split (TS keeps verifyPair's control flow: hypothesis order, the cascade, the score):
 *   vk_set_upstream   luma → upstream planes and every hypothesis' spectrum (once per image)
 *   vk_prepare_down   luma → downstream fine plane, gradients, spectrum (once per image and view)
 *   vk_coarse         phase correlation of the downstream spectrum against every hypothesis
 *   vk_ncc            masked NCC under an affine map
 *   vk_refine         the Gauss–Newton refinement of an affine map
 *
 * Precision. The planes are computed as the reference computes them, in double where it uses
 * doubles, and are its Float32Arrays to the bit. The forward spectra are computed in double too:
 * phase correlation normalises every frequency to unit magnitude, so a bin that is nearly zero
 * (a zoom-out hypothesis has almost nothing near Nyquist) weighs as much as any other, and the
 * sign float32 rounding gives it would move every peak by 2/1024. Per pair, float32: the
 * normalised cross-power (from stored unit phasors), the inverse FFTs, the NCC and Gauss–Newton
 * sums (rows' partial sums carried in double); the 6×6 solve is reference.solve6's, in double.
 *
 * Layouts: planes are row-major float32 (64×64, 32×32). A spectrum keeps rows ky = 0..16 of the
 * 32×32 DFT (the rest is the conjugate mirror), all 32 kx: real parts of the unit phasors X/|X|,
 * their imaginary parts, then the magnitudes |X|, 17×32 floats each.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define AI static inline __attribute__((always_inline))

#define N 64
#define NN (N * N)
#define C 32
#define CC (C * C)
#define HALF_ROWS 17
#define HALF (HALF_ROWS * C) /* complex values kept of a Hermitian spectrum */
/* A stored spectrum: HALF values each of re/|X|, im/|X| (0, 0 where X = 0) and |X|. */
#define SPEC (3 * HALF)
#define MAXHYP 64
#define MAXTAPS 64

typedef v128_t V;

/* ---- parameters (written by TS, then vk_init) ---- */
static float taps_fine[MAXTAPS], taps_local[MAXTAPS];
static double hann[C];
static double hyp_cs[MAXHYP], hyp_sn[MAXHYP];
static int r_fine, r_local, nhyp;
static double eps;

/* ---- state ---- */
static uint8_t luma_in[NN] __attribute__((aligned(16)));
static float up_fine[NN] __attribute__((aligned(16)));
static float up_coarse[CC] __attribute__((aligned(16)));
static float up_spec[MAXHYP][SPEC] __attribute__((aligned(16)));
/* The downstream planes, sampled bilinearly, with a row of padding (zeros) for locate's cells. */
static float dn_fine[NN + N + 4] __attribute__((aligned(16)));
static float dn_gx[NN + N + 4] __attribute__((aligned(16)));
static float dn_gy[NN + N + 4] __attribute__((aligned(16)));
static float dn_spec[SPEC] __attribute__((aligned(16)));
static float dn_coarse[CC] __attribute__((aligned(16)));
/* vk_coarse: per hypothesis peak, dx, dy. vk_ncc: ncc, overlap. vk_refine: H (36), b (6), the map (6). */
static double out_coarse[3 * MAXHYP];
static double out_fine[64];

/* ---- scratch ---- */
static float s_a[NN] __attribute__((aligned(16)));
static float s_b[NN] __attribute__((aligned(16)));
static float s_c[NN] __attribute__((aligned(16)));
static float z_re[CC] __attribute__((aligned(16)));
static float z_im[CC] __attribute__((aligned(16)));
static float t_re[CC] __attribute__((aligned(16)));
static float t_im[CC] __attribute__((aligned(16)));
static double coarse_d[CC + 1] __attribute__((aligned(16))); /* up_coarse in double (+1: a pair load at the end) */
static double pad_d[N + 2 * MAXTAPS] __attribute__((aligned(16)));
static double tmp_d[NN] __attribute__((aligned(16)));
static double zd_re[CC] __attribute__((aligned(16)));
static double zd_im[CC] __attribute__((aligned(16)));
static double td_re[CC] __attribute__((aligned(16)));
static double td_im[CC] __attribute__((aligned(16)));

EXPORT("vk_taps_fine") float *vk_taps_fine(void) { return taps_fine; }
EXPORT("vk_taps_local") float *vk_taps_local(void) { return taps_local; }
EXPORT("vk_hann") double *vk_hann(void) { return hann; }
EXPORT("vk_hyp_cs") double *vk_hyp_cs(void) { return hyp_cs; }
EXPORT("vk_hyp_sn") double *vk_hyp_sn(void) { return hyp_sn; }
EXPORT("vk_luma") uint8_t *vk_luma(void) { return luma_in; }
EXPORT("vk_dn_fine") float *vk_dn_fine(void) { return dn_fine; }
EXPORT("vk_dn_gx") float *vk_dn_gx(void) { return dn_gx; }
EXPORT("vk_dn_gy") float *vk_dn_gy(void) { return dn_gy; }
EXPORT("vk_dn_spec") float *vk_dn_spec(void) { return dn_spec; }
EXPORT("vk_out_coarse") double *vk_out_coarse(void) { return out_coarse; }
EXPORT("vk_out_fine") double *vk_out_fine(void) { return out_fine; }
EXPORT("vk_max_hyp") int vk_max_hyp(void) { return MAXHYP; }
EXPORT("vk_max_taps") int vk_max_taps(void) { return MAXTAPS; }
EXPORT("vk_spec_len") int vk_spec_len(void) { return SPEC; }

/* Taps counts (2r+1 each), hypotheses and eps; returns 0, or -1 when out of range. */
EXPORT("vk_init") int vk_init(int n_fine, int n_local, int n_hyp, double eps_) {
  if (n_fine < 1 || n_fine > MAXTAPS || !(n_fine & 1) || n_local < 1 || n_local > MAXTAPS || !(n_local & 1)) return -1;
  if (n_hyp < 1 || n_hyp > MAXHYP) return -1;
  r_fine = n_fine >> 1;
  r_local = n_local >> 1;
  nhyp = n_hyp;
  eps = eps_;
  return 0;
}

/* ---------------------------------------------------------------- SIMD helpers */

#define LD(p) wasm_v128_load(p)
#define ST(p, v) wasm_v128_store(p, v)
#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul
#define SPL wasm_f32x4_splat

/* Lane sum in double (the per-row partial sums are carried across rows in double). */
AI double hsumd(V v) {
  V lo = wasm_f64x2_promote_low_f32x4(v);
  V hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
  V s = wasm_f64x2_add(lo, hi);
  return wasm_f64x2_extract_lane(s, 0) + wasm_f64x2_extract_lane(s, 1);
}

AI void transpose4(V a, V b, V c, V d, V *r0, V *r1, V *r2, V *r3) {
  V ab_lo = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5);
  V ab_hi = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
  V cd_lo = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5);
  V cd_hi = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
  *r0 = wasm_i32x4_shuffle(ab_lo, cd_lo, 0, 1, 4, 5);
  *r1 = wasm_i32x4_shuffle(ab_lo, cd_lo, 2, 3, 6, 7);
  *r2 = wasm_i32x4_shuffle(ab_hi, cd_hi, 0, 1, 4, 5);
  *r3 = wasm_i32x4_shuffle(ab_hi, cd_hi, 2, 3, 6, 7);
}

/*
 * The four bilinear corners of four samples of an n-wide plane: p[i], p[i+1], p[i+n], p[i+n+1]
 * for the lanes' indices i0..i3 (two 64-bit loads per lane, then de-interleaved).
 */
AI void corners(const float *p, int n, int i0, int i1, int i2, int i3, V *tl, V *tr, V *bl, V *br) {
  V t01 = wasm_v128_load64_lane(p + i1, wasm_v128_load64_zero(p + i0), 1);
  V t23 = wasm_v128_load64_lane(p + i3, wasm_v128_load64_zero(p + i2), 1);
  V b01 = wasm_v128_load64_lane(p + i1 + n, wasm_v128_load64_zero(p + i0 + n), 1);
  V b23 = wasm_v128_load64_lane(p + i3 + n, wasm_v128_load64_zero(p + i2 + n), 1);
  *tl = wasm_i32x4_shuffle(t01, t23, 0, 2, 4, 6);
  *tr = wasm_i32x4_shuffle(t01, t23, 1, 3, 5, 7);
  *bl = wasm_i32x4_shuffle(b01, b23, 0, 2, 4, 6);
  *br = wasm_i32x4_shuffle(b01, b23, 1, 3, 5, 7);
}

/* reference.sample's arithmetic: top = p + fx (p1 − p), bottom likewise, top + fy (bottom − top). */
AI V bilerp(const float *p, int n, int i0, int i1, int i2, int i3, V fx, V fy) {
  V tl, tr, bl, br;
  corners(p, n, i0, i1, i2, i3, &tl, &tr, &bl, &br);
  V top = ADD(tl, MUL(fx, SUB(tr, tl)));
  V bot = ADD(bl, MUL(fx, SUB(br, bl)));
  return ADD(top, MUL(fy, SUB(bot, top)));
}

/*
 * Where four samples fall: the validity mask of reference.sample (0 ≤ x, y ≤ n−1; NaN is
 * outside), the cell (x0, y0) = floor clamped to [0, n−1] (invalid lanes still read inside the
 * padded plane) and the fractions. reference.sample takes x0 = min(floor x, n−2), which at
 * x = n−1 gives fx = 1 and p0 + 1·(p1 − p0): p1 exactly in its double arithmetic, not in float32.
 * x0 = n−1 with fx = 0 gives p1 exactly here too (the neighbour it reads, in the next row or the
 * padding, is multiplied by 0), so that a sample on the grid is the pixel itself, as there.
 */
AI V locate(V sx, V sy, int n, V *fx, V *fy, V *idx) {
  V hi = SPL((float)(n - 1)), zero = SPL(0.0f), lim = hi;
  V valid = wasm_v128_and(wasm_v128_and(wasm_f32x4_ge(sx, zero), wasm_f32x4_ge(sy, zero)),
                          wasm_v128_and(wasm_f32x4_le(sx, hi), wasm_f32x4_le(sy, hi)));
  /* pmax(0, v) and pmin(lim, v) give the constant for NaN */
  V x0 = wasm_f32x4_pmin(lim, wasm_f32x4_pmax(zero, wasm_f32x4_floor(sx)));
  V y0 = wasm_f32x4_pmin(lim, wasm_f32x4_pmax(zero, wasm_f32x4_floor(sy)));
  *fx = SUB(sx, x0);
  *fy = SUB(sy, y0);
  /* y0·n + x0 is a small exact integer: added to 2^23, its value is the low mantissa bits */
  V magic = SPL(8388608.0f);
  *idx = wasm_i32x4_sub(ADD(ADD(MUL(y0, SPL((float)n)), x0), magic), magic);
  return valid;
}

/*
 * Conservative range of x in [0, n−1] where 0 ≤ al·x + be ≤ n−1 may hold, widened by a pixel;
 * the lanes' own masks decide (this only skips work).
 */
AI void narrow(double al, double be, int n, double *lo, double *hi) {
  double l, h;
  if (al > 0) {
    l = (0 - be) / al;
    h = (n - 1 - be) / al;
  } else if (al < 0) {
    l = (n - 1 - be) / al;
    h = (0 - be) / al;
  } else {
    if (!(be >= -1 && be <= n)) *hi = -1e30;
    return;
  }
  if (!(l - 1 <= *lo)) *lo = l - 1;
  if (!(h + 1 >= *hi)) *hi = h + 1;
}

/* The groups of `group` pixels of a row where both coordinates al·x + be may fall in [0, n−1]: [g0, g1). */
AI int row_range(double al1, double be1, double al2, double be2, int n, int group, int *g0, int *g1) {
  double lo = 0, hi = n - 1;
  narrow(al1, be1, n, &lo, &hi);
  narrow(al2, be2, n, &lo, &hi);
  if (!(lo <= hi)) return 0;
  *g0 = (int)lo / group;
  *g1 = (int)hi / group + 1;
  if (*g1 > n / group) *g1 = n / group;
  return *g0 < *g1;
}

/* ---------------------------------------------------------------- plane preparation */

/*
 * reference.blur, to the bit: separable, borders replicate the edge pixel, each output the sum
 * of tap × pixel in double, in tap order, rounded to float32 after each pass (the reference's
 * Float32Arrays). Two lanes of double per f64x2, two vectors per step.
 */
static void blur(const float *src, float *dst, const float *taps, int r) {
  double *tmp = tmp_d;
  V t[2 * MAXTAPS + 1];
  for (int k = 0; k <= 2 * r; k++) t[k] = wasm_f64x2_splat((double)taps[k]);
  V zero = wasm_f64x2_splat(0.0);
  for (int y = 0; y < N; y++) {
    const float *row = src + y * N;
    for (int x = -r; x < N + r; x++) pad_d[x + r] = row[x < 0 ? 0 : x >= N ? N - 1 : x];
    for (int x = 0; x < N; x += 8) {
      V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      const double *p = pad_d + x;
      for (int k = 0; k <= 2 * r; k++, p++) {
        s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(t[k], LD(p)));
        s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(t[k], LD(p + 2)));
        s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(t[k], LD(p + 4)));
        s3 = wasm_f64x2_add(s3, wasm_f64x2_mul(t[k], LD(p + 6)));
      }
      /* rounded to float32, kept as double for the vertical pass */
      double *o = tmp + y * N + x;
      ST(o, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s0)));
      ST(o + 2, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s1)));
      ST(o + 4, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s2)));
      ST(o + 6, wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s3)));
    }
  }
  for (int y = 0; y < N; y++) {
    for (int x = 0; x < N; x += 8) {
      V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      for (int k = -r; k <= r; k++) {
        int yy = y + k < 0 ? 0 : y + k >= N ? N - 1 : y + k;
        const double *p = tmp + yy * N + x;
        V tk = t[k + r];
        s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(tk, LD(p)));
        s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(tk, LD(p + 2)));
        s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(tk, LD(p + 4)));
        s3 = wasm_f64x2_add(s3, wasm_f64x2_mul(tk, LD(p + 6)));
      }
      ST(dst + y * N + x, wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(s0), wasm_f32x4_demote_f64x2_zero(s1), 0, 1, 4, 5));
      ST(dst + y * N + x + 4, wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(s2), wasm_f32x4_demote_f64x2_zero(s3), 0, 1, 4, 5));
    }
  }
}

/*
 * reference.preparePlane, to the bit: fine (band-passed, locally normalised) and its 32×32 2×2
 * means. Single float32 operations (band, its square) are those of the reference, which rounds
 * each double result to float32; the rest is in double as there.
 */
static void prepare_plane(float *fine, float *coarse) {
  float *l = s_a, *f = s_b, *mean = s_c;
  for (int i = 0; i < NN; i++) l[i] = (float)luma_in[i];
  blur(l, f, taps_fine, r_fine);
  blur(l, mean, taps_local, r_local);
  /* band → f, its square → l */
  for (int i = 0; i < NN; i += 4) {
    V b = SUB(LD(f + i), LD(mean + i));
    ST(f + i, b);
    ST(l + i, MUL(b, b));
  }
  blur(l, mean, taps_local, r_local); /* energy */
  V e = wasm_f64x2_splat(eps);
  for (int i = 0; i < NN; i += 4) {
    V b = LD(f + i), en = LD(mean + i);
    V q0 = wasm_f64x2_div(wasm_f64x2_promote_low_f32x4(b), wasm_f64x2_add(wasm_f64x2_sqrt(wasm_f64x2_promote_low_f32x4(en)), e));
    V q1 = wasm_f64x2_div(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(b, b, 2, 3, 2, 3)),
                          wasm_f64x2_add(wasm_f64x2_sqrt(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(en, en, 2, 3, 2, 3))), e));
    ST(fine + i, wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(q0), wasm_f32x4_demote_f64x2_zero(q1), 0, 1, 4, 5));
  }
  for (int y = 0; y < C; y++) {
    for (int x = 0; x < C; x++) {
      int i = 2 * y * N + 2 * x;
      coarse[y * C + x] = (float)(0.25 * ((double)fine[i] + (double)fine[i + 1] + (double)fine[i + N] + (double)fine[i + N + 1]));
    }
  }
}

/* reference.gradients: central differences, one-sided at the border. */
static void gradients(const float *p, float *gx, float *gy) {
  for (int y = 0; y < N; y++) {
    int yt = y > 0 ? y - 1 : 0, yb = y < N - 1 ? y + 1 : N - 1;
    float sy = (y == 0 || y == N - 1) ? 1.0f : 2.0f;
    for (int x = 0; x < N; x++) {
      int xl = x > 0 ? x - 1 : 0, xr = x < N - 1 ? x + 1 : N - 1;
      float sx = (x == 0 || x == N - 1) ? 1.0f : 2.0f;
      gx[y * N + x] = (p[y * N + xr] - p[y * N + xl]) / sx;
      gy[y * N + x] = (p[yb * N + x] - p[yt * N + x]) / sy;
    }
  }
}

/* ---------------------------------------------------------------- 32-point FFT, 4 transforms at once */

/* cos and sin of 2πq/32. */
static const float COS32[16] = {
  1.0f, 0.98078528040323043f, 0.92387953251128674f, 0.83146961230254524f,
  0.70710678118654752f, 0.55557023301960218f, 0.38268343236508977f, 0.19509032201612826f,
  0.0f, -0.19509032201612826f, -0.38268343236508977f, -0.55557023301960218f,
  -0.70710678118654752f, -0.83146961230254524f, -0.92387953251128674f, -0.98078528040323043f};
static const float SIN32[16] = {
  0.0f, 0.19509032201612826f, 0.38268343236508977f, 0.55557023301960218f,
  0.70710678118654752f, 0.83146961230254524f, 0.92387953251128674f, 0.98078528040323043f,
  1.0f, 0.98078528040323043f, 0.92387953251128674f, 0.83146961230254524f,
  0.70710678118654752f, 0.55557023301960218f, 0.38268343236508977f, 0.19509032201612826f};
static const int REV32[32] = {0, 16, 8, 24, 4, 20, 12, 28, 2, 18, 10, 26, 6, 22, 14, 30,
                              1, 17, 9, 25, 5, 21, 13, 29, 3, 19, 11, 27, 7, 23, 15, 31};

/* Radix-2 butterfly with twiddle exp(−2πi q/32); q is a constant once unrolled. */
AI void bfly(V *ar, V *ai, V *br, V *bi, int q) {
  V tr, ti;
  if (q == 0) {
    tr = *br;
    ti = *bi;
  } else if (q == 8) {
    tr = *bi;
    ti = wasm_f32x4_neg(*br);
  } else if (q == 4) {
    V h = SPL(0.70710678118654752f);
    tr = MUL(ADD(*br, *bi), h);
    ti = MUL(SUB(*bi, *br), h);
  } else if (q == 12) {
    V h = SPL(0.70710678118654752f);
    tr = MUL(SUB(*bi, *br), h);
    ti = MUL(ADD(*bi, *br), SPL(-0.70710678118654752f));
  } else {
    V c = SPL(COS32[q]), s = SPL(SIN32[q]);
    tr = ADD(MUL(*br, c), MUL(*bi, s));
    ti = SUB(MUL(*bi, c), MUL(*br, s));
  }
  *br = SUB(*ar, tr);
  *bi = SUB(*ai, ti);
  *ar = ADD(*ar, tr);
  *ai = ADD(*ai, ti);
}

/*
 * One pass of a 32×32 2-D DFT: the 32-point DFT along the slow axis of (sr, si), four columns
 * at a time (one per lane), stored transposed into (dr, di): two passes make the 2-D DFT in the
 * original orientation. Forward (exp(−i…)); the inverse is this with re and im swapped on both
 * sides. Radix-2 decimation in time, its butterflies ordered as radix-2²: stages 2 and 4 on
 * quads, stages 8 and 16 on quads, then stage 32 with the transposing store, so that the
 * working set of each step fits the registers (stage by stage, all 32 values spill).
 */
static V fb_r[32], fb_i[32];

static void fft_pass(const float *sr, const float *si, float *dr, float *di) {
  for (int g = 0; g < 32; g += 4) {
#pragma clang loop unroll(full)
    for (int m = 0; m < 32; m += 4) {
      V r0 = LD(sr + REV32[m] * 32 + g), i0 = LD(si + REV32[m] * 32 + g);
      V r1 = LD(sr + REV32[m + 1] * 32 + g), i1 = LD(si + REV32[m + 1] * 32 + g);
      V r2 = LD(sr + REV32[m + 2] * 32 + g), i2 = LD(si + REV32[m + 2] * 32 + g);
      V r3 = LD(sr + REV32[m + 3] * 32 + g), i3 = LD(si + REV32[m + 3] * 32 + g);
      bfly(&r0, &i0, &r1, &i1, 0);
      bfly(&r2, &i2, &r3, &i3, 0);
      bfly(&r0, &i0, &r2, &i2, 0);
      bfly(&r1, &i1, &r3, &i3, 8);
      fb_r[m] = r0, fb_i[m] = i0, fb_r[m + 1] = r1, fb_i[m + 1] = i1;
      fb_r[m + 2] = r2, fb_i[m + 2] = i2, fb_r[m + 3] = r3, fb_i[m + 3] = i3;
    }
#pragma clang loop unroll(full)
    for (int b = 0; b < 32; b += 16) {
#pragma clang loop unroll(full)
      for (int k = 0; k < 4; k++) {
        int e0 = b + k, e1 = e0 + 4, e2 = e0 + 8, e3 = e0 + 12;
        V r0 = fb_r[e0], i0 = fb_i[e0], r1 = fb_r[e1], i1 = fb_i[e1];
        V r2 = fb_r[e2], i2 = fb_i[e2], r3 = fb_r[e3], i3 = fb_i[e3];
        bfly(&r0, &i0, &r1, &i1, k * 4);
        bfly(&r2, &i2, &r3, &i3, k * 4);
        bfly(&r0, &i0, &r2, &i2, k * 2);
        bfly(&r1, &i1, &r3, &i3, (k + 4) * 2);
        fb_r[e0] = r0, fb_i[e0] = i0, fb_r[e1] = r1, fb_i[e1] = i1;
        fb_r[e2] = r2, fb_i[e2] = i2, fb_r[e3] = r3, fb_i[e3] = i3;
      }
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j += 4) {
      V ar[4], ai[4], br[4], bi[4], q0, q1, q2, q3;
#pragma clang loop unroll(full)
      for (int t = 0; t < 4; t++) {
        ar[t] = fb_r[j + t], ai[t] = fb_i[j + t], br[t] = fb_r[j + t + 16], bi[t] = fb_i[j + t + 16];
        bfly(&ar[t], &ai[t], &br[t], &bi[t], j + t);
      }
#define STORE4(dst, v, col)                                               \
  transpose4(v[0], v[1], v[2], v[3], &q0, &q1, &q2, &q3);                 \
  ST(dst + (g + 0) * 32 + (col), q0), ST(dst + (g + 1) * 32 + (col), q1); \
  ST(dst + (g + 2) * 32 + (col), q2), ST(dst + (g + 3) * 32 + (col), q3)
      STORE4(dr, ar, j);
      STORE4(di, ai, j);
      STORE4(dr, br, j + 16);
      STORE4(di, bi, j + 16);
#undef STORE4
    }
  }
}

/* Unnormalised inverse 2-D DFT of (z_re, z_im), in place: conj-free, by swapping re and im. */
static void fft2_inverse(void) {
  fft_pass(z_im, z_re, t_im, t_re);
  fft_pass(t_im, t_re, z_im, z_re);
}

/* ---------------------------------------------------------------- 32-point FFT in double, 2 transforms at once */

/* The forward spectra are computed in double, as the reference does: the phase correlation
 * normalises every frequency to unit magnitude, so bins that are tiny (a zoom-out hypothesis
 * has almost nothing near Nyquist) carry their full weight, and float32 rounding there would
 * flip their sign. */
static const double COS32D[16] = {
  1.0, 0.9807852804032304491, 0.9238795325112867561, 0.8314696123025452371,
  0.7071067811865475244, 0.5555702330196022247, 0.3826834323650897717, 0.1950903220161282678,
  0.0, -0.1950903220161282678, -0.3826834323650897717, -0.5555702330196022247,
  -0.7071067811865475244, -0.8314696123025452371, -0.9238795325112867561, -0.9807852804032304491};
static const double SIN32D[16] = {
  0.0, 0.1950903220161282678, 0.3826834323650897717, 0.5555702330196022247,
  0.7071067811865475244, 0.8314696123025452371, 0.9238795325112867561, 0.9807852804032304491,
  1.0, 0.9807852804032304491, 0.9238795325112867561, 0.8314696123025452371,
  0.7071067811865475244, 0.5555702330196022247, 0.3826834323650897717, 0.1950903220161282678};

#define DADD wasm_f64x2_add
#define DSUB wasm_f64x2_sub
#define DMUL wasm_f64x2_mul

AI void bfly_d(V *ar, V *ai, V *br, V *bi, int q) {
  V tr, ti;
  if (q == 0) {
    tr = *br;
    ti = *bi;
  } else if (q == 8) {
    tr = *bi;
    ti = wasm_f64x2_neg(*br);
  } else {
    V c = wasm_f64x2_splat(COS32D[q]), s = wasm_f64x2_splat(SIN32D[q]);
    tr = DADD(DMUL(*br, c), DMUL(*bi, s));
    ti = DSUB(DMUL(*bi, c), DMUL(*br, s));
  }
  *br = DSUB(*ar, tr);
  *bi = DSUB(*ai, ti);
  *ar = DADD(*ar, tr);
  *ai = DADD(*ai, ti);
}

static V fbd_r[32], fbd_i[32];

/* fft_pass in double, two columns at a time: the same butterflies in the same order. */
static void fft_pass_d(const double *sr, const double *si, double *dr, double *di) {
  for (int g = 0; g < 32; g += 2) {
#pragma clang loop unroll(full)
    for (int m = 0; m < 32; m += 4) {
      V r0 = LD(sr + REV32[m] * 32 + g), i0 = LD(si + REV32[m] * 32 + g);
      V r1 = LD(sr + REV32[m + 1] * 32 + g), i1 = LD(si + REV32[m + 1] * 32 + g);
      V r2 = LD(sr + REV32[m + 2] * 32 + g), i2 = LD(si + REV32[m + 2] * 32 + g);
      V r3 = LD(sr + REV32[m + 3] * 32 + g), i3 = LD(si + REV32[m + 3] * 32 + g);
      bfly_d(&r0, &i0, &r1, &i1, 0);
      bfly_d(&r2, &i2, &r3, &i3, 0);
      bfly_d(&r0, &i0, &r2, &i2, 0);
      bfly_d(&r1, &i1, &r3, &i3, 8);
      fbd_r[m] = r0, fbd_i[m] = i0, fbd_r[m + 1] = r1, fbd_i[m + 1] = i1;
      fbd_r[m + 2] = r2, fbd_i[m + 2] = i2, fbd_r[m + 3] = r3, fbd_i[m + 3] = i3;
    }
#pragma clang loop unroll(full)
    for (int b = 0; b < 32; b += 16) {
#pragma clang loop unroll(full)
      for (int k = 0; k < 4; k++) {
        int e0 = b + k, e1 = e0 + 4, e2 = e0 + 8, e3 = e0 + 12;
        V r0 = fbd_r[e0], i0 = fbd_i[e0], r1 = fbd_r[e1], i1 = fbd_i[e1];
        V r2 = fbd_r[e2], i2 = fbd_i[e2], r3 = fbd_r[e3], i3 = fbd_i[e3];
        bfly_d(&r0, &i0, &r1, &i1, k * 4);
        bfly_d(&r2, &i2, &r3, &i3, k * 4);
        bfly_d(&r0, &i0, &r2, &i2, k * 2);
        bfly_d(&r1, &i1, &r3, &i3, (k + 4) * 2);
        fbd_r[e0] = r0, fbd_i[e0] = i0, fbd_r[e1] = r1, fbd_i[e1] = i1;
        fbd_r[e2] = r2, fbd_i[e2] = i2, fbd_r[e3] = r3, fbd_i[e3] = i3;
      }
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 16; j += 2) {
      V ar = fbd_r[j], ai = fbd_i[j], br = fbd_r[j + 16], bi = fbd_i[j + 16];
      V cr = fbd_r[j + 1], ci = fbd_i[j + 1], er = fbd_r[j + 17], ei = fbd_i[j + 17];
      bfly_d(&ar, &ai, &br, &bi, j);
      bfly_d(&cr, &ci, &er, &ei, j + 1);
#define STORE2(dst, u, v, col) \
  ST(dst + g * 32 + (col), wasm_i64x2_shuffle(u, v, 0, 2)), ST(dst + (g + 1) * 32 + (col), wasm_i64x2_shuffle(u, v, 1, 3))
      STORE2(dr, ar, cr, j);
      STORE2(di, ai, ci, j);
      STORE2(dr, br, er, j + 16);
      STORE2(di, bi, ei, j + 16);
#undef STORE2
    }
  }
}

/* Forward 2-D DFT of (zd_re, zd_im) in double, in place (via td_*). */
static void fft2_forward_d(void) {
  fft_pass_d(zd_re, zd_im, td_re, td_im);
  fft_pass_d(td_re, td_im, zd_re, zd_im);
}

/* Row (32 − r) mod 32 of the conjugate mirror: element kx of the result is v[(32 − kx) mod 32]. */
AI V mirror_vec(const V *v, int j) {
  return wasm_i32x4_shuffle(v[(8 - j) & 7], v[7 - j], 0, 7, 6, 5);
}

/* Two bins (o, o + 1) of a stored spectrum: the unit phasors and the magnitudes, from double. */
AI void store_bins(float *x, int o, V re, V im) {
  V mag = wasm_f64x2_sqrt(DADD(DMUL(re, re), DMUL(im, im)));
  V nz = wasm_f64x2_gt(mag, wasm_f64x2_splat(0.0));
  V inv = wasm_v128_and(wasm_f64x2_div(wasm_f64x2_splat(1.0), mag), nz);
  wasm_v128_store64_lane(x + o, wasm_f32x4_demote_f64x2_zero(DMUL(re, inv)), 0);
  wasm_v128_store64_lane(x + HALF + o, wasm_f32x4_demote_f64x2_zero(DMUL(im, inv)), 0);
  wasm_v128_store64_lane(x + 2 * HALF + o, wasm_f32x4_demote_f64x2_zero(mag), 0);
}

/*
 * Splits the DFT Z of x1 + i·x2 (x1, x2 real) in (zd_re, zd_im) into the Hermitian halves of X1
 * and X2, X1 = (Z[k] + conj Z[−k]) / 2, X2 = (Z[k] − conj Z[−k]) / 2i, stored by store_bins.
 * x2 = 0: Z is X1's spectrum already.
 */
static void split_real_pair(float *x1, float *x2) {
  V half = wasm_f64x2_splat(0.5);
  for (int ky = 0; ky < HALF_ROWS; ky++) {
    const double *zr = zd_re + ky * 32, *zi = zd_im + ky * 32;
    const double *mr = zd_re + ((32 - ky) & 31) * 32, *mi = zd_im + ((32 - ky) & 31) * 32;
    for (int kx = 0; kx < 32; kx += 2) {
      int o = ky * 32 + kx, m0 = (32 - kx) & 31, m1 = 31 - kx;
      V ar = LD(zr + kx), ai = LD(zi + kx);
      if (!x2) {
        store_bins(x1, o, ar, ai);
        continue;
      }
      V br = wasm_f64x2_make(mr[m0], mr[m1]), bi = wasm_f64x2_make(mi[m0], mi[m1]);
      store_bins(x1, o, DMUL(DADD(ar, br), half), DMUL(DSUB(ai, bi), half));
      store_bins(x2, o, DMUL(DADD(ai, bi), half), DMUL(DSUB(br, ar), half));
    }
  }
}

/* ---------------------------------------------------------------- upstream / downstream */

/*
 * reference.upstreamSpectrum's input, to the bit: the upstream coarse plane under hypothesis h
 * (W(d) = U(zoom·R(angle)(d − c) + c), zero outside U), times the Hann window, in double.
 */
static void hypothesis_plane(int h, double *dst) {
  const double centre = (C - 1) * 0.5;
  const double csd = hyp_cs[h], snd = hyp_sn[h];
  V cs = wasm_f64x2_splat(csd), sn = wasm_f64x2_splat(snd), ctr = wasm_f64x2_splat(centre);
  V zero = wasm_f64x2_splat(0.0), hi = wasm_f64x2_splat(C - 1);
  V lim = wasm_f64x2_splat(C - 2), magic = wasm_f64x2_splat(4503599627370496.0); /* 2^52 */
  for (int y = 0; y < C; y++) {
    double dyd = (double)y - centre;
    int g0 = 0, g1 = 0;
    if (!row_range(csd, centre - csd * centre - snd * dyd, snd, centre - snd * centre + csd * dyd, C, 2, &g0, &g1)) g0 = g1 = 0;
    for (int g = 0; g < g0; g++) ST(dst + y * C + 2 * g, zero);
    for (int g = g1; g < C / 2; g++) ST(dst + y * C + 2 * g, zero);
    V dy = wasm_f64x2_splat(dyd), hy = wasm_f64x2_splat(hann[y]);
    V sny = DMUL(sn, dy), csy = DMUL(cs, dy);
    for (int x = 2 * g0; x < 2 * g1; x += 2) {
      V dx = DSUB(wasm_f64x2_make((double)x, (double)(x + 1)), ctr);
      V sx = DADD(DSUB(DMUL(cs, dx), sny), ctr);
      V sy = DADD(DADD(DMUL(sn, dx), csy), ctr);
      V valid = wasm_v128_and(wasm_v128_and(wasm_f64x2_ge(sx, zero), wasm_f64x2_ge(sy, zero)),
                              wasm_v128_and(wasm_f64x2_le(sx, hi), wasm_f64x2_le(sy, hi)));
      V x0 = wasm_f64x2_pmin(lim, wasm_f64x2_pmax(zero, wasm_f64x2_floor(sx)));
      V y0 = wasm_f64x2_pmin(lim, wasm_f64x2_pmax(zero, wasm_f64x2_floor(sy)));
      V fx = DSUB(sx, x0), fy = DSUB(sy, y0);
      V idx = wasm_i64x2_sub(DADD(DADD(DMUL(y0, wasm_f64x2_splat(C)), x0), magic), magic);
      const double *p0 = coarse_d + wasm_i64x2_extract_lane(idx, 0), *p1 = coarse_d + wasm_i64x2_extract_lane(idx, 1);
      V t0 = LD(p0), t1 = LD(p1), b0 = LD(p0 + C), b1 = LD(p1 + C);
      V tl = wasm_i64x2_shuffle(t0, t1, 0, 2), tr = wasm_i64x2_shuffle(t0, t1, 1, 3);
      V bl = wasm_i64x2_shuffle(b0, b1, 0, 2), br = wasm_i64x2_shuffle(b0, b1, 1, 3);
      V top = DADD(tl, DMUL(fx, DSUB(tr, tl)));
      V bot = DADD(bl, DMUL(fx, DSUB(br, bl)));
      V v = DADD(top, DMUL(fy, DSUB(bot, top)));
      v = DMUL(DMUL(v, LD(hann + x)), hy);
      ST(dst + y * C + x, wasm_v128_and(v, valid));
    }
  }
}

EXPORT("vk_set_upstream") void vk_set_upstream(void) {
  prepare_plane(up_fine, up_coarse);
  for (int i = 0; i < CC; i++) coarse_d[i] = up_coarse[i];
  for (int h = 0; h < nhyp; h += 2) {
    hypothesis_plane(h, zd_re);
    if (h + 1 < nhyp) hypothesis_plane(h + 1, zd_im);
    else for (int i = 0; i < CC; i++) zd_im[i] = 0.0;
    fft2_forward_d();
    split_real_pair(up_spec[h], h + 1 < nhyp ? up_spec[h + 1] : 0);
  }
}

/* reference.preparePlane, gradients and downstreamSpectrum (its Hermitian half). */
/* What follows from the fine plane (cheap): gradients and the coarse plane's windowed spectrum. */
static void finish_down(void) {
  gradients(dn_fine, dn_gx, dn_gy);
  for (int y = 0; y < C; y++) {
    for (int x = 0; x < C; x++) {
      zd_re[y * C + x] = (double)dn_coarse[y * C + x] * hann[x] * hann[y];
      zd_im[y * C + x] = 0.0;
    }
  }
  fft2_forward_d();
  split_real_pair(dn_spec, 0);
}

EXPORT("vk_prepare_down") void vk_prepare_down(void) {
  prepare_plane(dn_fine, dn_coarse);
  finish_down();
}

/*
 * A downstream view from its fine plane alone (written to dn_fine by the caller): the fine plane
 * of a dihedral view is the view of the fine plane (the filters are symmetric, the borders
 * replicated), so callers filter each image once and derive its views here.
 */
EXPORT("vk_prepare_from_fine") void vk_prepare_from_fine(void) {
  for (int y = 0; y < C; y++) {
    for (int x = 0; x < C; x++) {
      int i = 2 * y * N + 2 * x;
      dn_coarse[y * C + x] = (float)(0.25 * ((double)dn_fine[i] + (double)dn_fine[i + 1] + (double)dn_fine[i + N] + (double)dn_fine[i + N + 1]));
    }
  }
  finish_down();
}

/* ---------------------------------------------------------------- coarse search */

/* First index of the largest value (reference: strict > scanning upward). */
static int argmax(const float *p) {
  V m0 = LD(p), m1 = LD(p + 4), m2 = LD(p + 8), m3 = LD(p + 12);
  for (int i = 16; i < CC; i += 16) {
    m0 = wasm_f32x4_pmax(m0, LD(p + i));
    m1 = wasm_f32x4_pmax(m1, LD(p + i + 4));
    m2 = wasm_f32x4_pmax(m2, LD(p + i + 8));
    m3 = wasm_f32x4_pmax(m3, LD(p + i + 12));
  }
  V m = wasm_f32x4_pmax(wasm_f32x4_pmax(m0, m1), wasm_f32x4_pmax(m2, m3));
  m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
  m = wasm_f32x4_pmax(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
  for (int i = 0; i < CC; i += 4) {
    uint32_t bits = wasm_i32x4_bitmask(wasm_f32x4_eq(LD(p + i), m));
    if (bits) return i + __builtin_ctz(bits);
  }
  return 0; /* NaN everywhere */
}

/*
 * Sub-pixel offsets smaller than this are taken as 0. Mirror-related and integer-shifted pairs
 * give correlation surfaces symmetric about the peak, where the reference's offset is rounding
 * noise (~1e-16) and its affine lands exactly on the pixel grid, so that samples on the plane's
 * edge count as inside; this surface, from float32 spectra, has ~1e-8 of noise (at most ~5e-7
 * measured), which would push them out. Genuine offsets this small are rarer than 1 in 10^5.
 */
#define SUBPIXEL_SNAP 1e-6

/* reference.phaseCorrelate's peak and sub-pixel shift from the correlation surface p. */
static double subpixel(double l, double c, double r) {
  double den = l - 2 * c + r;
  if (!(den < 0)) return 0;
  double v = (0.5 * (l - r)) / den;
  v = v < -0.5 ? -0.5 : v > 0.5 ? 0.5 : v;
  return v > -SUBPIXEL_SNAP && v < SUBPIXEL_SNAP ? 0 : v;
}

static void peak_of(const float *p, double *out) {
  int best = argmax(p);
  int px = best & 31, py = best >> 5;
#define AT(x, y) ((double)p[(((y) + 32) & 31) * 32 + (((x) + 32) & 31)])
  double c = AT(px, py);
  double l = AT(px - 1, py), r = AT(px + 1, py), t = AT(px, py - 1), b = AT(px, py + 1);
#undef AT
  double sx = px + subpixel(l, c, r), sy = py + subpixel(t, c, b);
  out[0] = c / CC;
  out[1] = -(sx > C / 2 ? sx - C : sx);
  out[2] = -(sy > C / 2 ? sy - C : sy);
}

/*
 * Normalised cross-power of the downstream spectrum against hypotheses a and b (b < 0: none),
 * packed as Z = Pa + i·Pb into the full 32×32 (z_re, z_im): both are Hermitian, so the inverse
 * DFT of Z carries pa in its real part and pb in its imaginary part.
 *
 * The reference's D·conj(W) / (|D·conj(W)| + 1e-9) is D̂·conj(Ŵ)·m / (m + 1e-9) with the unit
 * phasors D̂, Ŵ and m = |D|·|W|, all stored: no square root or division per bin. In float32 the
 * factor m / (m + 1e-9) is exactly 1 unless m < 0.034, so it is applied only there.
 */
#define TINY_PRODUCT 0.05f

AI void cross_bin(V dr, V di, V dm, const float *w, int o, V *pr, V *pi) {
  V wr = LD(w + o), wi = LD(w + HALF + o), m = MUL(dm, LD(w + 2 * HALF + o));
  V r = ADD(MUL(dr, wr), MUL(di, wi));
  V im = SUB(MUL(di, wr), MUL(dr, wi));
  if (wasm_v128_any_true(wasm_f32x4_lt(m, SPL(TINY_PRODUCT)))) {
    V f = wasm_f32x4_div(m, ADD(m, SPL(1e-9f)));
    r = MUL(r, f);
    im = MUL(im, f);
  }
  *pr = r;
  *pi = im;
}

static void cross_power_pair(int a, int b) {
  const float *wa = up_spec[a], *wb = b >= 0 ? up_spec[b] : 0;
  V zero = SPL(0.0f);
  for (int ky = 0; ky < HALF_ROWS; ky++) {
    V yr[8], yi[8];
    for (int j = 0; j < 8; j++) {
      int o = ky * 32 + 4 * j;
      V dr = LD(dn_spec + o), di = LD(dn_spec + HALF + o), dm = LD(dn_spec + 2 * HALF + o);
      V par, pai, pbr = zero, pbi = zero;
      cross_bin(dr, di, dm, wa, o, &par, &pai);
      if (wb) cross_bin(dr, di, dm, wb, o, &pbr, &pbi);
      ST(z_re + o, SUB(par, pbi));
      ST(z_im + o, ADD(pai, pbr));
      /* Z at the mirrored frequency: conj(Pa) + i·conj(Pb). */
      yr[j] = ADD(par, pbi);
      yi[j] = SUB(pbr, pai);
    }
    if (ky >= 1 && ky <= 15) {
      int o = (32 - ky) * 32;
      for (int j = 0; j < 8; j++) {
        ST(z_re + o + 4 * j, mirror_vec(yr, j));
        ST(z_im + o + 4 * j, mirror_vec(yi, j));
      }
    }
  }
}

/* Phase correlation of the current downstream spectrum against every hypothesis: out_coarse[3h..3h+2] = peak, dx, dy. */
EXPORT("vk_coarse") void vk_coarse(void) {
  for (int h = 0; h < nhyp; h += 2) {
    int hb = h + 1 < nhyp ? h + 1 : -1;
    cross_power_pair(h, hb);
    fft2_inverse();
    peak_of(z_re, out_coarse + 3 * h);
    if (hb >= 0) peak_of(z_im, out_coarse + 3 * hb);
  }
}

/* ---------------------------------------------------------------- fine stage */

/* The 4-pixel groups of row y that may hold valid samples under the map m: [g0, g1). */
AI int row_groups(const double *m, int y, int *g0, int *g1) {
  return row_range(m[0], m[1] * y + m[2], m[3], m[4] * y + m[5], N, 4, g0, g1);
}

/* x of the 64 columns, four per vector */
static const float XS[N] __attribute__((aligned(16))) = {
  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
  22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
  44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* reference.maskedNcc under [a..f]: out_fine[0] = ncc, out_fine[1] = overlap. */
EXPORT("vk_ncc") double vk_ncc(double a, double b, double c, double d, double e, double f) {
  const double m[6] = {a, b, c, d, e, f};
  V va = SPL((float)a), vd = SPL((float)d);
  double su = 0, sd = 0, suu = 0, sdd = 0, sud = 0;
  V count = wasm_i32x4_splat(0);
  for (int y = 0; y < N; y++) {
    int g0, g1;
    if (!row_groups(m, y, &g0, &g1)) continue;
    V bx = SPL((float)(b * y + c)), by = SPL((float)(e * y + f));
    V ru = SPL(0.0f), rd = ru, ruu = ru, rdd = ru, rud = ru;
    const float *urow = up_fine + y * N;
    for (int g = g0; g < g1; g++) {
      V x = LD(XS + 4 * g);
      V sx = ADD(MUL(va, x), bx), sy = ADD(MUL(vd, x), by);
      V fx, fy, idx;
      V valid = locate(sx, sy, N, &fx, &fy, &idx);
      if (!wasm_v128_any_true(valid)) continue;
      V v = bilerp(dn_fine, N, wasm_i32x4_extract_lane(idx, 0), wasm_i32x4_extract_lane(idx, 1),
                   wasm_i32x4_extract_lane(idx, 2), wasm_i32x4_extract_lane(idx, 3), fx, fy);
      v = wasm_v128_and(v, valid);
      V w = wasm_v128_and(LD(urow + 4 * g), valid);
      count = wasm_i32x4_sub(count, valid);
      ru = ADD(ru, w);
      rd = ADD(rd, v);
      ruu = ADD(ruu, MUL(w, w));
      rdd = ADD(rdd, MUL(v, v));
      rud = ADD(rud, MUL(w, v));
    }
    su += hsumd(ru);
    sd += hsumd(rd);
    suu += hsumd(ruu);
    sdd += hsumd(rdd);
    sud += hsumd(rud);
  }
  int n = wasm_i32x4_extract_lane(count, 0) + wasm_i32x4_extract_lane(count, 1) + wasm_i32x4_extract_lane(count, 2) +
          wasm_i32x4_extract_lane(count, 3);
  double overlap = (double)n / NN, ncc = 0;
  if (n >= 16) {
    double cov = sud - (su * sd) / n;
    double vu = suu - (su * su) / n, vd2 = sdd - (sd * sd) / n;
    double den = __builtin_sqrt((vu > 0 ? vu : 0) * (vd2 > 0 ? vd2 : 0));
    ncc = den > 0 ? cov / den : 0;
  }
  out_fine[0] = ncc;
  out_fine[1] = overlap;
  return ncc;
}

/*
 * One Gauss–Newton system of reference.refine under [a..f]: H (out_fine[0..35]) and b
 * (out_fine[36..41]) of Σ J Jᵀ and Σ J r over the valid pixels, J = [ex·x, ex·y, ex, ey·x, ey·y, ey],
 * r = D(M u) − U(u); returns the count. Per row: the samples first (ex, ey, r, zero where invalid, into row
 * buffers), then the sums of ex², ex·ey, ey² times 1, x, x² and of ex·r, ey·r times 1, x, in two
 * loops of few accumulators (one loop with all of them spills); the rows' sums are combined
 * with y in double.
 */
static float row_ex[N] __attribute__((aligned(16)));
static float row_ey[N] __attribute__((aligned(16)));
static float row_r[N] __attribute__((aligned(16)));

__attribute__((noinline)) static int gauss_newton_system(double a, double b, double c, double d, double e, double f) {
  const double m[6] = {a, b, c, d, e, f};
  V va = SPL((float)a), vd = SPL((float)d), z = SPL(0.0f);
  /* [product][moment]: products ex·ex, ex·ey, ey·ey; moments 1, y, y², x, x·y, x² */
  double A[3][6] = {{0}}, B[2][3] = {{0}};
  V count = wasm_i32x4_splat(0);
  for (int y = 0; y < N; y++) {
    int g0, g1;
    if (!row_groups(m, y, &g0, &g1)) continue;
    V bx = SPL((float)(b * y + c)), by = SPL((float)(e * y + f));
    const float *urow = up_fine + y * N;
    for (int g = g0; g < g1; g++) {
      V x = LD(XS + 4 * g);
      V sx = ADD(MUL(va, x), bx), sy = ADD(MUL(vd, x), by);
      V fx, fy, idx;
      V valid = locate(sx, sy, N, &fx, &fy, &idx);
      if (!wasm_v128_any_true(valid)) {
        ST(row_ex + 4 * g, z), ST(row_ey + 4 * g, z), ST(row_r + 4 * g, z);
        continue;
      }
      int i0 = wasm_i32x4_extract_lane(idx, 0), i1 = wasm_i32x4_extract_lane(idx, 1);
      int i2 = wasm_i32x4_extract_lane(idx, 2), i3 = wasm_i32x4_extract_lane(idx, 3);
      V v = bilerp(dn_fine, N, i0, i1, i2, i3, fx, fy);
      ST(row_ex + 4 * g, wasm_v128_and(bilerp(dn_gx, N, i0, i1, i2, i3, fx, fy), valid));
      ST(row_ey + 4 * g, wasm_v128_and(bilerp(dn_gy, N, i0, i1, i2, i3, fx, fy), valid));
      ST(row_r + 4 * g, wasm_v128_and(SUB(v, LD(urow + 4 * g)), valid));
      count = wasm_i32x4_sub(count, valid);
    }
    V p0 = z, p1 = z, p2 = z, s0 = z, s1 = z, s2 = z;
    for (int g = g0; g < g1; g++) {
      V x = LD(XS + 4 * g), ex = LD(row_ex + 4 * g), ey = LD(row_ey + 4 * g);
      V x2 = MUL(x, x), pxx = MUL(ex, ex), pxy = MUL(ex, ey);
      p0 = ADD(p0, pxx), p1 = ADD(p1, MUL(pxx, x)), p2 = ADD(p2, MUL(pxx, x2));
      s0 = ADD(s0, pxy), s1 = ADD(s1, MUL(pxy, x)), s2 = ADD(s2, MUL(pxy, x2));
    }
    V t0 = z, t1 = z, t2 = z, u0 = z, u1 = z, w0 = z, w1 = z;
    for (int g = g0; g < g1; g++) {
      V x = LD(XS + 4 * g), ex = LD(row_ex + 4 * g), ey = LD(row_ey + 4 * g), r = LD(row_r + 4 * g);
      V x2 = MUL(x, x), pyy = MUL(ey, ey), qx = MUL(ex, r), qy = MUL(ey, r);
      t0 = ADD(t0, pyy), t1 = ADD(t1, MUL(pyy, x)), t2 = ADD(t2, MUL(pyy, x2));
      u0 = ADD(u0, qx), u1 = ADD(u1, MUL(qx, x));
      w0 = ADD(w0, qy), w1 = ADD(w1, MUL(qy, x));
    }
    const V S0[3] = {p0, s0, t0}, S1[3] = {p1, s1, t1}, S2[3] = {p2, s2, t2}, T0[2] = {u0, w0}, T1[2] = {u1, w1};
    double yd = y, yy = yd * yd;
    for (int k = 0; k < 3; k++) {
      double h0 = hsumd(S0[k]), h1 = hsumd(S1[k]), h2 = hsumd(S2[k]);
      A[k][0] += h0;
      A[k][1] += h0 * yd;
      A[k][2] += h0 * yy;
      A[k][3] += h1;
      A[k][4] += h1 * yd;
      A[k][5] += h2;
    }
    for (int k = 0; k < 2; k++) {
      double h0 = hsumd(T0[k]), h1 = hsumd(T1[k]);
      B[k][0] += h1;      /* x */
      B[k][1] += h0 * yd; /* y */
      B[k][2] += h0;      /* 1 */
    }
  }
  /* the moment of m_i·m_j for m = (x, y, 1), and the product of e_p·e_q for e = (ex, ey) */
  static const int MOM[3][3] = {{5, 4, 3}, {4, 2, 1}, {3, 1, 0}};
  static const int PROD[2][2] = {{0, 1}, {1, 2}};
  for (int p = 0; p < 6; p++) {
    for (int q = 0; q < 6; q++) out_fine[p * 6 + q] = A[PROD[p / 3][q / 3]][MOM[p % 3][q % 3]];
  }
  for (int p = 0; p < 6; p++) out_fine[36 + p] = B[p / 3][p % 3];
  return wasm_i32x4_extract_lane(count, 0) + wasm_i32x4_extract_lane(count, 1) + wasm_i32x4_extract_lane(count, 2) +
         wasm_i32x4_extract_lane(count, 3);
}

/*
 * reference.solve6, operation for operation in double (so its results to the bit): H x = b by
 * Gaussian elimination with partial pivoting and a small damping; 0 if singular.
 */
static int solve6(const double *h, const double *b, double *x) {
  double a[42];
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) a[i * 7 + j] = h[i * 6 + j] + (i == j ? 1e-6 * (h[i * 6 + i] + 1) : 0);
    a[i * 7 + 6] = b[i];
  }
  for (int c = 0; c < 6; c++) {
    int p = c;
    for (int r = c + 1; r < 6; r++)
      if (__builtin_fabs(a[r * 7 + c]) > __builtin_fabs(a[p * 7 + c])) p = r;
    if (__builtin_fabs(a[p * 7 + c]) < 1e-12) return 0;
    if (p != c) {
      for (int k = 0; k < 7; k++) {
        double t = a[c * 7 + k];
        a[c * 7 + k] = a[p * 7 + k];
        a[p * 7 + k] = t;
      }
    }
    for (int r = 0; r < 6; r++) {
      if (r == c) continue;
      double f = a[r * 7 + c] / a[c * 7 + c];
      for (int k = c; k < 7; k++) a[r * 7 + k] = a[r * 7 + k] - f * a[c * 7 + k];
    }
  }
  for (int i = 0; i < 6; i++) x[i] = a[i * 7 + 6] / a[i * 7 + i];
  return 1;
}

/*
 * reference.refine from [a..f]: `iterations` Gauss–Newton steps, stopping early when fewer than
 * `min_count` pixels are valid or the system is singular. The result in out_fine[42..47].
 */
EXPORT("vk_refine") void vk_refine(double a, double b, double c, double d, double e, double f, int iterations, int min_count) {
  double m[6] = {a, b, c, d, e, f}, step[6];
  for (int it = 0; it < iterations; it++) {
    int count = gauss_newton_system(m[0], m[1], m[2], m[3], m[4], m[5]);
    if (count < min_count) break;
    if (!solve6(out_fine, out_fine + 36, step)) break;
    for (int i = 0; i < 6; i++) m[i] = m[i] - step[i];
  }
  for (int i = 0; i < 6; i++) out_fine[42 + i] = m[i];
}
