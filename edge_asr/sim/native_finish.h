// The finish shared by edge_asr/sim's compiled kernels (native.cpp, native_int8.cpp): how
// exact sums become result codes. A layer's cast (exact.py's finish_float: the bias, the
// bounds for the wrap check, the scaling to the result's lsb, the rounding, the clip and
// the counts at the type's edges); optionally an elementwise layer's cast after it
// (nnet::normalize: a scale per output, then its own cast); optionally a ReLU's clip. All
// in registers, eight outputs at a time on AVX-512, one at a time elsewhere. Exact for the
// same reasons as the kernels (see native.cpp): integers below 2**52, powers of two.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

// the per-register steps must be inlined into the kernels' loops: called, gcc passes their
// registers through memory (a call per 8 outputs took a third of a small layer's time)
#define EDGE_ASR_INLINE inline __attribute__((always_inline))

constexpr int kLanes = 16;  // outputs per block of filters (two AVX-512 registers of doubles)
constexpr int kRows = 6;    // output rows per block: 12 accumulators hide the FMA latency

// One cast of exact values to a result type (exact.py's finish_float): the bias, the
// values' bounds (for the wrap check), the scaling to the result's lsb, the rounding, the
// clip, and the counts at the type's edges.
struct Cast {
    const double* bias;  // per output lane, padded to a multiple of kLanes
    double factor, lo, hi, edge_lo;
    int mode;            // 0 round half to even, 1 floor(v + 0.5), 2 floor, 3 none
    double vmin = INFINITY, vmax = -INFINITY;
    long at_hi = 0, at_lo = 0;  // integer counters: a double one is a 4-cycle chain
};

// How the sums become result codes: the layer's cast; when `two`, an elementwise layer's
// after it (times a scale per lane, then its cast); then a ReLU, a clip to [relu_lo,
// relu_hi] (-inf and inf when there is none).
struct Finish {
    Cast first, second;
    bool two;
    const double* scale;  // the second cast's scale per lane, or null for 1
    double relu_lo, relu_hi;
    long at_relu_hi = 0;
};

// params (13 doubles): factor, mode, lo, hi, edge_lo of the first cast; 1 when a second
// cast runs, else 0; factor, mode, lo, hi, edge_lo of the second; relu_lo, relu_hi.
Finish make_finish(const double* p, const double* bias, const double* scale2, const double* bias2) {
    Finish f;
    f.first = Cast{bias, p[0], p[2], p[3], p[4], static_cast<int>(p[1])};
    f.two = p[5] != 0;
    f.second = Cast{bias2, p[6], p[8], p[9], p[10], static_cast<int>(p[7])};
    f.scale = scale2;
    f.relu_lo = p[11];
    f.relu_hi = p[12];
    return f;
}

// stats (9 doubles): the first cast's smallest and largest value (before scaling), how
// many results equal its hi and how many its edge_lo; how many equal relu_hi after the
// ReLU; the same four of the second cast.
void write_stats(const Finish& f, double* stats) {
    stats[0] = f.first.vmin;
    stats[1] = f.first.vmax;
    stats[2] = static_cast<double>(f.first.at_hi);
    stats[3] = static_cast<double>(f.first.at_lo);
    stats[4] = static_cast<double>(f.at_relu_hi);
    stats[5] = f.second.vmin;
    stats[6] = f.second.vmax;
    stats[7] = static_cast<double>(f.second.at_hi);
    stats[8] = static_cast<double>(f.second.at_lo);
}

#if defined(__AVX512F__)
// The bounds of both casts, in registers while a block runs. (The counts stay scalar:
// counted lane by lane in registers, their nine reductions per block of rows took longer.)
struct Bounds {
    __m512d min1, max1, min2, max2;
    explicit Bounds(const Finish& f)
        : min1(_mm512_set1_pd(f.first.vmin)), max1(_mm512_set1_pd(f.first.vmax)),
          min2(_mm512_set1_pd(f.second.vmin)), max2(_mm512_set1_pd(f.second.vmax)) {}
    void store(Finish& f) const {
        f.first.vmin = _mm512_reduce_min_pd(min1);
        f.first.vmax = _mm512_reduce_max_pd(max1);
        f.second.vmin = _mm512_reduce_min_pd(min2);
        f.second.vmax = _mm512_reduce_max_pd(max2);
    }
};

// Eight values of lanes lane.. (those of mask k real) through one cast.
template <int MODE>
EDGE_ASR_INLINE __m512d cast8(__m512d v, __mmask8 k, long lane, Cast& c, __m512d& vmin, __m512d& vmax) {
    v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(k, c.bias + lane));
    vmin = _mm512_mask_min_pd(vmin, k, vmin, v);
    vmax = _mm512_mask_max_pd(vmax, k, vmax, v);
    v = _mm512_mul_pd(v, _mm512_set1_pd(c.factor));
    if (MODE == 0) v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (MODE == 1)
        v = _mm512_roundscale_pd(_mm512_add_pd(v, _mm512_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    if (MODE == 2) v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(c.lo)), _mm512_set1_pd(c.hi));
    c.at_hi += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(c.hi), _CMP_EQ_OQ));
    c.at_lo += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(c.edge_lo), _CMP_EQ_OQ));
    return v;
}

// Eight sums finished (the first cast's rounding fixed at compile time, the second's
// chosen here) and stored to o.
template <int MODE>
EDGE_ASR_INLINE void finish8(__m512d v, __mmask8 k, long lane, Finish& f, Bounds& b, double* o) {
    v = cast8<MODE>(v, k, lane, f.first, b.min1, b.max1);
    if (f.two) {
        if (f.scale != nullptr) v = _mm512_mul_pd(v, _mm512_maskz_loadu_pd(k, f.scale + lane));
        switch (f.second.mode) {
            case 0: v = cast8<0>(v, k, lane, f.second, b.min2, b.max2); break;
            case 1: v = cast8<1>(v, k, lane, f.second, b.min2, b.max2); break;
            case 2: v = cast8<2>(v, k, lane, f.second, b.min2, b.max2); break;
            default: v = cast8<3>(v, k, lane, f.second, b.min2, b.max2); break;
        }
    }
    v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(f.relu_lo)), _mm512_set1_pd(f.relu_hi));
    f.at_relu_hi += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(f.relu_hi), _CMP_EQ_OQ));
    _mm512_mask_storeu_pd(o, k, v);
}

// One row of kLanes sums from lane0, the first `lanes` of them real, in two registers at a
// time (the scalar version took half the 16-bit kernel's time).
template <int MODE>
EDGE_ASR_INLINE void finish_row(const double* acc, long lane0, int lanes, Finish& f, Bounds& b, double* o) {
    for (int h = 0; h < 2; ++h) {
        const int n = std::min(8, lanes - 8 * h);
        if (n <= 0) break;
        const __mmask8 k = static_cast<__mmask8>((1u << n) - 1);
        finish8<MODE>(_mm512_loadu_pd(acc + 8 * h), k, lane0 + 8 * h, f, b, o + 8 * h);
    }
}

template <int MODE>
void finish_rows(const double (&acc)[kRows][kLanes], int rows, int lanes, long lane0, Finish& f, double* out,
                 long n_out) {
    // a local copy: the stores to out could alias f's fields, so gcc would keep the
    // counters and constants in memory (a load and a store per count, 8 outputs at a time)
    Finish local = f;
    Bounds b(local);
    for (int p = 0; p < rows; ++p) finish_row<MODE>(acc[p], lane0, lanes, local, b, out + p * n_out);
    b.store(local);
    f = local;
}

void finish_block(const double (&acc)[kRows][kLanes], int rows, int lanes, long lane0, Finish& f, double* out,
                  long n_out) {
    switch (f.first.mode) {
        case 0: finish_rows<0>(acc, rows, lanes, lane0, f, out, n_out); break;
        case 1: finish_rows<1>(acc, rows, lanes, lane0, f, out, n_out); break;
        case 2: finish_rows<2>(acc, rows, lanes, lane0, f, out, n_out); break;
        default: finish_rows<3>(acc, rows, lanes, lane0, f, out, n_out); break;
    }
}

EDGE_ASR_INLINE __m512d load8(const double* x, __mmask8 k) { return _mm512_maskz_loadu_pd(k, x); }
EDGE_ASR_INLINE __m512d load8(const int32_t* x, __mmask8 k) { return _mm512_cvtepi32_pd(_mm256_maskz_loadu_epi32(k, x)); }

// affine (below) eight values at a time, straight from x: sums built first in a block in
// memory, as the products have them, took longer than numpy's passes on 2,000 x 14 values
template <int MODE, typename T>
void affine_rows(const T* x, long n, long cols, const double* scale, Finish& f, double* out) {
    Finish local = f;  // as in finish_rows
    Bounds b(local);
    for (long i = 0; i < n; ++i) {
        const T* row = x + i * cols;
        double* o = out + i * cols;
        for (long c = 0; c < cols; c += 8) {
            const __mmask8 k = static_cast<__mmask8>((1u << std::min<long>(8, cols - c)) - 1);
            __m512d v = load8(row + c, k);
            if (scale != nullptr) v = _mm512_mul_pd(v, _mm512_maskz_loadu_pd(k, scale + c));
            finish8<MODE>(v, k, c, local, b, o + c);
        }
    }
    b.store(local);
    f = local;
}
#else
EDGE_ASR_INLINE double cast1(double v, long lane, Cast& c) {
    v += c.bias[lane];
    c.vmin = std::min(c.vmin, v);
    c.vmax = std::max(c.vmax, v);
    v *= c.factor;
    if (c.mode == 0) v = std::nearbyint(v);
    else if (c.mode == 1) v = std::floor(v + 0.5);
    else if (c.mode == 2) v = std::floor(v);
    v = std::min(std::max(v, c.lo), c.hi);
    c.at_hi += v == c.hi;
    c.at_lo += v == c.edge_lo;
    return v;
}

EDGE_ASR_INLINE double finish1(double v, long lane, Finish& f) {
    v = cast1(v, lane, f.first);
    if (f.two) v = cast1(f.scale != nullptr ? v * f.scale[lane] : v, lane, f.second);
    v = std::min(std::max(v, f.relu_lo), f.relu_hi);
    f.at_relu_hi += v == f.relu_hi;
    return v;
}

void finish_block(const double (&acc)[kRows][kLanes], int rows, int lanes, long lane0, Finish& f, double* out,
                  long n_out) {
    for (int p = 0; p < rows; ++p)
        for (int l = 0; l < lanes; ++l) out[p * n_out + l] = finish1(acc[p][l], lane0 + l, f);
}
#endif

// The float64 sums of `rows` rows (np <= kRows) of `span` codes with the weights' columns
// f0.. (w: (span, padded)), used by window_products and by the Dense layers that the 8-bit
// pass runs after its first (native_int8.cpp).
template <int P>
void block(const double* const* rows, long span, const double* __restrict w, long padded, long f0,
           double (&acc)[kRows][kLanes]) {
#if defined(__AVX512F__)
    // in intrinsics: gcc 12 at -O2 left the unrolled lane loop scalar where it was inlined
    // into the 8-bit pass (a fifth of that pass's time went to scalar FMAs)
    __m512d lo[P], hi[P];
    for (int p = 0; p < P; ++p) lo[p] = hi[p] = _mm512_setzero_pd();
    for (long r = 0; r < span; ++r) {
        const double* wr = w + r * padded + f0;
        const __m512d w0 = _mm512_loadu_pd(wr), w1 = _mm512_loadu_pd(wr + 8);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const __m512d xv = _mm512_set1_pd(rows[p][r]);
            lo[p] = _mm512_fmadd_pd(xv, w0, lo[p]);
            hi[p] = _mm512_fmadd_pd(xv, w1, hi[p]);
        }
    }
    for (int p = 0; p < P; ++p) {
        _mm512_storeu_pd(acc[p], lo[p]);
        _mm512_storeu_pd(acc[p] + 8, hi[p]);
    }
#else
    double a[P][kLanes] = {};
    for (long r = 0; r < span; ++r) {
        const double* __restrict wr = w + r * padded + f0;
        for (int p = 0; p < P; ++p) {
            const double xv = rows[p][r];
            for (int l = 0; l < kLanes; ++l) a[p][l] += xv * wr[l];
        }
    }
    for (int p = 0; p < P; ++p)
        for (int l = 0; l < kLanes; ++l) acc[p][l] = a[p][l];
#endif
}

void sums_f64(const double* const* rows, int np, long span, const double* w, long padded, long f0,
              double (&acc)[kRows][kLanes]) {
    switch (np) {
        case 6: block<6>(rows, span, w, padded, f0, acc); break;
        case 5: block<5>(rows, span, w, padded, f0, acc); break;
        case 4: block<4>(rows, span, w, padded, f0, acc); break;
        case 3: block<3>(rows, span, w, padded, f0, acc); break;
        case 2: block<2>(rows, span, w, padded, f0, acc); break;
        default: block<1>(rows, span, w, padded, f0, acc); break;
    }
}

}  // namespace
