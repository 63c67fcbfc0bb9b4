/* Fused CPU kernel for the periodic semi-Lagrangian / MacCormack advection of
 * physgrad.physics.fluid.advection: the forward and the first-order backward of
 * `_advect_fast` / `_fast_advection_backward`, a few passes over each sample instead of ~35
 * elementwise torch passes over the batch. A forward that a backward will follow keeps the
 * limiter's decisions (a byte per point); the backward recomputes the rest of what it needs.
 *
 * It repeats the torch fast path operation by operation so that the results are bitwise
 * those of the torch path: positions wrapped with p - n floor(p / n), turned into
 * grid_sample's align_corners grid coordinate p (2 / n) - 1 and back with (g + 1) n / 2,
 * the grid sampler's bilinear weights, its zeros padding, its summation order with the
 * products fused (fma) exactly where torch's build contracts them, and the scatter order of
 * its backward (vectors of `chunk` points, corner by corner). Everything else must round as
 * written: compile with -ffp-contract=off and without -ffast-math. Single-threaded.
 *
 * Also the staggered-grid stencils without autograd (face means, centring, divergences,
 * gradient subtraction), the torch code's elementwise operations in its order.
 *
 * Built by kernel.py with the system C compiler; this file includes itself once per dtype
 * (float -> *_f32, double -> *_f64).
 */
#ifndef ADVECTION_REAL

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define ADVECTION_REAL float
#define ADVECTION_NAME(f) f##_f32
#define FLOOR floorf
#define FMA fmaf
#ifdef __AVX512F__ /* 16 int32 offsets -> 16 floats */
#define GATHER_LANES 16
#define GATHER_INDEX __m512i
#define GATHER_LOAD_INDEX(p) _mm512_loadu_si512((const void *)(p))
#define GATHER(i, base) _mm512_i32gather_ps(i, base, 4)
#define GATHER_STORE _mm512_storeu_ps
#endif
#include __FILE__
#undef ADVECTION_REAL
#undef ADVECTION_NAME
#undef FLOOR
#undef FMA
#ifdef __AVX512F__
#undef GATHER_LANES
#undef GATHER_INDEX
#undef GATHER_LOAD_INDEX
#undef GATHER
#undef GATHER_STORE
#endif

#define ADVECTION_REAL double
#define ADVECTION_NAME(f) f##_f64
#define FLOOR floor
#define FMA fma
#ifdef __AVX512F__ /* 8 int32 offsets -> 8 doubles */
#define GATHER_LANES 8
#define GATHER_INDEX __m256i
#define GATHER_LOAD_INDEX(p) _mm256_loadu_si256((const __m256i *)(p))
#define GATHER(i, base) _mm512_i32gather_pd(i, base, 8)
#define GATHER_STORE _mm512_storeu_pd
#endif
#include __FILE__

#else /* body, once per dtype */

#define T ADVECTION_REAL
#define N_(f) ADVECTION_NAME(f)

/* Sizes and constants, in T as the torch path forms them. The working arrays hold
 * grid_sample's padded field ((ny + 1, nx + 1): the periodic field with row and column 0
 * repeated) inside a margin of zeros, two wide at the start and end of each axis, so that
 * every corner a cell can name (the corner index clamped to [-2, n + 1]) is read and
 * scattered without branches: a corner outside the padded field reads 0 and receives
 * contributions that are never read, as grid_sample's zeros padding masks it. */
typedef struct {
    int64_t nx, ny;
    int64_t width;  /* row length of the working arrays: nx + 5 */
    int64_t origin; /* offset of the padded field's (0, 0): 2 rows and 2 columns in */
    int64_t size;   /* length of a working array: (ny + 5) * width */
    T fnx, fny;         /* sizes */
    T inv_nx, inv_ny;   /* 1 / n where that is exact (n a power of two), else 0 */
    T two_nx, two_ny;   /* 2 / n (torch: sizes.reciprocal() * 2, the same bits) */
    T half_nx, half_ny; /* n / 2: grid_sample's scale on the padded field of n + 1 */
    T cx, cy;           /* dt / dx, dt / dy */
} N_(grid);

static N_(grid) N_(make_grid)(int64_t ny, int64_t nx, T cx, T cy) {
    N_(grid) g;
    g.nx = nx;
    g.ny = ny;
    g.width = nx + 5;
    g.origin = 2 * g.width + 2;
    g.size = (ny + 5) * g.width;
    g.fnx = (T)nx;
    g.fny = (T)ny;
    g.inv_nx = (nx & (nx - 1)) == 0 ? (T)1 / g.fnx : (T)0;
    g.inv_ny = (ny & (ny - 1)) == 0 ? (T)1 / g.fny : (T)0;
    g.two_nx = ((T)1 / g.fnx) * (T)2;
    g.two_ny = ((T)1 / g.fny) * (T)2;
    g.half_nx = g.fnx / (T)2;
    g.half_ny = g.fny / (T)2;
    g.cx = cx;
    g.cy = cy;
    return g;
}

/* torch.minimum / torch.maximum: NaN if either is NaN (here that NaN, in torch an all-ones
 * NaN: only the payload differs), else the vector instruction's choice. Written as selects
 * so that the loops vectorise. */
static inline T N_(vmin)(T a, T b) {
    T r = a < b ? a : b;
    r = b != b ? b : r;
    return a != a ? a : r;
}
static inline T N_(vmax)(T a, T b) {
    T r = a > b ? a : b;
    r = b != b ? b : r;
    return a != a ? a : r;
}

/* Bilinear sample positions of all points of a sample, structure of arrays (the arithmetic
 * loops vectorise): the offset of the lower-left corner in a working array, grid_sample's
 * distances to the cell's sides, and the four corner values once gathered. */
typedef struct {
    int32_t *corner;
    T *n, *s, *w, *e;
    T *c[4]; /* nw, ne, sw, se */
} N_(cells);

/* Working arrays for one sample (the forward uses one row of the cells, `keep` and `k`). */
typedef struct {
    N_(cells) back, fwd;
    int32_t *block;        /* the limiter's 2 x 2 block: offset in a working array, or -1 */
    int32_t *keep;         /* the limiter left the point alone */
    T *padded, *padded_sl; /* working arrays of the values and of the semi-Lagrangian field */
    T *sl;                 /* semi-Lagrangian samples */
    T *k[4];               /* the block's corner values */
    void *memory;
} N_(workspace);

static int N_(reserve)(N_(workspace) *s, const N_(grid) *g) {
    size_t count = (size_t)(g->ny * g->nx), size = (size_t)g->size;
    size_t reals = 2 * 8 * count + 2 * size + 5 * count, ints = 4 * count;
    char *m = malloc(sizeof(T) * reals + sizeof(int32_t) * ints);
    if (!m) return 0;
    s->memory = m;
    T *r = (T *)m;
    s->padded = r; r += size;
    s->padded_sl = r; r += size;
    for (size_t q = 0; q < 2 * size; ++q) s->padded[q] = 0; /* zero margins */
    N_(cells) *families[2] = {&s->back, &s->fwd};
    for (int f = 0; f < 2; ++f) {
        N_(cells) *c = families[f];
        c->n = r; r += count;
        c->s = r; r += count;
        c->w = r; r += count;
        c->e = r; r += count;
        for (int q = 0; q < 4; ++q) {
            c->c[q] = r;
            r += count;
        }
    }
    s->sl = r; r += count;
    for (int q = 0; q < 4; ++q) {
        s->k[q] = r;
        r += count;
    }
    int32_t *i = (int32_t *)r;
    s->back.corner = i; i += count;
    s->fwd.corner = i; i += count;
    s->block = i; i += count;
    s->keep = i;
    return 1;
}

/* Writes the padded field of a periodic (ny, nx) field into a working array (the margins
 * stay zero). */
static void N_(pad)(const N_(grid) *g, const T *f, T *out) {
    int64_t ny = g->ny, nx = g->nx;
    for (int64_t r = 0; r <= ny; ++r) {
        T *row = out + g->origin + r * g->width;
        const T *src = f + (r == ny ? 0 : r) * nx;
        for (int64_t c = 0; c < nx; ++c) row[c] = src[c];
        row[nx] = src[0];
    }
}

/* One axis of a trace: the wrapped index position p - n floor(p / n) of p = i + shift.
 * inv_n: 1 / n when that is exact (then p * inv_n is p / n, bit for bit, and cheaper), else
 * 0 (divide). */
static inline T N_(wrapped)(T i, T shift, T n, T inv_n) {
    T p = i + shift;
    T turns = FLOOR(inv_n != (T)0 ? p * inv_n : p / n) * n;
    return p - turns;
}

/* grid coordinate p (2 / n) - 1, then grid_sample's unnormalised position (g + 1) n / 2 */
static inline T N_(unnormalized)(T p, T two_over_n, T half_n) {
    T g = p * two_over_n - (T)1;
    return (g + (T)1) * half_n;
}

/* floor()ed coordinate -> corner index in [-2, limit]; NaN or outside -> -2 (then both the
 * corner and its neighbour are out of bounds, as for grid_sample) */
static inline int32_t N_(index)(T f, T limit) {
    T safe = (f >= (T)-2 && f <= limit) ? f : (T)-2;
    return (int32_t)safe;
}

/* The limiter's block of a back-traced point at the wrapped position (px, py): the corner
 * floor(p) clamped to [0, n - 1], as an offset in a working array; -1 for a NaN position. */
static inline int32_t N_(block_offset)(T px, T py, T fnx, T fny, int32_t width) {
    T bx = FLOOR(px), by = FLOOR(py);
    bx = bx < (T)0 ? (T)0 : bx;
    bx = bx > fnx - (T)1 ? fnx - (T)1 : bx;
    by = by < (T)0 ? (T)0 : by;
    by = by > fny - (T)1 ? fny - (T)1 : by;
    int valid = (bx == bx) & (by == by);
    int32_t ix = (int32_t)(valid ? bx : (T)0), iy = (int32_t)(valid ? by : (T)0);
    return valid ? (iy + 2) * width + ix + 2 : -1;
}

/* Cells of row r traced back (sign -1: p = i - dt w / dx) or forward (+1); for the
 * back-trace also the limiter's block, the corner floor(p) clamped to [0, n - 1]. (The
 * torch path reads that block with a nearest-neighbour grid_sample at the grid coordinate
 * corner (2 / (n - 1)) - 1, which gives back the same integer corner on any grid smaller
 * than ~2^20.) */
static __attribute__((noinline)) void N_(trace_row)(
    int32_t nx, T j, T sign, const N_(grid) *g, const T *restrict u, const T *restrict v,
    int32_t *restrict corner, T *restrict n, T *restrict s, T *restrict w, T *restrict e,
    int32_t *restrict block) {
    /* restrict parameters and constants in locals: the loop vectorises */
    const int32_t width = (int32_t)g->width;
    const T xlimit = (T)(g->nx + 1), ylimit = (T)(g->ny + 1);
    const T cx = g->cx, cy = g->cy, fnx = g->fnx, fny = g->fny;
    const T inv_nx = g->inv_nx, inv_ny = g->inv_ny;
    const T two_nx = g->two_nx, two_ny = g->two_ny, half_nx = g->half_nx, half_ny = g->half_ny;
    for (int32_t c = 0; c < nx; ++c) { /* int32: AVX2 converts it to T */
        /* sign -1: i - sx == i + (-sx) exactly */
        T sx = (u[c] * cx) * sign, sy = (v[c] * cy) * sign;
        T px = N_(wrapped)((T)c, sx, fnx, inv_nx), py = N_(wrapped)(j, sy, fny, inv_ny);
        T x = N_(unnormalized)(px, two_nx, half_nx);
        T y = N_(unnormalized)(py, two_ny, half_ny);
        T xw = FLOOR(x), yn = FLOOR(y);
        T dw = x - xw, dn = y - yn;
        w[c] = dw;
        e[c] = (T)1 - dw;
        n[c] = dn;
        s[c] = (T)1 - dn;
        corner[c] = (N_(index)(yn, ylimit) + 2) * width + N_(index)(xw, xlimit) + 2;
        if (block) block[c] = N_(block_offset)(px, py, fnx, fny, width);
    }
}

/* trace_row's block of the single point p of a back-trace (for the few the backward needs) */
static int32_t N_(block_at)(const N_(grid) *g, int64_t p, const T *u, const T *v) {
    T sx = (u[p] * g->cx) * (T)-1, sy = (v[p] * g->cy) * (T)-1;
    T px = N_(wrapped)((T)(int32_t)(p % g->nx), sx, g->fnx, g->inv_nx);
    T py = N_(wrapped)((T)(p / g->nx), sy, g->fny, g->inv_ny);
    return N_(block_offset)(px, py, g->fnx, g->fny, (int32_t)g->width);
}

static void N_(trace)(const N_(grid) *g, const T *wx, const T *wy, int forward,
                      N_(cells) *cells, int32_t *block) {
    T sign = forward ? (T)1 : (T)-1;
    for (int64_t r = 0; r < g->ny; ++r) {
        int64_t base = r * g->nx;
        N_(trace_row)((int32_t)g->nx, (T)r, sign, g, wx + base, wy + base,
                      cells->corner + base, cells->n + base, cells->s + base, cells->w + base,
                      cells->e + base, block ? block + base : NULL);
    }
}

/* The corner values nw, ne, sw, se of every cell from a working array. */
static __attribute__((noinline)) void N_(gather)(
    int64_t count, int64_t width, const T *restrict f, const int32_t *restrict corner,
    T *restrict c0, T *restrict c1, T *restrict c2, T *restrict c3) {
    int64_t p = 0;
#ifdef __AVX512F__ /* gather instructions: the same loads, a vector of points at a time */
    for (; p + GATHER_LANES <= count; p += GATHER_LANES) {
        GATHER_INDEX i = GATHER_LOAD_INDEX(corner + p);
        GATHER_STORE(c0 + p, GATHER(i, f));
        GATHER_STORE(c1 + p, GATHER(i, f + 1));
        GATHER_STORE(c2 + p, GATHER(i, f + width));
        GATHER_STORE(c3 + p, GATHER(i, f + width + 1));
    }
#endif
    for (; p < count; ++p) {
        const T *k = f + corner[p];
        c0[p] = k[0];
        c1[p] = k[1];
        c2[p] = k[width];
        c3[p] = k[width + 1];
    }
}

static void N_(gather_cells)(const N_(grid) *g, const T *f, N_(cells) *c) {
    N_(gather)(g->ny * g->nx, g->width, f, c->corner, c->c[0], c->c[1], c->c[2], c->c[3]);
}

/* Bilinear interpolation of the gathered corners. torch's kernel is built with FMA
 * contraction: ((nw nw + ne ne) + sw sw) + se se with each later product fused. */
static __attribute__((noinline)) void N_(interpolate_arrays)(
    int64_t count, const T *restrict n, const T *restrict s, const T *restrict w,
    const T *restrict e, const T *restrict c0, const T *restrict c1, const T *restrict c2,
    const T *restrict c3, T *restrict out) {
    for (int64_t p = 0; p < count; ++p) {
        T sum = FMA(c1[p], s[p] * w[p], c0[p] * (s[p] * e[p]));
        sum = FMA(c2[p], n[p] * e[p], sum);
        out[p] = FMA(c3[p], n[p] * w[p], sum);
    }
}

static void N_(interpolate)(const N_(grid) *g, const N_(cells) *c, T *out) {
    N_(interpolate_arrays)(g->ny * g->nx, c->n, c->s, c->w, c->e, c->c[0], c->c[1], c->c[2],
                           c->c[3], out);
}

/* MacCormack: sl + (values - inv) / 2 clamped to [min, max] of the block's corners c0..c3;
 * `out` holds inv on entry; `keep`: the limiter left the point alone. */
static __attribute__((noinline)) void N_(limit)(
    int64_t count, const T *restrict v, const T *restrict sl, const T *restrict c0,
    const T *restrict c1, const T *restrict c2, const T *restrict c3, T *restrict out,
    int32_t *restrict keep) {
    for (int64_t p = 0; p < count; ++p) {
        T diff = v[p] - out[p];
        T half = diff * (T)0.5;
        T new_ = half + sl[p];
        T lo = N_(vmin)(N_(vmin)(c0[p], c1[p]), N_(vmin)(c2[p], c3[p]));
        T hi = N_(vmax)(N_(vmax)(c0[p], c1[p]), N_(vmax)(c2[p], c3[p]));
        keep[p] = (new_ >= lo) & (new_ <= hi);
        out[p] = N_(vmin)(N_(vmax)(new_, lo), hi);
    }
}

/* One sample, a row at a time (the cells of a row are written and read back while they are
 * in the L1 cache; only the limiter's blocks are kept for the whole sample). With `kept`
 * (else NULL) the limiter's decisions of the sample's points are written there, a byte
 * each: whether it left the point alone and which corner of its block the clamped value is
 * (bits 1, 2: dx, dy; the first corner, in the order 00 01 10 11, equal to the result) --
 * what advect_backward takes from the forward instead of recomputing it. */
static void N_(forward_rows)(const N_(grid) *g, N_(workspace) *s, const T *v, const T *wx,
                             const T *wy, int mac_cormack, T *out, uint8_t *kept) {
    int64_t ny = g->ny, nx = g->nx, width = g->width;
    N_(cells) *c = &s->back;
    T *sl = mac_cormack ? s->sl : out;
    N_(pad)(g, v, s->padded);
    for (int64_t r = 0; r < ny; ++r) {
        int64_t base = r * nx;
        N_(trace_row)((int32_t)nx, (T)r, (T)-1, g, wx + base, wy + base, c->corner, c->n, c->s,
                      c->w, c->e, mac_cormack ? s->block + base : NULL);
        N_(gather)(nx, width, s->padded, c->corner, c->c[0], c->c[1], c->c[2], c->c[3]);
        N_(interpolate_arrays)(nx, c->n, c->s, c->w, c->e, c->c[0], c->c[1], c->c[2], c->c[3],
                               sl + base);
    }
    if (!mac_cormack) return;
    N_(pad)(g, s->sl, s->padded_sl);
    for (int64_t r = 0; r < ny; ++r) {
        int64_t base = r * nx;
        N_(trace_row)((int32_t)nx, (T)r, (T)1, g, wx + base, wy + base, c->corner, c->n, c->s,
                      c->w, c->e, NULL);
        N_(gather)(nx, width, s->padded_sl, c->corner, c->c[0], c->c[1], c->c[2], c->c[3]);
        N_(interpolate_arrays)(nx, c->n, c->s, c->w, c->e, c->c[0], c->c[1], c->c[2], c->c[3],
                               out + base); /* inv */
        /* the limiter's block (a NaN position reads zeros, as torch's nearest-neighbour
         * read with zeros padding: offset 0 is in the margin); the row's corners are free */
        for (int64_t p = 0; p < nx; ++p)
            c->corner[p] = s->block[base + p] < 0 ? 0 : s->block[base + p];
        N_(gather)(nx, width, s->padded, c->corner, s->k[0], s->k[1], s->k[2], s->k[3]);
        N_(limit)(nx, v + base, sl + base, s->k[0], s->k[1], s->k[2], s->k[3], out + base,
                  s->keep);
        if (kept) /* keep | dx << 1 | dy << 2: the flag and _route_to_bound's corner */
            for (int64_t p = 0; p < nx; ++p) {
                T o = out[base + p];
                int not00 = !(s->k[0][p] == o), e01 = s->k[1][p] == o;
                int dx = not00 & (e01 | (s->k[2][p] != o)), dy = not00 & !e01;
                kept[base + p] = (uint8_t)(s->keep[p] | dx << 1 | dy << 2);
            }
    }
}

/* `batch` fields; velocity plane q (at wx + q stride, wy + q stride) moves the `channels`
 * consecutive fields q channels ... q channels + channels - 1. `kept`: NULL, or
 * (MacCormack) where to write the limiter's decisions, ny * nx per field, for
 * advect_backward. */
int N_(advect_forward)(int64_t batch, int64_t ny, int64_t nx, const T *values, const T *wx,
                       const T *wy, int64_t stride, int64_t channels, T cx, T cy,
                       int mac_cormack, T *out, uint8_t *kept) {
    int64_t count = ny * nx;
    if (channels < 1) return 2;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g)) return 1;
    for (int64_t b = 0; b < batch; ++b)
        N_(forward_rows)(&g, &s, values + b * count, wx + b / channels * stride,
                         wy + b / channels * stride, mac_cormack, out + b * count,
                         kept && mac_cormack ? kept + b * count : NULL);
    free(s.memory);
    return 0;
}

/* What each corner of each cell receives: (wy wx) gOut, as grid_sample's backward forms it. */
static __attribute__((noinline)) void N_(corner_products)(
    int64_t count, const T *restrict n, const T *restrict s, const T *restrict w,
    const T *restrict e, const T *restrict gout, T *restrict c0, T *restrict c1,
    T *restrict c2, T *restrict c3) {
    for (int64_t p = 0; p < count; ++p) {
        c0[p] = (s[p] * e[p]) * gout[p];
        c1[p] = (s[p] * w[p]) * gout[p];
        c2[p] = (n[p] * e[p]) * gout[p];
        c3[p] = (n[p] * w[p]) * gout[p];
    }
}

/* grid_sampler_2d_backward (bilinear, zeros padding, align_corners) of `gout` at `cells`:
 * scatters into `acc` (a zeroed working array; what lands in its margin is what
 * grid_sample masks off) in grid_sample's order: vectors of `chunk` points, corner by
 * corner. The shares are computed first in one vectorised pass, into the cells' corner
 * values (overwritten: run position_grad before). */
static void N_(scatter)(const N_(grid) *g, N_(cells) *c, const T *gout, int64_t chunk,
                        T *acc) {
    int64_t count = g->ny * g->nx, width = g->width;
    N_(corner_products)(count, c->n, c->s, c->w, c->e, gout, c->c[0], c->c[1], c->c[2],
                        c->c[3]);
    for (int64_t start = 0; start < count; start += chunk) {
        int64_t end = count - start < chunk ? count : start + chunk;
        for (int corner = 0; corner < 4; ++corner) {
            int64_t shift = (corner >> 1) * width + (corner & 1);
            const T *share = c->c[corner];
            for (int64_t p = start; p < end; ++p) acc[c->corner[p] + shift] += share[p];
        }
    }
}

/* The position gradients of that backward, from the cells' corner values. */
static __attribute__((noinline)) void N_(position_grad_arrays)(
    int64_t count, T half_nx, T half_ny, const T *restrict n, const T *restrict s,
    const T *restrict w, const T *restrict e, const T *restrict c0, const T *restrict c1,
    const T *restrict c2, const T *restrict c3, const T *restrict gout, T *restrict gpx,
    T *restrict gpy) {
    for (int64_t p = 0; p < count; ++p) {
        /* gx = 0 + ((ne - nw) s + (se - sw) n) gOut, contracted as torch's */
        T gx = FMA(FMA(c3[p] - c2[p], n[p], (c1[p] - c0[p]) * s[p]), gout[p], (T)0);
        T gy = FMA(FMA(c3[p] - c1[p], w[p], (c2[p] - c0[p]) * e[p]), gout[p], (T)0);
        gpx[p] = gx * half_nx;
        gpy[p] = gy * half_ny;
    }
}

static void N_(position_grad)(const N_(grid) *g, const N_(cells) *c, const T *gout, T *gpx,
                              T *gpy) {
    N_(position_grad_arrays)(g->ny * g->nx, g->half_nx, g->half_ny, c->n, c->s, c->w, c->e,
                             c->c[0], c->c[1], c->c[2], c->c[3], gout, gpx, gpy);
}

/* _fold_periodic of the padded field in a working array. */
static void N_(fold)(const N_(grid) *g, const T *acc, T *out) {
    int64_t ny = g->ny, nx = g->nx, width = g->width;
    const T *padded = acc + g->origin;
    for (int64_t r = 0; r < ny; ++r)
        for (int64_t c = 0; c < nx; ++c) out[r * nx + c] = padded[r * width + c];
    for (int64_t r = 0; r < ny; ++r) out[r * nx] += padded[r * width + nx];
    for (int64_t c = 0; c < nx; ++c) out[c] += padded[ny * width + c];
    out[0] += padded[ny * width + nx];
}

static void N_(zero)(T *a, int64_t n) {
    for (int64_t q = 0; q < n; ++q) a[q] = 0;
}

/* The backward's working arrays: g_new, g_bound, g_sl, g_fwd (x, y), g_back (x, y), count
 * each, and two working arrays (acc, acc_sl). */
typedef struct {
    T *g_new, *g_bound, *g_sl, *gfx, *gfy, *gbx, *gby, *acc, *acc_sl;
} N_(adjoint);

static T *N_(adjoint_reserve)(N_(adjoint) *a, const N_(grid) *g) {
    int64_t count = g->ny * g->nx;
    T *buffer = malloc(sizeof(T) * (size_t)(7 * count + 2 * g->size));
    if (!buffer) return NULL;
    a->g_new = buffer;
    a->g_bound = a->g_new + count;
    a->g_sl = a->g_bound + count;
    a->gfx = a->g_sl + count;
    a->gfy = a->gfx + count;
    a->gbx = a->gfy + count;
    a->gby = a->gbx + count;
    a->acc = a->gby + count;
    a->acc_sl = a->acc + g->size;
    return buffer;
}

/* First-order gradients of one field's advection (values v, velocity u, w) for `gr`, given
 * (for MacCormack) the forward's `decided` limiter decisions; the traces and samples are
 * computed again. NULL outputs (gv, gwx, gwy) are skipped. gcx, gcy: 2 dt / (n dx),
 * d grid / d w per axis. `chunk`: grid_sample's vector width in elements. */
static void N_(backward_field)(const N_(grid) *g, N_(workspace) *s, N_(adjoint) *a,
                               const T *v, const T *u, const T *w, int mac_cormack,
                               const uint8_t *decided, const T *gr, T gcx, T gcy,
                               int64_t chunk, T *gv, T *gwx, T *gwy) {
    int64_t count = g->ny * g->nx, size = g->size, width = g->width;
    int need_w = gwx || gwy;
    T *g_new = a->g_new, *g_bound = a->g_bound, *g_sl = a->g_sl, *acc = a->acc;
    T *acc_sl = a->acc_sl, *gfx = a->gfx, *gfy = a->gfy, *gbx = a->gbx, *gby = a->gby;
    const T *g_sample = gr; /* what reaches the semi-Lagrangian samples */
    /* the forward's traces and corner values again (not its limiter: `decided`) */
    N_(pad)(g, v, s->padded);
    N_(trace)(g, u, w, 0, &s->back, NULL); /* blocks: only where the limiter acted */
    N_(gather_cells)(g, s->padded, &s->back);
    if (mac_cormack) {
        N_(interpolate)(g, &s->back, s->sl);
        N_(pad)(g, s->sl, s->padded_sl);
        N_(trace)(g, u, w, 1, &s->fwd, NULL);
        N_(gather_cells)(g, s->padded_sl, &s->fwd);
        for (int64_t p = 0; p < count; ++p) {
            g_new[p] = gr[p] * ((decided[p] & 1) ? (T)1 : (T)0);
            g_bound[p] = gr[p] - g_new[p];
            g_sl[p] = g_new[p] * (T)-0.5; /* the inverse trace's gradient */
        }
        if (need_w) N_(position_grad)(g, &s->fwd, g_sl, gfx, gfy);
        N_(zero)(acc_sl, size);
        N_(scatter)(g, &s->fwd, g_sl, chunk, acc_sl);
        N_(fold)(g, acc_sl, g_sl);
        for (int64_t p = 0; p < count; ++p) g_sl[p] = g_sl[p] + g_new[p];
        g_sample = g_sl;
    }
    if (need_w) N_(position_grad)(g, &s->back, g_sample, gbx, gby);
    if (gv) {
        N_(zero)(acc, size);
        N_(scatter)(g, &s->back, g_sample, chunk, acc);
        if (mac_cormack) {
            /* _route_to_bound: where the limiter is active the result is one of the
             * block's samples; its gradient goes to the first corner (order 00 01 10 11)
             * equal to it (the forward's decision) -- a nearest-neighbour scatter in
             * point order into its own zeroed array (acc_sl, free again), then added.
             * Where the limiter left the point alone its bound gradient is 0 and
             * skipped: adding a zero changes no sum here (a sum begun at +0 is never
             * -0), so only active points cost. */
            int routed = 0;
            for (int64_t p = 0; p < count; ++p) {
                T bound = g_bound[p];
                if (bound == (T)0) continue;
                int32_t block = N_(block_at)(g, p, u, w);
                if (block < 0) continue;
                if (!routed) {
                    N_(zero)(acc_sl, size);
                    routed = 1;
                }
                int dx = (decided[p] >> 1) & 1, dy = (decided[p] >> 2) & 1;
                acc_sl[block + dy * width + dx] += bound;
            }
            if (routed)
                for (int64_t q = 0; q < size; ++q) acc[q] = acc[q] + acc_sl[q];
        }
        N_(fold)(g, acc, gv);
        if (mac_cormack) /* add_(g_new, alpha=0.5): torch's vectorised add is an fma */
            for (int64_t p = 0; p < count; ++p) gv[p] = FMA(g_new[p], (T)0.5, gv[p]);
    }
    if (need_w) {
        for (int64_t p = 0; p < count; ++p) {
            T dx = mac_cormack ? gfx[p] - gbx[p] : -gbx[p];
            T dy = mac_cormack ? gfy[p] - gby[p] : -gby[p];
            if (gwx) gwx[p] = dx * gcx;
            if (gwy) gwy[p] = dy * gcy;
        }
    }
}

/* First-order gradients of advect_forward (one velocity plane per field) for `grad`; see
 * backward_field. */
int N_(advect_backward)(int64_t batch, int64_t ny, int64_t nx, const T *values, const T *wx,
                        const T *wy, T cx, T cy, int mac_cormack, const uint8_t *kept,
                        const T *grad, T gcx, T gcy, int64_t chunk, T *g_values, T *g_wx,
                        T *g_wy) {
    int64_t count = ny * nx;
    if (chunk < 1 || (mac_cormack && !kept)) return 2;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g)) return 1;
    N_(adjoint) a;
    T *buffer = N_(adjoint_reserve)(&a, &g);
    if (!buffer) {
        free(s.memory);
        return 1;
    }
    for (int64_t b = 0; b < batch; ++b) {
        int64_t o = b * count;
        N_(backward_field)(&g, &s, &a, values + o, wx + o, wy + o, mac_cormack,
                           mac_cormack ? kept + o : NULL, grad + o, gcx, gcy, chunk,
                           g_values ? g_values + o : NULL, g_wx ? g_wx + o : NULL,
                           g_wy ? g_wy + o : NULL);
    }
    free(buffer);
    free(s.memory);
    return 0;
}

/* grid.py's _face_components of staggered velocities (batch, 2, ny, nx) without autograd:
 * wx = (u, u at the y-faces), wy = (v at the x-faces, v), each (batch, 2, ny, nx). The same
 * operations as the torch code: pair sums v + v[i-1] and u + u[i+1], then 0.25 * (pair +
 * the neighbouring row's pair). */
int N_(face_components)(int64_t batch, int64_t ny, int64_t nx, const T *velocity, T *wx,
                        T *wy) {
    int64_t count = ny * nx;
    for (int64_t b = 0; b < batch; ++b) {
        const T *u = velocity + 2 * b * count, *v = u + count;
        T *u_at_x = wx + 2 * b * count, *u_at_y = u_at_x + count;
        T *v_at_x = wy + 2 * b * count, *v_at_y = v_at_x + count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, below = (j == 0 ? ny - 1 : j - 1) * nx;
            int64_t above = (j == ny - 1 ? 0 : j + 1) * nx;
            /* the periodic neighbours i - 1 of column 0 and i + 1 of column nx - 1 apart, so
             * that the loops vectorise */
            v_at_x[row] = (T)0.25 * ((v[row] + v[row + nx - 1]) + (v[above] + v[above + nx - 1]));
            for (int64_t i = 1; i < nx; ++i)
                v_at_x[row + i] = (T)0.25 * ((v[row + i] + v[row + i - 1])
                                             + (v[above + i] + v[above + i - 1]));
            for (int64_t i = 0; i < nx - 1; ++i)
                u_at_y[row + i] = (T)0.25 * ((u[row + i] + u[row + i + 1])
                                             + (u[below + i] + u[below + i + 1]));
            u_at_y[row + nx - 1] = (T)0.25 * ((u[row + nx - 1] + u[row])
                                              + (u[below + nx - 1] + u[below]));
            for (int64_t i = 0; i < nx; ++i) {
                u_at_x[row + i] = u[row + i];
                v_at_y[row + i] = v[row + i];
            }
        }
    }
    return 0;
}

/* grid.py's staggered_to_centered without autograd: 0.5 (u + u[i+1]), 0.5 (v + v[j+1]), the
 * x components of sample b to out_x + b stride, the y components to out_y + b stride. */
int N_(staggered_to_centered)(int64_t batch, int64_t ny, int64_t nx, const T *velocity,
                              T *out_x, T *out_y, int64_t stride) {
    int64_t count = ny * nx;
    for (int64_t b = 0; b < batch; ++b) {
        const T *u = velocity + 2 * b * count, *v = u + count;
        T *cx = out_x + b * stride, *cy = out_y + b * stride;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, above = (j == ny - 1 ? 0 : j + 1) * nx;
            for (int64_t i = 0; i < nx - 1; ++i) cx[row + i] = (T)0.5 * (u[row + i] + u[row + i + 1]);
            cx[row + nx - 1] = (T)0.5 * (u[row + nx - 1] + u[row]);
            for (int64_t i = 0; i < nx; ++i) cy[row + i] = (T)0.5 * (v[row + i] + v[above + i]);
        }
    }
    return 0;
}

/* grid.py's divergence (centred = 0: (u[i+1] - u[i]) / sx + (v[j+1] - v[j]) / sy, sx = dx)
 * and divergence_centered (1: (u[i+1] - u[i-1]) / sx + (v[j+1] - v[j-1]) / sy, sx = 2 dx)
 * of (batch, 2, ny, nx) fields without autograd, into (batch, ny, nx). */
int N_(divergence)(int64_t batch, int64_t ny, int64_t nx, const T *velocity, T sx, T sy,
                   int centred, T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *u = velocity + 2 * b * count, *v = u + count;
        T *d = out + b * count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, above = (j == ny - 1 ? 0 : j + 1) * nx;
            int64_t low = centred ? (j == 0 ? ny - 1 : j - 1) * nx : row; /* v's lower term */
            const T *ur = u + row;
            /* u's lower term: u[i - 1] (centred) or u[i]; upper: u[i + 1], periodic */
            d[row] = (ur[1 % nx] - ur[centred ? nx - 1 : 0]) / sx
                     + (v[above] - v[low]) / sy;
            for (int64_t i = 1; i < nx - 1; ++i)
                d[row + i] = (ur[i + 1] - ur[centred ? i - 1 : i]) / sx
                             + (v[above + i] - v[low + i]) / sy;
            d[row + nx - 1] = (ur[0] - ur[centred ? nx - 2 : nx - 1]) / sx
                              + (v[above + nx - 1] - v[low + nx - 1]) / sy;
        }
    }
    return 0;
}

/* pressure.py's velocity - gradient_to_faces(p) (centred = 0: u - (p[i] - p[i-1]) / sx,
 * v - (p[j] - p[j-1]) / sy) and velocity - gradient_centered(p) (1: u - (p[i+1] - p[i-1]) /
 * sx, v - (p[j+1] - p[j-1]) / sy) without autograd; p (batch, ny, nx). */
int N_(subtract_gradient)(int64_t batch, int64_t ny, int64_t nx, const T *velocity,
                          const T *pressure, T sx, T sy, int centred, T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *u = velocity + 2 * b * count, *v = u + count, *p = pressure + b * count;
        T *ou = out + 2 * b * count, *ov = ou + count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, below = (j == 0 ? ny - 1 : j - 1) * nx;
            int64_t high = centred ? (j == ny - 1 ? 0 : j + 1) * nx : row; /* p's upper row */
            const T *pr = p + row;
            /* upper term p[i + 1] (centred) or p[i]; lower p[i - 1], periodic */
            ou[row] = u[row] - (pr[centred ? 1 % nx : 0] - pr[nx - 1]) / sx;
            for (int64_t i = 1; i < nx - 1; ++i)
                ou[row + i] = u[row + i] - (pr[centred ? i + 1 : i] - pr[i - 1]) / sx;
            ou[row + nx - 1] = u[row + nx - 1] - (pr[centred ? 0 : nx - 1] - pr[nx - 2]) / sx;
            for (int64_t i = 0; i < nx; ++i)
                ov[row + i] = v[row + i] - (p[high + i] - p[below + i]) / sy;
        }
    }
    return 0;
}

/* Gradients of the four stencils above when autograd records them (adjoints.py): exactly
 * autograd's arithmetic through the torch code, in its order of adding the terms that meet at
 * one value (see adjoints.py; the torch versions there are the reference). gx, gy, g, out are
 * (batch, 2, ny, nx) except where said. */

/* face_components: g_u = (gx0 + pu) + pu[i-1], pu = hu + hu[j+1], hu = 0.25 gx1;
 * g_v = (gy1 + pv) + pv[i+1], pv = hv + hv[j-1], hv = 0.25 gy0. */
int N_(face_components_backward)(int64_t batch, int64_t ny, int64_t nx, const T *gx,
                                 const T *gy, T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *gx0 = gx + 2 * b * count, *gx1 = gx0 + count;
        const T *gy0 = gy + 2 * b * count, *gy1 = gy0 + count;
        T *gu = out + 2 * b * count, *gv = gu + count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, below = (j == 0 ? ny - 1 : j - 1) * nx;
            int64_t above = (j == ny - 1 ? 0 : j + 1) * nx;
            const T *h0 = gx1 + row, *h1 = gx1 + above; /* hu rows j and j + 1 (unscaled) */
            const T *k0 = gy0 + row, *k1 = gy0 + below; /* hv rows j and j - 1 (unscaled) */
#define PU(i) ((h0[i] * (T)0.25) + (h1[i] * (T)0.25))
#define PV(i) ((k0[i] * (T)0.25) + (k1[i] * (T)0.25))
            gu[row] = (gx0[row] + PU(0)) + PU(nx - 1);
            for (int64_t i = 1; i < nx; ++i) gu[row + i] = (gx0[row + i] + PU(i)) + PU(i - 1);
            for (int64_t i = 0; i < nx - 1; ++i)
                gv[row + i] = (gy1[row + i] + PV(i)) + PV(i + 1);
            gv[row + nx - 1] = (gy1[row + nx - 1] + PV(nx - 1)) + PV(0);
#undef PU
#undef PV
        }
    }
    return 0;
}

/* staggered_to_centered: g_u = hu + hu[i-1], hu = 0.5 g_x; g_v = hv + hv[j-1], hv = 0.5 g_y,
 * the gradients of sample b's components at g_x + b stride and g_y + b stride. */
int N_(staggered_to_centered_backward)(int64_t batch, int64_t ny, int64_t nx, const T *g_x,
                                       const T *g_y, int64_t stride, T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *g0 = g_x + b * stride, *g1 = g_y + b * stride;
        T *gu = out + 2 * b * count, *gv = gu + count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, below = (j == 0 ? ny - 1 : j - 1) * nx;
            const T *h = g0 + row;
            gu[row] = (h[0] * (T)0.5) + (h[nx - 1] * (T)0.5);
            for (int64_t i = 1; i < nx; ++i) gu[row + i] = (h[i] * (T)0.5) + (h[i - 1] * (T)0.5);
            for (int64_t i = 0; i < nx; ++i)
                gv[row + i] = (g1[row + i] * (T)0.5) + (g1[below + i] * (T)0.5);
        }
    }
    return 0;
}

/* divergence (staggered): g (batch, ny, nx); g_u = (-a) + a[i-1], a = g / dx;
 * g_v = (-b) + b[j-1], b = g / dy. */
int N_(divergence_backward)(int64_t batch, int64_t ny, int64_t nx, const T *g, T dx, T dy,
                            T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *gb = g + b * count;
        T *gu = out + 2 * b * count, *gv = gu + count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, below = (j == 0 ? ny - 1 : j - 1) * nx;
            const T *r = gb + row;
            gu[row] = (-(r[0] / dx)) + (r[nx - 1] / dx);
            for (int64_t i = 1; i < nx; ++i) gu[row + i] = (-(r[i] / dx)) + (r[i - 1] / dx);
            for (int64_t i = 0; i < nx; ++i)
                gv[row + i] = (-(gb[row + i] / dy)) + (gb[below + i] / dy);
        }
    }
    return 0;
}

/* velocity - gradient_to_faces(p), gradient for p (out: batch, ny, nx):
 * ((a + (-a[j+1])) + b) + (-b[i+1]), a = (-g1) / dy, b = (-g0) / dx. */
int N_(subtract_gradient_backward)(int64_t batch, int64_t ny, int64_t nx, const T *g, T dx,
                                   T dy, T *out) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    for (int64_t b = 0; b < batch; ++b) {
        const T *g0 = g + 2 * b * count, *g1 = g0 + count;
        T *gp = out + b * count;
        for (int64_t j = 0; j < ny; ++j) {
            int64_t row = j * nx, above = (j == ny - 1 ? 0 : j + 1) * nx;
            const T *x = g0 + row;
#define A(k) ((-g1[k]) / dy)
#define B(i) ((-x[i]) / dx)
            for (int64_t i = 0; i < nx - 1; ++i)
                gp[row + i] = ((A(row + i) + (-A(above + i))) + B(i)) + (-B(i + 1));
            gp[row + nx - 1] = ((A(row + nx - 1) + (-A(above + nx - 1))) + B(nx - 1)) + (-B(0));
#undef A
#undef B
        }
    }
    return 0;
}

/* simulate.py's rescale_energy (velocity * factor, factor from the mean square), gradient
 * for the velocity: ((g f) + (q v)) + (q v) with the factor f and the mean's gradient per
 * cell q = g_e / n of the sample and component (factors: 2 per sample, or 1 for "total"). */
int N_(rescale_energy_backward)(int64_t batch, int64_t ny, int64_t nx, const T *g, const T *v,
                                const T *f, const T *q, int64_t factors, T *out) {
    int64_t count = ny * nx;
    if (factors != 1 && factors != 2) return 2;
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < 2; ++c) {
            int64_t k = factors == 2 ? 2 * b + c : b, start = (2 * b + c) * count;
            T fk = f[k], qk = q[k];
            for (int64_t p = start; p < start + count; ++p)
                out[p] = ((g[p] * fk) + (qk * v[p])) + (qk * v[p]);
        }
    return 0;
}

/* Gradients of simulate.py's energy factor f = sqrt(t / e) (where e > 0 and t / e > 0, else
 * 0; adjoints.energy_factor) for its gradient g_f: autograd's formulas for where, sqrt and /
 * in their order (adjoints._energy_factor_backward), then the mean's gradient per cell
 * q = g_e / cells (cells: ny nx per component, or 2 ny nx for one factor per sample) and the
 * target's g_t; batch * factors values each. The root is the factor itself (torch's sqrt,
 * which is not always correctly rounded, so not recomputed here); where the factor is 0 the
 * root's gradient is +0 and so is the ratio's. */
int N_(energy_factor_backward)(int64_t batch, int64_t ny, int64_t nx, const T *e, const T *t,
                               const T *f, const T *g_f, int64_t factors, T *q, T *g_t) {
    if (factors != 1 && factors != 2) return 2;
    T cells = (T)((factors == 2 ? 1 : 2) * ny * nx);
    for (int64_t k = 0; k < batch * factors; ++k) {
        int live = e[k] > (T)0;
        T den = live ? e[k] : (T)1;
        int positive = t[k] / den > (T)0;
        T g_ratio = live && positive ? g_f[k] / ((T)2 * f[k]) : (T)0;
        T g_den = (-g_ratio) * ((t[k] / den) / den);
        q[k] = (live ? g_den : (T)0) / cells;
        g_t[k] = g_ratio / den;
    }
    return 0;
}

/* An advection together with the stencil that makes its velocity from a staggered carrier
 * (batch, 2, ny, nx), a sample at a time (advection.py's _CarriedAdvection): `faces` 1, the
 * self-advection of the carrier (values is the carrier; fields 2b, 2b + 1 move with the face
 * means face_components gives for sample b, planes 0 and 1), or 0, a single cell-centred field
 * per sample (values (batch, ny, nx)) moving with the carrier's centring. The velocity
 * planes are made per sample by the stencils above, so they stay in the cache and need no
 * batch-sized arrays; each field's arithmetic is advect_forward's / backward_field's. */
static int64_t N_(carried_velocity)(int64_t ny, int64_t nx, const T *carrier, int faces,
                                    T *vx, T *vy) {
    int64_t count = ny * nx;
    if (faces) {
        N_(face_components)(1, ny, nx, carrier, vx, vy); /* planes (2, ny, nx) each */
        return 2;
    }
    N_(staggered_to_centered)(1, ny, nx, carrier, vx, vy, count);
    return 1;
}

int N_(carried_forward)(int64_t batch, int64_t ny, int64_t nx, const T *values,
                        const T *carrier, int faces, T cx, T cy, int mac_cormack, T *out,
                        uint8_t *kept) {
    int64_t count = ny * nx;
    if (nx < 2) return 2;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g)) return 1;
    T *velocity = malloc(sizeof(T) * (size_t)(4 * count));
    if (!velocity) {
        free(s.memory);
        return 1;
    }
    T *vx = velocity, *vy = velocity + 2 * count;
    for (int64_t b = 0; b < batch; ++b) {
        int64_t fields = N_(carried_velocity)(ny, nx, carrier + 2 * b * count, faces, vx, vy);
        for (int64_t f = 0; f < fields; ++f) {
            int64_t o = (b * fields + f) * count;
            N_(forward_rows)(&g, &s, values + o, vx + f * count, vy + f * count, mac_cormack,
                             out + o, kept && mac_cormack ? kept + o : NULL);
        }
    }
    free(velocity);
    free(s.memory);
    return 0;
}

/* Gradients of carried_forward for `grad`: the values' (g_values, or NULL; for `faces` not
 * used: the carrier's gradient includes it) and the carrier's, which for `faces` is the
 * advection's values term plus face_components_backward of the velocity terms (in that order
 * of the sum), else staggered_to_centered_backward of them. */
int N_(carried_backward)(int64_t batch, int64_t ny, int64_t nx, const T *values,
                         const T *carrier, int faces, T cx, T cy, int mac_cormack,
                         const uint8_t *kept, const T *grad, T gcx, T gcy, int64_t chunk,
                         T *g_values, T *g_carrier) {
    int64_t count = ny * nx;
    if (chunk < 1 || nx < 2 || (mac_cormack && !kept)) return 2;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g)) return 1;
    N_(adjoint) a;
    T *buffer = N_(adjoint_reserve)(&a, &g);
    /* velocity planes, their gradients (2 planes each way), the stencil's gradient */
    T *velocity = malloc(sizeof(T) * (size_t)(10 * count));
    if (!buffer || !velocity) {
        free(buffer);
        free(velocity);
        free(s.memory);
        return 1;
    }
    T *vx = velocity, *vy = vx + 2 * count, *gx = vy + 2 * count, *gy = gx + 2 * count;
    T *g_face = gy + 2 * count;
    for (int64_t b = 0; b < batch; ++b) {
        const T *sample = carrier + 2 * b * count;
        T *g_sample = g_carrier + 2 * b * count;
        int64_t fields = N_(carried_velocity)(ny, nx, sample, faces, vx, vy);
        for (int64_t f = 0; f < fields; ++f) {
            int64_t o = (b * fields + f) * count;
            T *gv = faces ? g_sample + f * count : (g_values ? g_values + o : NULL);
            N_(backward_field)(&g, &s, &a, values + o, vx + f * count, vy + f * count,
                               mac_cormack, mac_cormack ? kept + o : NULL, grad + o, gcx, gcy,
                               chunk, gv, gx + f * count, gy + f * count);
        }
        if (faces) {
            N_(face_components_backward)(1, ny, nx, gx, gy, g_face);
            for (int64_t p = 0; p < 2 * count; ++p) g_sample[p] = g_sample[p] + g_face[p];
        } else {
            N_(staggered_to_centered_backward)(1, ny, nx, gx, gy, count, g_sample);
        }
    }
    free(velocity);
    free(buffer);
    free(s.memory);
    return 0;
}

#undef T
#undef N_
#endif
