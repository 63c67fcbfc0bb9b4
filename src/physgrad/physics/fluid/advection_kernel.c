/* Fused CPU kernel for the periodic semi-Lagrangian / MacCormack advection of
 * physgrad.physics.fluid.advection: the forward and the first-order backward of
 * `_advect_fast` / `_fast_advection_backward`, a few passes over each sample instead of ~35
 * elementwise torch passes over the batch.
 *
 * It repeats the torch fast path operation by operation so that the results are bitwise
 * those of the torch path: positions wrapped with p - n floor(p / n), turned into
 * grid_sample's align_corners grid coordinate p (2 / n) - 1 and back with (g + 1) n / 2,
 * the grid sampler's bilinear weights, its zeros padding, its summation order with the
 * products fused (fma) exactly where torch's build contracts them, and the scatter order of
 * its backward (vectors of `chunk` points, corner by corner). Everything else must round as
 * written: compile with -ffp-contract=off and without -ffast-math. Single-threaded.
 *
 * Built by kernel.py with the system C compiler; this file includes itself once per dtype
 * (float -> *_f32, double -> *_f64).
 */
#ifndef ADVECTION_REAL

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define ADVECTION_REAL float
#define ADVECTION_NAME(f) f##_f32
#define FLOOR floorf
#define FMA fmaf
#include __FILE__
#undef ADVECTION_REAL
#undef ADVECTION_NAME
#undef FLOOR
#undef FMA

#define ADVECTION_REAL double
#define ADVECTION_NAME(f) f##_f64
#define FLOOR floor
#define FMA fma
#include __FILE__

#else /* body, once per dtype */

#define T ADVECTION_REAL
#define N_(f) ADVECTION_NAME(f)

/* A bilinear sample position on the (ny + 1, nx + 1) periodically padded field. */
typedef struct {
    int64_t x0, y0; /* lower-left corner; -4 for NaN or far-off positions (out of bounds) */
    T n, s, w, e;   /* distances to the corner's sides, as grid_sample names them */
} N_(cell);

/* Per-axis constants, in T as the torch path forms them. */
typedef struct {
    int64_t nx, ny, width; /* width: row length of the working copies, nx + 2 */
    T fnx, fny;            /* sizes */
    T two_nx, two_ny;      /* 2 / n (torch: sizes.reciprocal() * 2, the same bits) */
    T half_nx, half_ny;    /* n / 2: grid_sample's scale on the padded field of n + 1 */
    T cx, cy;              /* dt / dx, dt / dy */
} N_(grid);

static N_(grid) N_(make_grid)(int64_t ny, int64_t nx, T cx, T cy) {
    N_(grid) g;
    g.nx = nx;
    g.ny = ny;
    g.width = nx + 2;
    g.fnx = (T)nx;
    g.fny = (T)ny;
    g.two_nx = ((T)1 / g.fnx) * (T)2;
    g.two_ny = ((T)1 / g.fny) * (T)2;
    g.half_nx = g.fnx / (T)2;
    g.half_ny = g.fny / (T)2;
    g.cx = cx;
    g.cy = cy;
    return g;
}

/* torch.minimum / torch.maximum (vectorised): NaN if either is NaN. */
static inline T N_(vmin)(T a, T b) { return (a != a || b != b) ? (T)NAN : (a < b ? a : b); }
static inline T N_(vmax)(T a, T b) { return (a != a || b != b) ? (T)NAN : (a > b ? a : b); }

/* A floor()ed coordinate as an index; NaN or far off -> -4 (never in bounds). */
static inline int64_t N_(index)(T f, int64_t size) {
    return (f >= (T)-2 && f <= (T)(size + 1)) ? (int64_t)f : -4;
}

/* _wrap_: p - n floor(p / n). */
static inline T N_(wrap)(T p, T n) {
    T turns = FLOOR(p / n) * n;
    return p - turns;
}

/* Index position -> grid coordinate -> grid_sample's unnormalised position. */
static inline T N_(unnormalized)(T p, T two_over_n, T half_n) {
    T g = p * two_over_n - (T)1;
    return (g + (T)1) * half_n;
}

static inline void N_(locate)(const N_(grid) *g, T px, T py, N_(cell) *c) {
    T x = N_(unnormalized)(px, g->two_nx, g->half_nx);
    T y = N_(unnormalized)(py, g->two_ny, g->half_ny);
    T xw = FLOOR(x), yn = FLOOR(y);
    c->w = x - xw;
    c->e = (T)1 - c->w;
    c->n = y - yn;
    c->s = (T)1 - c->n;
    c->x0 = N_(index)(xw, g->nx + 1);
    c->y0 = N_(index)(yn, g->ny + 1);
}

/* Working copy of a periodic (ny, nx) field: (ny + 2, nx + 2), the periodic row and column
 * appended (grid_sample's padded input) and then a row and column of zeros, so that the
 * four corners of any in-bounds cell are read without branches (a corner one past the
 * padded field is 0, as grid_sample's zeros padding). */
static void N_(pad)(const N_(grid) *g, const T *f, T *out) {
    int64_t ny = g->ny, nx = g->nx, width = g->width;
    for (int64_t r = 0; r <= ny + 1; ++r) {
        T *row = out + r * width;
        if (r > ny) {
            for (int64_t c = 0; c < width; ++c) row[c] = 0;
            continue;
        }
        const T *src = f + (r == ny ? 0 : r) * nx;
        for (int64_t c = 0; c < nx; ++c) row[c] = src[c];
        row[nx] = src[0];
        row[nx + 1] = 0;
    }
}

static inline int N_(inside)(int64_t y, int64_t x, const N_(grid) *g) {
    return x >= 0 && x <= g->nx && y >= 0 && y <= g->ny;
}

/* The four corner values nw, ne, sw, se from a working copy (zeros outside). */
static inline void N_(corners)(const N_(grid) *g, const T *f, const N_(cell) *c, T v[4]) {
    if (N_(inside)(c->y0, c->x0, g)) {
        const T *base = f + c->y0 * g->width + c->x0;
        v[0] = base[0];
        v[1] = base[1];
        v[2] = base[g->width];
        v[3] = base[g->width + 1];
        return;
    }
    for (int k = 0; k < 4; ++k) {
        int64_t y = c->y0 + (k >> 1), x = c->x0 + (k & 1);
        v[k] = N_(inside)(y, x, g) ? f[y * g->width + x] : (T)0;
    }
}

static inline T N_(interpolate)(const T v[4], const N_(cell) *c) {
    /* torch's kernel is built with FMA contraction: ((nw nw + ne ne) + sw sw) + se se with
     * each later product fused */
    T sum = FMA(v[1], c->s * c->w, v[0] * (c->s * c->e));
    sum = FMA(v[2], c->n * c->e, sum);
    return FMA(v[3], c->n * c->w, sum);
}

/* The cells of all points traced back (forward = 0) or forward along (wx, wy); for the
 * back-trace also the MacCormack limiter's block: the lower-left corner floor(position)
 * clamped to [0, n - 1], as an offset into a working copy (-1 for NaN positions). The torch
 * path reads that block with a nearest-neighbour grid_sample at (corner (2 / (n - 1)) - 1),
 * which returns the same integer corner for any grid smaller than ~2^20. */
static void N_(trace)(const N_(grid) *g, const T *wx, const T *wy, int forward, N_(cell) *cells,
                      int64_t *blocks) {
    int64_t nx = g->nx, ny = g->ny;
    for (int64_t r = 0; r < ny; ++r) {
        T j = (T)r;
        for (int64_t c = 0; c < nx; ++c) {
            int64_t p = r * nx + c;
            T i = (T)c;
            T sx = wx[p] * g->cx, sy = wy[p] * g->cy;
            T px = N_(wrap)(forward ? i + sx : i - sx, g->fnx);
            T py = N_(wrap)(forward ? j + sy : j - sy, g->fny);
            N_(locate)(g, px, py, &cells[p]);
            if (blocks) {
                T bx = FLOOR(px), by = FLOOR(py);
                if (bx != bx || by != by) {
                    blocks[p] = -1;
                    continue;
                }
                if (bx < (T)0) bx = (T)0;
                if (bx > g->fnx - (T)1) bx = g->fnx - (T)1;
                if (by < (T)0) by = (T)0;
                if (by > g->fny - (T)1) by = g->fny - (T)1;
                blocks[p] = (int64_t)by * g->width + (int64_t)bx;
            }
        }
    }
}

/* Semi-Lagrangian samples of a working copy at the cells. */
static void N_(sample)(const N_(grid) *g, const T *f, const N_(cell) *cells, T *out) {
    int64_t count = g->ny * g->nx;
    for (int64_t p = 0; p < count; ++p) {
        T v[4];
        N_(corners)(g, f, &cells[p], v);
        out[p] = N_(interpolate)(v, &cells[p]);
    }
}

/* MacCormack at point p: sl + (values - inv) / 2 clamped to the block's [min, max]; `keep`:
 * the limiter left it alone. `padded`: the values' working copy. */
static inline T N_(limit)(const N_(grid) *g, const T *padded, T value, T sl, T inv,
                          int64_t block, int *keep) {
    T diff = value - inv;
    T half = diff * (T)0.5;
    T new_ = half + sl;
    T lo = 0, hi = 0; /* NaN position: grid_sample's zeros padding */
    if (block >= 0) {
        const T *k = padded + block;
        T a = k[0], b = k[1], c = k[g->width], d = k[g->width + 1];
        lo = N_(vmin)(N_(vmin)(a, b), N_(vmin)(c, d));
        hi = N_(vmax)(N_(vmax)(a, b), N_(vmax)(c, d));
    }
    *keep = new_ >= lo && new_ <= hi;
    return N_(vmin)(N_(vmax)(new_, lo), hi);
}

typedef struct {
    N_(cell) *back, *fwd;
    int64_t *blocks;
    T *padded, *padded_sl, *sl;
} N_(workspace);

static void N_(release)(N_(workspace) *s) {
    free(s->back);
    free(s->fwd);
    free(s->blocks);
    free(s->padded);
    free(s->padded_sl);
    free(s->sl);
}

static int N_(reserve)(N_(workspace) *s, const N_(grid) *g, int mac_cormack) {
    size_t count = (size_t)(g->ny * g->nx), padded = (size_t)((g->ny + 2) * g->width);
    s->back = malloc(sizeof(N_(cell)) * count);
    s->fwd = mac_cormack ? malloc(sizeof(N_(cell)) * count) : NULL;
    s->blocks = mac_cormack ? malloc(sizeof(int64_t) * count) : NULL;
    s->padded = malloc(sizeof(T) * padded);
    s->padded_sl = mac_cormack ? malloc(sizeof(T) * padded) : NULL;
    s->sl = malloc(sizeof(T) * count);
    int ok = s->back && s->padded && s->sl
             && (!mac_cormack || (s->fwd && s->blocks && s->padded_sl));
    if (!ok) N_(release)(s);
    return ok;
}

/* Forward of one sample: sl always, MacCormack into `out` (or sl into `out`). Leaves the
 * cells, blocks and working copies in `s` for the backward. */
static void N_(forward_sample)(const N_(grid) *g, N_(workspace) *s, const T *v, const T *wx,
                               const T *wy, int mac_cormack, T *out, int *keep) {
    int64_t count = g->ny * g->nx;
    N_(pad)(g, v, s->padded);
    N_(trace)(g, wx, wy, 0, s->back, s->blocks);
    N_(sample)(g, s->padded, s->back, mac_cormack ? s->sl : out);
    if (!mac_cormack) return;
    N_(pad)(g, s->sl, s->padded_sl);
    N_(trace)(g, wx, wy, 1, s->fwd, NULL);
    for (int64_t p = 0; p < count; ++p) {
        T vals[4];
        int kept;
        N_(corners)(g, s->padded_sl, &s->fwd[p], vals);
        T inv = N_(interpolate)(vals, &s->fwd[p]);
        out[p] = N_(limit)(g, s->padded, v[p], s->sl[p], inv, s->blocks[p], &kept);
        if (keep) keep[p] = kept;
    }
}

int N_(advect_forward)(int64_t batch, int64_t ny, int64_t nx, const T *values, const T *wx,
                       const T *wy, T cx, T cy, int mac_cormack, T *out) {
    int64_t count = ny * nx;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g, mac_cormack)) return 1;
    for (int64_t b = 0; b < batch; ++b)
        N_(forward_sample)(&g, &s, values + b * count, wx + b * count, wy + b * count,
                           mac_cormack, out + b * count, NULL);
    N_(release)(&s);
    return 0;
}

/* grid_sampler_2d_backward (bilinear, zeros padding, align_corners) of `gout` for the
 * working copy `f` sampled at `cells`: scatters into `acc` (a zeroed working-copy-shaped
 * array, NULL: skip; what falls on its zero row/column is grid_sample's masked-off corners)
 * in grid_sample's order -- vectors of `chunk` points, corner by corner -- and writes the
 * position gradients (NULL: skip). */
static void N_(sample_backward)(const N_(grid) *g, const T *f, const N_(cell) *cells,
                                const T *gout, int64_t chunk, T *acc, T *gpx, T *gpy) {
    int64_t count = g->ny * g->nx, width = g->width;
    for (int64_t start = 0; start < count; start += chunk) {
        int64_t len = count - start < chunk ? count - start : chunk;
        const N_(cell) *cs = cells + start;
        const T *go = gout + start;
        if (acc) {
            for (int corner = 0; corner < 4; ++corner) {
                int dx = corner & 1, dy = corner >> 1;
                for (int64_t l = 0; l < len; ++l) {
                    const N_(cell) *c = &cs[l];
                    int64_t x = c->x0 + dx, y = c->y0 + dy;
                    if (!N_(inside)(y, x, g)) continue;
                    T weight = (dy ? c->n : c->s) * (dx ? c->w : c->e);
                    acc[y * width + x] += weight * go[l];
                }
            }
        }
        if (gpx) {
            for (int64_t l = 0; l < len; ++l) {
                const N_(cell) *c = &cs[l];
                T v[4];
                N_(corners)(g, f, c, v);
                /* gx = 0 + ((ne - nw) s + (se - sw) n) gOut, contracted as torch's */
                T gx = FMA(FMA(v[3] - v[2], c->n, (v[1] - v[0]) * c->s), go[l], (T)0);
                T gy = FMA(FMA(v[3] - v[1], c->w, (v[2] - v[0]) * c->e), go[l], (T)0);
                gpx[start + l] = gx * g->half_nx;
                gpy[start + l] = gy * g->half_ny;
            }
        }
    }
}

/* _fold_periodic of the (ny + 1, nx + 1) part of a working-copy-shaped array. */
static void N_(fold)(const N_(grid) *g, const T *padded, T *out) {
    int64_t ny = g->ny, nx = g->nx, width = g->width;
    for (int64_t r = 0; r < ny; ++r)
        for (int64_t c = 0; c < nx; ++c) out[r * nx + c] = padded[r * width + c];
    for (int64_t r = 0; r < ny; ++r) out[r * nx] += padded[r * width + nx];
    for (int64_t c = 0; c < nx; ++c) out[c] += padded[ny * width + c];
    out[0] += padded[ny * width + nx];
}

static void N_(zero)(T *a, int64_t n) {
    for (int64_t q = 0; q < n; ++q) a[q] = 0;
}

/* First-order gradients of advect_forward for `grad`; NULL outputs are skipped. gcx, gcy:
 * 2 dt / (n dx), d grid / d w per axis. `chunk`: grid_sample's vector width in elements. */
int N_(advect_backward)(int64_t batch, int64_t ny, int64_t nx, const T *values, const T *wx,
                        const T *wy, T cx, T cy, int mac_cormack, const T *grad, T gcx, T gcy,
                        int64_t chunk, T *g_values, T *g_wx, T *g_wy) {
    int64_t count = ny * nx, padded = (ny + 2) * (nx + 2);
    if (chunk < 1) return 2;
    if (batch <= 0 || count <= 0) return 0;
    N_(grid) g = N_(make_grid)(ny, nx, cx, cy);
    N_(workspace) s;
    if (!N_(reserve)(&s, &g, mac_cormack)) return 1;
    int need_w = g_wx || g_wy;
    /* out, g_new, g_bound, g_sl, g_fwd (x, y), g_back (x, y): count each; two padded */
    T *buffer = malloc(sizeof(T) * (size_t)(8 * count + 2 * padded));
    int *keep = malloc(sizeof(int) * (size_t)count);
    if (!buffer || !keep) {
        free(buffer);
        free(keep);
        N_(release)(&s);
        return 1;
    }
    T *out = buffer, *g_new = out + count, *g_bound = g_new + count, *g_sl = g_bound + count;
    T *gfx = g_sl + count, *gfy = gfx + count, *gbx = gfy + count, *gby = gbx + count;
    T *acc = gby + count, *acc_sl = acc + padded;
    for (int64_t b = 0; b < batch; ++b) {
        const T *v = values + b * count, *u = wx + b * count, *w = wy + b * count;
        const T *gr = grad + b * count;
        const T *g_sample = gr; /* what reaches the semi-Lagrangian samples */
        N_(forward_sample)(&g, &s, v, u, w, mac_cormack, out, keep);
        if (mac_cormack) {
            for (int64_t p = 0; p < count; ++p) {
                g_new[p] = gr[p] * (keep[p] ? (T)1 : (T)0);
                g_bound[p] = gr[p] - g_new[p];
                g_sl[p] = g_new[p] * (T)-0.5; /* the inverse trace's gradient */
            }
            N_(zero)(acc_sl, padded);
            N_(sample_backward)(&g, s.padded_sl, s.fwd, g_sl, chunk, acc_sl,
                                need_w ? gfx : NULL, gfy);
            N_(fold)(&g, acc_sl, g_sl);
            for (int64_t p = 0; p < count; ++p) g_sl[p] = g_sl[p] + g_new[p];
            g_sample = g_sl;
        }
        if (g_values) N_(zero)(acc, padded);
        N_(sample_backward)(&g, s.padded, s.back, g_sample, chunk, g_values ? acc : NULL,
                            need_w ? gbx : NULL, gby);
        if (g_values) {
            T *gv = g_values + b * count;
            if (mac_cormack) {
                /* _route_to_bound: where the limiter is active the result is one of the
                 * block's samples; its gradient goes to the first corner (order 00 01 10 11)
                 * equal to it -- a nearest-neighbour scatter in point order, into its own
                 * zeroed array (acc_sl, free now), then added. */
                N_(zero)(acc_sl, padded);
                for (int64_t p = 0; p < count; ++p) {
                    int64_t block = s.blocks[p];
                    if (block < 0) continue;
                    const T *k = s.padded + block;
                    int not00 = !(k[0] == out[p]), e01 = k[1] == out[p];
                    int dx = not00 && (e01 || k[g.width] != out[p]), dy = not00 && !e01;
                    acc_sl[block + dy * g.width + dx] += g_bound[p];
                }
                for (int64_t q = 0; q < padded; ++q) acc[q] = acc[q] + acc_sl[q];
            }
            N_(fold)(&g, acc, gv);
            if (mac_cormack)
                for (int64_t p = 0; p < count; ++p) gv[p] = FMA(g_new[p], (T)0.5, gv[p]); /* add_(alpha=0.5) */
        }
        if (need_w) {
            for (int64_t p = 0; p < count; ++p) {
                T dx = mac_cormack ? gfx[p] - gbx[p] : -gbx[p];
                T dy = mac_cormack ? gfy[p] - gby[p] : -gby[p];
                if (g_wx) g_wx[b * count + p] = dx * gcx;
                if (g_wy) g_wy[b * count + p] = dy * gcy;
            }
        }
    }
    free(buffer);
    free(keep);
    N_(release)(&s);
    return 0;
}

#undef T
#undef N_
#endif
