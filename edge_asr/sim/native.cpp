// The Dense/Conv1D arithmetic of edge_asr/sim (exact.py's float path) fused in one pass:
// each output's sum of products, its bias, the scaling to the result's lsb, the rounding
// and the clip, with the bounds of the sums for the wrap check and the edge counts.
// Compiled for the host by edge_asr/sim/native.py (g++, once, cached) and called through
// ctypes; see native.py for why this is ours and not a library's.
//
// Exactness: every code and every partial sum is an integer below 2**52 in magnitude
// (native.py takes only layers whose float plan proves it from the types), so the
// products and sums are exact in double in any order, with or without FMA; scaling by a
// power of two is exact; round-half-to-even is the default rounding mode's nearest.
// The 16-bit kernel sums pairs of int16 products in int32 over blocks of rows that
// native.py cuts so that no block's sum can reach 2**31 (int32 arithmetic wraps modulo
// 2**32, so a sum that ends in range is exact whatever its partial sums did), then adds
// the blocks in double.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int kLanes = 16;  // outputs per block of filters (two AVX-512 registers of doubles)
constexpr int kRows = 6;    // output rows per block: 12 accumulators hide the FMA latency

// How the sums become result codes (see window_products), and what is counted on the way.
struct Finish {
    const double* bias;  // `padded` entries
    double factor, lo, hi, edge_lo;
    int mode;            // 0 round half to even, 1 floor(v + 0.5), 2 floor, 3 none
    double relu_lo, relu_hi;  // a ReLU fused after the cast: clip to these (else -inf, inf)
    double vmin = INFINITY, vmax = -INFINITY;
    long at_hi = 0, at_lo = 0, at_relu_hi = 0;  // integer counters: a double one is a 4-cycle chain
};

#if defined(__AVX512F__)
// One row of kLanes sums, the first `lanes` of them real, in two registers at a time
// (the scalar version took half the 16-bit kernel's time).
template <int MODE>
inline void finish_row(const double* acc, const double* bias, int lanes, Finish& f, __m512d& vmin, __m512d& vmax,
                       double* o) {
    for (int h = 0; h < 2; ++h) {
        const int n = std::min(8, lanes - 8 * h);
        if (n <= 0) break;
        const __mmask8 k = static_cast<__mmask8>((1u << n) - 1);
        __m512d v = _mm512_add_pd(_mm512_loadu_pd(acc + 8 * h), _mm512_loadu_pd(bias + 8 * h));
        vmin = _mm512_mask_min_pd(vmin, k, vmin, v);
        vmax = _mm512_mask_max_pd(vmax, k, vmax, v);
        v = _mm512_mul_pd(v, _mm512_set1_pd(f.factor));
        if (MODE == 0) v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        if (MODE == 1)
            v = _mm512_roundscale_pd(_mm512_add_pd(v, _mm512_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        if (MODE == 2) v = _mm512_roundscale_pd(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(f.lo)), _mm512_set1_pd(f.hi));
        f.at_hi += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(f.hi), _CMP_EQ_OQ));
        f.at_lo += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(f.edge_lo), _CMP_EQ_OQ));
        v = _mm512_min_pd(_mm512_max_pd(v, _mm512_set1_pd(f.relu_lo)), _mm512_set1_pd(f.relu_hi));
        f.at_relu_hi += __builtin_popcount(_mm512_mask_cmp_pd_mask(k, v, _mm512_set1_pd(f.relu_hi), _CMP_EQ_OQ));
        _mm512_mask_storeu_pd(o + 8 * h, k, v);
    }
}

void finish_block(const double (&acc)[kRows][kLanes], int rows, int lanes, const double* bias, Finish& f,
                  double* out, long n_out) {
    __m512d vmin = _mm512_set1_pd(f.vmin), vmax = _mm512_set1_pd(f.vmax);
    for (int p = 0; p < rows; ++p) {
        double* o = out + p * n_out;
        switch (f.mode) {
            case 0: finish_row<0>(acc[p], bias, lanes, f, vmin, vmax, o); break;
            case 1: finish_row<1>(acc[p], bias, lanes, f, vmin, vmax, o); break;
            case 2: finish_row<2>(acc[p], bias, lanes, f, vmin, vmax, o); break;
            default: finish_row<3>(acc[p], bias, lanes, f, vmin, vmax, o); break;
        }
    }
    f.vmin = _mm512_reduce_min_pd(vmin);
    f.vmax = _mm512_reduce_max_pd(vmax);
}
#else
void finish_block(const double (&acc)[kRows][kLanes], int rows, int lanes, const double* bias, Finish& f,
                  double* out, long n_out) {
    for (int p = 0; p < rows; ++p) {
        double* o = out + p * n_out;
        for (int l = 0; l < lanes; ++l) {
            double v = acc[p][l] + bias[l];
            f.vmin = std::min(f.vmin, v);
            f.vmax = std::max(f.vmax, v);
            v *= f.factor;
            if (f.mode == 0) v = std::nearbyint(v);
            else if (f.mode == 1) v = std::floor(v + 0.5);
            else if (f.mode == 2) v = std::floor(v);
            v = std::min(std::max(v, f.lo), f.hi);
            f.at_hi += v == f.hi;
            f.at_lo += v == f.edge_lo;
            v = std::min(std::max(v, f.relu_lo), f.relu_hi);
            f.at_relu_hi += v == f.relu_hi;
            o[l] = v;
        }
    }
}
#endif

template <int P>
void block(const double* const* rows, long span, const double* __restrict w, long padded, long f0,
           double (&acc)[kRows][kLanes]) {
    double a[P][kLanes] = {};
    for (long r = 0; r < span; ++r) {
        const double* __restrict wr = w + r * padded + f0;
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const double xv = rows[p][r];
#pragma GCC unroll 16
            for (int l = 0; l < kLanes; ++l) a[p][l] += xv * wr[l];
        }
    }
    for (int p = 0; p < P; ++p)
        for (int l = 0; l < kLanes; ++l) acc[p][l] = a[p][l];
}

#if defined(__AVX512BW__)
inline __m512i dot_pairs(__m512i acc, __m512i x, __m512i w) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(acc, x, w);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(x, w));
#endif
}

// w: (pairs, padded, 2) int16, row pairs interleaved per lane; cuts: the end (in pairs)
// of each block of rows summed in int32.
template <int P>
void block16(const int16_t* const* rows, const long* cuts, long n_cuts, const int16_t* __restrict w, long padded,
             long f0, double (&acc)[kRows][kLanes]) {
    __m512d lo[P], hi[P];
    for (int p = 0; p < P; ++p) lo[p] = hi[p] = _mm512_setzero_pd();
    long rp = 0;
    for (long c = 0; c < n_cuts; ++c) {
        __m512i s[P];
        for (int p = 0; p < P; ++p) s[p] = _mm512_setzero_si512();
        for (; rp < cuts[c]; ++rp) {
            const __m512i wv = _mm512_loadu_si512(w + (rp * padded + f0) * 2);
#pragma GCC unroll 8
            for (int p = 0; p < P; ++p) {
                int32_t pair;
                std::memcpy(&pair, rows[p] + 2 * rp, 4);
                s[p] = dot_pairs(s[p], _mm512_set1_epi32(pair), wv);
            }
        }
        for (int p = 0; p < P; ++p) {
            lo[p] = _mm512_add_pd(lo[p], _mm512_cvtepi32_pd(_mm512_castsi512_si256(s[p])));
            hi[p] = _mm512_add_pd(hi[p], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(s[p], 1)));
        }
    }
    for (int p = 0; p < P; ++p) {
        _mm512_storeu_pd(acc[p], lo[p]);
        _mm512_storeu_pd(acc[p] + 8, hi[p]);
    }
}
#endif

// The loop shared by both kernels: blocks of kRows output rows times kLanes filters.
template <typename T, typename Sums>
void run(const T* x, long n, long out_w, long in_stride, long step, long n_out, long padded, Finish& f, double* out,
         double* stats, Sums sums) {
    const long total = n * out_w;
    for (long q0 = 0; q0 < total; q0 += kRows) {
        const int np = static_cast<int>(std::min<long>(kRows, total - q0));
        const T* rows[kRows];
        for (int p = 0; p < np; ++p) {
            const long q = q0 + p;
            rows[p] = x + (q / out_w) * in_stride + (q % out_w) * step;
        }
        for (long f0 = 0; f0 < padded; f0 += kLanes) {
            double acc[kRows][kLanes];
            sums(rows, np, f0, acc);
            const int lanes = static_cast<int>(std::min<long>(kLanes, n_out - f0));
            finish_block(acc, np, lanes, f.bias + f0, f, out + q0 * n_out + f0, n_out);
        }
    }
    stats[0] = f.vmin;
    stats[1] = f.vmax;
    stats[2] = static_cast<double>(f.at_hi);
    stats[3] = static_cast<double>(f.at_lo);
    stats[4] = static_cast<double>(f.at_relu_hi);
}

}  // namespace

extern "C" {

// out[q, f] for output rows q < n * out_w (input i = q / out_w, position t = q % out_w):
//   v = sum_{r < span} x[i * in_stride + t * step + r] * w[r, f] + bias[f]
//   out[q, f] = clip(round(v * factor), lo, hi)
// x holds each input's codes in one contiguous row, so a window (k pixels of every
// channel) is `span` consecutive codes. w is (span, padded), padded a multiple of kLanes
// with zero columns past n_out; bias has `padded` entries. mode: 0 round half to even,
// 1 floor(v + 0.5), 2 floor, 3 none. stats: the smallest and largest v (before scaling,
// for the wrap check), then how many results equal hi and how many equal edge_lo (the
// values at the type's edges). A ReLU fused after the cast clips each result to
// [relu_lo, relu_hi] (-inf and inf when none), and stats[4] counts those equal to relu_hi.
// The reads are float64: a float32 input converted in the loop took twice as long as
// numpy's copy of it into float64 here.
void window_products(const double* x, long n, long out_w, long in_stride, long step, long span, const double* w,
                     long n_out, long padded, const double* bias, double factor, int mode, double lo, double hi,
                     double edge_lo, double relu_lo, double relu_hi, double* out, double* stats) {
    Finish f{bias, factor, lo, hi, edge_lo, mode, relu_lo, relu_hi};
    run(x, n, out_w, in_stride, step, n_out, padded, f, out, stats,
        [&](const double* const* rows, int np, long f0, double (&acc)[kRows][kLanes]) {
            switch (np) {
                case 6: block<6>(rows, span, w, padded, f0, acc); break;
                case 5: block<5>(rows, span, w, padded, f0, acc); break;
                case 4: block<4>(rows, span, w, padded, f0, acc); break;
                case 3: block<3>(rows, span, w, padded, f0, acc); break;
                case 2: block<2>(rows, span, w, padded, f0, acc); break;
                default: block<1>(rows, span, w, padded, f0, acc); break;
            }
        });
}

// Whether window_products_i16 is compiled in (512-bit integer dot products on this CPU).
int has_i16() {
#if defined(__AVX512BW__)
    return 1;
#else
    return 0;
#endif
}

// window_products on int16 codes and int16 weights laid out for block16, the row pairs'
// blocks ending at cuts[0..n_cuts). x must hold one readable code past the last window
// when span is odd (its weight is 0).
void window_products_i16(const int16_t* x, long n, long out_w, long in_stride, long step, const long* cuts,
                         long n_cuts, const int16_t* w, long n_out, long padded, const double* bias, double factor,
                         int mode, double lo, double hi, double edge_lo, double relu_lo, double relu_hi, double* out,
                         double* stats) {
#if defined(__AVX512BW__)
    Finish f{bias, factor, lo, hi, edge_lo, mode, relu_lo, relu_hi};
    run(x, n, out_w, in_stride, step, n_out, padded, f, out, stats,
        [&](const int16_t* const* rows, int np, long f0, double (&acc)[kRows][kLanes]) {
            switch (np) {
                case 6: block16<6>(rows, cuts, n_cuts, w, padded, f0, acc); break;
                case 5: block16<5>(rows, cuts, n_cuts, w, padded, f0, acc); break;
                case 4: block16<4>(rows, cuts, n_cuts, w, padded, f0, acc); break;
                case 3: block16<3>(rows, cuts, n_cuts, w, padded, f0, acc); break;
                case 2: block16<2>(rows, cuts, n_cuts, w, padded, f0, acc); break;
                default: block16<1>(rows, cuts, n_cuts, w, padded, f0, acc); break;
            }
        });
#else
    (void)x, (void)n, (void)out_w, (void)in_stride, (void)step, (void)cuts, (void)n_cuts, (void)w, (void)n_out;
    (void)padded, (void)bias, (void)factor, (void)mode, (void)lo, (void)hi, (void)edge_lo, (void)relu_lo, (void)relu_hi;
    (void)out, (void)stats;
#endif
}

}  // extern "C"
