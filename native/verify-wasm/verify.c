/*
 * The candidate-pair verifier of src/verify/reference.ts in C for WebAssembly (SIMD128): the same
 * method and parameters, in float32. src/verify/kernel.ts drives it; the parameters (Gaussian
 * taps, the Hann window, the hypotheses' zoom·cos and zoom·sin, eps) are written by TS before
 * vk_init, from GEOMETRY, so there is one source of truth. No libc: built with -nostdlib.
 *
 * Work split (see kernel.ts):
 *   vk_set_upstream   luma → upstream planes and the Hermitian half of every hypothesis' spectrum
 *   vk_prepare_down   luma → downstream fine plane, gradients, Hermitian half of its spectrum
 *   vk_coarse         phase correlation of the downstream spectrum against every hypothesis
 *   vk_ncc / vk_gn    masked NCC, and one Gauss–Newton system, under an affine map
 * TS keeps the control flow of reference.verifyPair (ordering, cascade, solve, scoring).
 *
 * Layouts: planes are row-major float32 (64×64 or 32×32). A spectrum is stored as its rows
 * ky = 0..16 (the other rows are the conjugate mirror), all 32 kx, real parts then imaginary.
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
#define MAXHYP 64
#define MAXTAPS 64

typedef v128_t V;

/* ---- parameters (written by TS, then vk_init) ---- */
static float taps_fine[MAXTAPS], taps_local[MAXTAPS];
static float hann[C];
static float hyp_cs[MAXHYP], hyp_sn[MAXHYP];
static int r_fine, r_local, nhyp;
static float eps;

/* ---- state ---- */
static uint8_t luma_in[NN] __attribute__((aligned(16)));
static float up_fine[NN] __attribute__((aligned(16)));
static float up_coarse[CC] __attribute__((aligned(16)));
static float up_spec[MAXHYP][2 * HALF] __attribute__((aligned(16)));
static float dn_fine[NN] __attribute__((aligned(16)));
static float dn_gx[NN] __attribute__((aligned(16)));
static float dn_gy[NN] __attribute__((aligned(16)));
static float dn_spec[2 * HALF] __attribute__((aligned(16)));
static float dn_coarse[CC] __attribute__((aligned(16)));
/* vk_coarse: per hypothesis peak, dx, dy. vk_ncc: ncc, overlap. vk_gn: H (36), b (6). */
static double out_coarse[3 * MAXHYP];
static double out_fine[64];

/* ---- scratch ---- */
static float s_a[NN] __attribute__((aligned(16)));
static float s_b[NN] __attribute__((aligned(16)));
static float s_c[NN] __attribute__((aligned(16)));
static float s_d[NN] __attribute__((aligned(16)));
static float z_re[CC] __attribute__((aligned(16)));
static float z_im[CC] __attribute__((aligned(16)));
static float t_re[CC] __attribute__((aligned(16)));
static float t_im[CC] __attribute__((aligned(16)));
static float pad[N + 2 * MAXTAPS] __attribute__((aligned(16)));

EXPORT("vk_taps_fine") float *vk_taps_fine(void) { return taps_fine; }
EXPORT("vk_taps_local") float *vk_taps_local(void) { return taps_local; }
EXPORT("vk_hann") float *vk_hann(void) { return hann; }
EXPORT("vk_hyp_cs") float *vk_hyp_cs(void) { return hyp_cs; }
EXPORT("vk_hyp_sn") float *vk_hyp_sn(void) { return hyp_sn; }
EXPORT("vk_luma") uint8_t *vk_luma(void) { return luma_in; }
EXPORT("vk_up_fine") float *vk_up_fine(void) { return up_fine; }
EXPORT("vk_dn_fine") float *vk_dn_fine(void) { return dn_fine; }
EXPORT("vk_dn_gx") float *vk_dn_gx(void) { return dn_gx; }
EXPORT("vk_dn_gy") float *vk_dn_gy(void) { return dn_gy; }
EXPORT("vk_dn_spec") float *vk_dn_spec(void) { return dn_spec; }
EXPORT("vk_out_coarse") double *vk_out_coarse(void) { return out_coarse; }
EXPORT("vk_out_fine") double *vk_out_fine(void) { return out_fine; }
EXPORT("vk_max_hyp") int vk_max_hyp(void) { return MAXHYP; }
EXPORT("vk_max_taps") int vk_max_taps(void) { return MAXTAPS; }
EXPORT("vk_half") int vk_half(void) { return HALF; }

/* Taps counts (2r+1 each), hypotheses and eps; returns 0, or -1 when out of range. */
EXPORT("vk_init") int vk_init(int n_fine, int n_local, int n_hyp, float eps_) {
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
 * outside), the cell (x0, y0) = min(floor, n−2) clamped so that invalid lanes still read inside
 * the plane, and the fractions.
 */
AI V locate(V sx, V sy, int n, V *fx, V *fy, V *idx) {
  V hi = SPL((float)(n - 1));
  V zero = wasm_f32x4_splat(0.0f);
  V valid = wasm_v128_and(wasm_v128_and(wasm_f32x4_ge(sx, zero), wasm_f32x4_ge(sy, zero)),
                          wasm_v128_and(wasm_f32x4_le(sx, hi), wasm_f32x4_le(sy, hi)));
  V lim = wasm_i32x4_splat(n - 2);
  V izero = wasm_i32x4_splat(0);
  V x0 = wasm_i32x4_min(wasm_i32x4_max(wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_floor(sx)), izero), lim);
  V y0 = wasm_i32x4_min(wasm_i32x4_max(wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_floor(sy)), izero), lim);
  *fx = SUB(sx, wasm_f32x4_convert_i32x4(x0));
  *fy = SUB(sy, wasm_f32x4_convert_i32x4(y0));
  *idx = wasm_i32x4_add(wasm_i32x4_mul(y0, wasm_i32x4_splat(n)), x0);
  return valid;
}

/* ---------------------------------------------------------------- plane preparation */

/* reference.blur: separable, borders replicate the edge pixel; src and dst may not alias. */
static void blur(const float *src, float *dst, const float *taps, int r) {
  float *tmp = s_d;
  for (int y = 0; y < N; y++) {
    const float *row = src + y * N;
    for (int x = -r; x < N + r; x++) pad[x + r] = row[x < 0 ? 0 : x >= N ? N - 1 : x];
    for (int x = 0; x < N; x += 4) {
      V s = SPL(0.0f);
      for (int k = 0; k <= 2 * r; k++) s = ADD(s, MUL(SPL(taps[k]), wasm_v128_load(pad + x + k)));
      ST(tmp + y * N + x, s);
    }
  }
  for (int y = 0; y < N; y++) {
    for (int x = 0; x < N; x += 4) {
      V s = SPL(0.0f);
      for (int k = -r; k <= r; k++) {
        int yy = y + k < 0 ? 0 : y + k >= N ? N - 1 : y + k;
        s = ADD(s, MUL(SPL(taps[k + r]), LD(tmp + yy * N + x)));
      }
      ST(dst + y * N + x, s);
    }
  }
}

/* reference.preparePlane: fine (band-passed, locally normalised) and its 32×32 2×2 means. */
static void prepare_plane(float *fine, float *coarse) {
  float *l = s_a, *f = s_b, *mean = s_c;
  for (int i = 0; i < NN; i++) l[i] = (float)luma_in[i];
  blur(l, f, taps_fine, r_fine);
  blur(l, mean, taps_local, r_local);
  /* band → l (squared) and f (band) */
  for (int i = 0; i < NN; i += 4) {
    V b = SUB(LD(f + i), LD(mean + i));
    ST(f + i, b);
    ST(l + i, MUL(b, b));
  }
  blur(l, mean, taps_local, r_local); /* energy */
  V e = SPL(eps);
  for (int i = 0; i < NN; i += 4) ST(fine + i, wasm_f32x4_div(LD(f + i), ADD(wasm_f32x4_sqrt(LD(mean + i)), e)));
  for (int y = 0; y < C; y++) {
    for (int x = 0; x < C; x++) {
      int i = 2 * y * N + 2 * x;
      coarse[y * C + x] = 0.25f * (fine[i] + fine[i + 1] + fine[i + N] + fine[i + N + 1]);
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

AI void stage(V *xr, V *xi, const int len) {
  const int half = len >> 1;
#pragma clang loop unroll(full)
  for (int i = 0; i < 32; i += len) {
#pragma clang loop unroll(full)
    for (int k = 0; k < half; k++) bfly(&xr[i + k], &xi[i + k], &xr[i + k + half], &xi[i + k + half], k * (32 / len));
  }
}

/*
 * One pass of a 32×32 2-D DFT: the 32-point DFT along the slow axis of (sr, si), four columns
 * at a time, stored transposed into (dr, dr): two passes make the 2-D DFT in the original
 * orientation. Forward (exp(−i…)); the inverse is this with re and im swapped on both sides.
 */
static void fft_pass(const float *sr, const float *si, float *dr, float *di) {
  for (int g = 0; g < 32; g += 4) {
    V xr[32], xi[32];
#pragma clang loop unroll(full)
    for (int a = 0; a < 32; a++) {
      xr[a] = LD(sr + REV32[a] * 32 + g);
      xi[a] = LD(si + REV32[a] * 32 + g);
    }
    stage(xr, xi, 2);
    stage(xr, xi, 4);
    stage(xr, xi, 8);
    stage(xr, xi, 16);
    stage(xr, xi, 32);
#pragma clang loop unroll(full)
    for (int j = 0; j < 32; j += 4) {
      V r0, r1, r2, r3;
      transpose4(xr[j], xr[j + 1], xr[j + 2], xr[j + 3], &r0, &r1, &r2, &r3);
      ST(dr + (g + 0) * 32 + j, r0);
      ST(dr + (g + 1) * 32 + j, r1);
      ST(dr + (g + 2) * 32 + j, r2);
      ST(dr + (g + 3) * 32 + j, r3);
      transpose4(xi[j], xi[j + 1], xi[j + 2], xi[j + 3], &r0, &r1, &r2, &r3);
      ST(di + (g + 0) * 32 + j, r0);
      ST(di + (g + 1) * 32 + j, r1);
      ST(di + (g + 2) * 32 + j, r2);
      ST(di + (g + 3) * 32 + j, r3);
    }
  }
}

/* Forward 2-D DFT of (z_re, z_im), in place (via t_*). */
static void fft2_forward(void) {
  fft_pass(z_re, z_im, t_re, t_im);
  fft_pass(t_re, t_im, z_re, z_im);
}

/* Unnormalised inverse 2-D DFT of (z_re, z_im), in place: conj-free, by swapping re and im. */
static void fft2_inverse(void) {
  fft_pass(z_im, z_re, t_im, t_re);
  fft_pass(t_im, t_re, z_im, z_re);
}

/* Row (32 − r) mod 32 of the conjugate mirror: element kx of the result is v[(32 − kx) mod 32]. */
AI V mirror_vec(const V *v, int j) {
  return wasm_i32x4_shuffle(v[(8 - j) & 7], v[7 - j], 0, 7, 6, 5);
}

/*
 * Splits the DFT Z of x1 + i·x2 (x1, x2 real) in (z_re, z_im) into the Hermitian halves of X1 and
 * X2: X1 = (Z[k] + conj Z[−k]) / 2, X2 = (Z[k] − conj Z[−k]) / 2i.
 */
static void split_real_pair(float *x1, float *x2) {
  for (int ky = 0; ky < HALF_ROWS; ky++) {
    const float *mr = z_re + ((32 - ky) & 31) * 32, *mi = z_im + ((32 - ky) & 31) * 32;
    V vr[8], vi[8];
    for (int j = 0; j < 8; j++) {
      vr[j] = LD(mr + 4 * j);
      vi[j] = LD(mi + 4 * j);
    }
    V h = SPL(0.5f);
    for (int j = 0; j < 8; j++) {
      V zr = LD(z_re + ky * 32 + 4 * j), zi = LD(z_im + ky * 32 + 4 * j);
      V wr = mirror_vec(vr, j), wi = mirror_vec(vi, j);
      ST(x1 + ky * 32 + 4 * j, MUL(ADD(zr, wr), h));
      ST(x1 + HALF + ky * 32 + 4 * j, MUL(SUB(zi, wi), h));
      if (x2) {
        ST(x2 + ky * 32 + 4 * j, MUL(ADD(zi, wi), h));
        ST(x2 + HALF + ky * 32 + 4 * j, MUL(SUB(wr, zr), h));
      }
    }
  }
}

/* ---------------------------------------------------------------- upstream / downstream */

/* The upstream coarse plane under hypothesis h, windowed, into dst (32×32): reference.upstreamSpectrum's input. */
static void hypothesis_plane(int h, float *dst) {
  const float centre = (C - 1) * 0.5f;
  V cs = SPL(hyp_cs[h]), sn = SPL(hyp_sn[h]), ctr = SPL(centre);
  for (int y = 0; y < C; y++) {
    V dy = SPL((float)y - centre), hy = SPL(hann[y]);
    V sny = MUL(sn, dy), csy = MUL(cs, dy);
    for (int x = 0; x < C; x += 4) {
      V dx = SUB(wasm_f32x4_make((float)x, (float)(x + 1), (float)(x + 2), (float)(x + 3)), ctr);
      V sx = ADD(SUB(MUL(cs, dx), sny), ctr);
      V sy = ADD(ADD(MUL(sn, dx), csy), ctr);
      V fx, fy, idx;
      V valid = locate(sx, sy, C, &fx, &fy, &idx);
      V v = bilerp(up_coarse, C, wasm_i32x4_extract_lane(idx, 0), wasm_i32x4_extract_lane(idx, 1),
                   wasm_i32x4_extract_lane(idx, 2), wasm_i32x4_extract_lane(idx, 3), fx, fy);
      v = MUL(MUL(v, LD(hann + x)), hy);
      ST(dst + y * C + x, wasm_v128_and(v, valid));
    }
  }
}

EXPORT("vk_set_upstream") void vk_set_upstream(void) {
  prepare_plane(up_fine, up_coarse);
  for (int h = 0; h < nhyp; h += 2) {
    hypothesis_plane(h, z_re);
    if (h + 1 < nhyp) hypothesis_plane(h + 1, z_im);
    else for (int i = 0; i < CC; i++) z_im[i] = 0.0f;
    fft2_forward();
    split_real_pair(up_spec[h], h + 1 < nhyp ? up_spec[h + 1] : 0);
  }
}

EXPORT("vk_prepare_down") void vk_prepare_down(void) {
  prepare_plane(dn_fine, dn_coarse);
  gradients(dn_fine, dn_gx, dn_gy);
  for (int y = 0; y < C; y++) {
    V hy = SPL(hann[y]);
    for (int x = 0; x < C; x += 4) {
      ST(z_re + y * C + x, MUL(MUL(LD(dn_coarse + y * C + x), LD(hann + x)), hy));
      ST(z_im + y * C + x, SPL(0.0f));
    }
  }
  fft2_forward();
  split_real_pair(dn_spec, 0);
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

/* reference.phaseCorrelate's peak and sub-pixel shift from the correlation surface p. */
static void peak_of(const float *p, double *out) {
  int best = argmax(p);
  int px = best & 31, py = best >> 5;
#define AT(x, y) ((double)p[(((y) + 32) & 31) * 32 + (((x) + 32) & 31)])
  double c = AT(px, py);
  double l = AT(px - 1, py), r = AT(px + 1, py), t = AT(px, py - 1), b = AT(px, py + 1);
#undef AT
  double den = l - 2 * c + r, sx = px, sy = py;
  if (den < 0) {
    double v = (0.5 * (l - r)) / den;
    sx += v < -0.5 ? -0.5 : v > 0.5 ? 0.5 : v;
  }
  den = t - 2 * c + b;
  if (den < 0) {
    double v = (0.5 * (t - b)) / den;
    sy += v < -0.5 ? -0.5 : v > 0.5 ? 0.5 : v;
  }
  out[0] = c / CC;
  out[1] = -(sx > C / 2 ? sx - C : sx);
  out[2] = -(sy > C / 2 ? sy - C : sy);
}

/*
 * Normalised cross-power of the downstream spectrum against hypotheses a and b (b < 0: none),
 * packed as Z = Pa + i·Pb into the full 32×32 (z_re, z_im): both are Hermitian, so the inverse
 * DFT of Z carries pa in its real part and pb in its imaginary part.
 */
static void cross_power_pair(int a, int b) {
  const float *wa = up_spec[a], *wb = b >= 0 ? up_spec[b] : 0;
  V tiny = SPL(1e-9f), zero = SPL(0.0f);
  for (int ky = 0; ky < HALF_ROWS; ky++) {
    V yr[8], yi[8];
    for (int j = 0; j < 8; j++) {
      int o = ky * 32 + 4 * j;
      V dr = LD(dn_spec + o), di = LD(dn_spec + HALF + o);
      V war = LD(wa + o), wai = LD(wa + HALF + o);
      V r = ADD(MUL(dr, war), MUL(di, wai));
      V m = SUB(MUL(di, war), MUL(dr, wai));
      V mag = ADD(wasm_f32x4_sqrt(ADD(MUL(r, r), MUL(m, m))), tiny);
      V par = wasm_f32x4_div(r, mag), pai = wasm_f32x4_div(m, mag);
      V pbr = zero, pbi = zero;
      if (wb) {
        V wbr = LD(wb + o), wbi = LD(wb + HALF + o);
        r = ADD(MUL(dr, wbr), MUL(di, wbi));
        m = SUB(MUL(di, wbr), MUL(dr, wbi));
        mag = ADD(wasm_f32x4_sqrt(ADD(MUL(r, r), MUL(m, m))), tiny);
        pbr = wasm_f32x4_div(r, mag);
        pbi = wasm_f32x4_div(m, mag);
      }
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

/* Conservative range of x in [0, 63] where 0 ≤ al·x + be ≤ 63 may hold (the lanes' masks decide). */
AI void narrow(double al, double be, double *lo, double *hi) {
  double l, h;
  if (al > 0) {
    l = (0 - be) / al;
    h = (N - 1 - be) / al;
  } else if (al < 0) {
    l = (N - 1 - be) / al;
    h = (0 - be) / al;
  } else {
    if (!(be >= -1 && be <= N)) *hi = -1e30;
    return;
  }
  if (!(l - 1 <= *lo)) *lo = l - 1;
  if (!(h + 1 >= *hi)) *hi = h + 1;
}

/* The 4-pixel groups of row y that may hold valid samples: [g0, g1). */
AI int row_groups(const double *m, int y, int *g0, int *g1) {
  double lo = 0, hi = N - 1;
  narrow(m[0], m[1] * y + m[2], &lo, &hi);
  narrow(m[3], m[4] * y + m[5], &lo, &hi);
  if (!(lo <= hi)) return 0;
  *g0 = (int)lo >> 2;
  *g1 = ((int)hi >> 2) + 1;
  if (*g1 > N / 4) *g1 = N / 4;
  return *g0 < *g1;
}

static const float XS[4] = {0, 1, 2, 3};

/* reference.maskedNcc under [a..f]: out_fine[0] = ncc, out_fine[1] = overlap. */
EXPORT("vk_ncc") double vk_ncc(double a, double b, double c, double d, double e, double f) {
  const double m[6] = {a, b, c, d, e, f};
  V va = SPL((float)a), vd = SPL((float)d), xs = LD(XS);
  double su = 0, sd = 0, suu = 0, sdd = 0, sud = 0;
  V count = wasm_i32x4_splat(0);
  for (int y = 0; y < N; y++) {
    int g0, g1;
    if (!row_groups(m, y, &g0, &g1)) continue;
    V bx = SPL((float)(b * y + c)), by = SPL((float)(e * y + f));
    V ru = SPL(0.0f), rd = ru, ruu = ru, rdd = ru, rud = ru;
    const float *urow = up_fine + y * N;
    for (int g = g0; g < g1; g++) {
      V x = ADD(SPL((float)(4 * g)), xs);
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
 * (out_fine[36..41]) of Σ J Jᵀ and Σ J r over the valid pixels, J = [ex·x, ex·y, ex, ey·x, ey·y, ey];
 * returns the count. Each row sums ex², ex·ey, ey² times 1, x, x² and ex·r, ey·r times 1, x;
 * the rows' sums are combined with y in double.
 */
EXPORT("vk_gn") int vk_gn(double a, double b, double c, double d, double e, double f) {
  const double m[6] = {a, b, c, d, e, f};
  V va = SPL((float)a), vd = SPL((float)d), xs = LD(XS);
  /* [product][moment]: products xx, xy, yy; moments 1, y, y², x, x·y, x² */
  double A[3][6] = {{0}}, B[2][3] = {{0}};
  V count = wasm_i32x4_splat(0);
  for (int y = 0; y < N; y++) {
    int g0, g1;
    if (!row_groups(m, y, &g0, &g1)) continue;
    V bx = SPL((float)(b * y + c)), by = SPL((float)(e * y + f));
    V z = SPL(0.0f);
    V p0[3] = {z, z, z}, p1[3] = {z, z, z}, p2[3] = {z, z, z}, q0[2] = {z, z}, q1[2] = {z, z};
    const float *urow = up_fine + y * N;
    for (int g = g0; g < g1; g++) {
      V x = ADD(SPL((float)(4 * g)), xs);
      V sx = ADD(MUL(va, x), bx), sy = ADD(MUL(vd, x), by);
      V fx, fy, idx;
      V valid = locate(sx, sy, N, &fx, &fy, &idx);
      if (!wasm_v128_any_true(valid)) continue;
      int i0 = wasm_i32x4_extract_lane(idx, 0), i1 = wasm_i32x4_extract_lane(idx, 1);
      int i2 = wasm_i32x4_extract_lane(idx, 2), i3 = wasm_i32x4_extract_lane(idx, 3);
      V v = bilerp(dn_fine, N, i0, i1, i2, i3, fx, fy);
      V ex = wasm_v128_and(bilerp(dn_gx, N, i0, i1, i2, i3, fx, fy), valid);
      V ey = wasm_v128_and(bilerp(dn_gy, N, i0, i1, i2, i3, fx, fy), valid);
      V r = wasm_v128_and(SUB(v, LD(urow + 4 * g)), valid);
      count = wasm_i32x4_sub(count, valid);
      V x2 = MUL(x, x);
      V pr[3] = {MUL(ex, ex), MUL(ex, ey), MUL(ey, ey)};
      for (int k = 0; k < 3; k++) {
        p0[k] = ADD(p0[k], pr[k]);
        p1[k] = ADD(p1[k], MUL(pr[k], x));
        p2[k] = ADD(p2[k], MUL(pr[k], x2));
      }
      V qr[2] = {MUL(ex, r), MUL(ey, r)};
      for (int k = 0; k < 2; k++) {
        q0[k] = ADD(q0[k], qr[k]);
        q1[k] = ADD(q1[k], MUL(qr[k], x));
      }
    }
    double yd = y, yy = yd * yd;
    for (int k = 0; k < 3; k++) {
      double s0 = hsumd(p0[k]), s1 = hsumd(p1[k]), s2 = hsumd(p2[k]);
      A[k][0] += s0;
      A[k][1] += s0 * yd;
      A[k][2] += s0 * yy;
      A[k][3] += s1;
      A[k][4] += s1 * yd;
      A[k][5] += s2;
    }
    for (int k = 0; k < 2; k++) {
      double t0 = hsumd(q0[k]), t1 = hsumd(q1[k]);
      B[k][0] += t1;      /* x */
      B[k][1] += t0 * yd; /* y */
      B[k][2] += t0;      /* 1 */
    }
  }
  /* moment of m_i·m_j, (x, y, 1) indices i, j */
  static const int MOM[3][3] = {{5, 4, 3}, {4, 2, 1}, {3, 1, 0}};
  static const int PROD[2][2] = {{0, 1}, {1, 2}};
  double *H = out_fine;
  for (int p = 0; p < 6; p++) {
    for (int q = 0; q < 6; q++) H[p * 6 + q] = A[PROD[p / 3][q / 3]][MOM[p % 3][q % 3]];
  }
  for (int p = 0; p < 6; p++) out_fine[36 + p] = B[p / 3][p % 3];
  return wasm_i32x4_extract_lane(count, 0) + wasm_i32x4_extract_lane(count, 1) + wasm_i32x4_extract_lane(count, 2) +
         wasm_i32x4_extract_lane(count, 3);
}
