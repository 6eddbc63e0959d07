// The Dense/Conv1D arithmetic of edge_asr/sim (exact.py's float path) fused in one pass:
// each output's sum of products, its bias, the scaling to the result's lsb, the rounding
// and the clip, with the bounds of the sums for the wrap check and the edge counts; and,
// in the same pass, an elementwise layer after it (nnet::normalize: a scale and a bias per
// output, then its own cast) and a ReLU. The same finish runs on values made elsewhere
// (`affine_*`: an elementwise layer alone, or a product made by native_int8.cpp).
// Compiled for the host by edge_asr/sim/native.py (g++, once, cached) and called through
// ctypes; see native.py for why this is ours and not a library's.
//
// Exactness: every code and every partial sum is an integer below 2**52 in magnitude
// (native.py takes only layers whose float plans prove it from the types), so the
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

#include "native_finish.h"

namespace {

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

// out[i, c] = finish(x[i, c] * scale[c]) for i < n, c < cols: an elementwise layer's cast
// (nnet::normalize; the bias is the first cast's) or a product made elsewhere (scale null
// for 1), in the same finish as the products'.
template <typename T>
void affine(const T* x, long n, long cols, const double* scale, Finish& f, double* out) {
#if defined(__AVX512F__)
    switch (f.first.mode) {
        case 0: affine_rows<0>(x, n, cols, scale, f, out); break;
        case 1: affine_rows<1>(x, n, cols, scale, f, out); break;
        case 2: affine_rows<2>(x, n, cols, scale, f, out); break;
        default: affine_rows<3>(x, n, cols, scale, f, out); break;
    }
#else
    for (long i = 0; i < n; ++i)
        for (long c = 0; c < cols; ++c) {
            const double v = static_cast<double>(x[i * cols + c]);
            out[i * cols + c] = finish1(scale != nullptr ? v * scale[c] : v, c, f);
        }
#endif
}

// The loop shared by both kernels: blocks of kRows output rows times kLanes filters.
template <typename T, typename Sums>
void run(const T* x, long n, long out_w, long in_stride, long step, long n_out, long padded, Finish& f, double* out,
         Sums sums) {
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
            finish_block(acc, np, lanes, f0, f, out + q0 * n_out + f0, n_out);
        }
    }
}

}  // namespace

extern "C" {

// Every kernel below ends in the finish described by params, bias, scale2 and bias2
// (make_finish: the layer's cast, optionally an elementwise layer's, optionally a ReLU;
// bias and bias2 padded to a multiple of kLanes, scale2 too or null) and writes its 9
// stats (write_stats).
//
// window_products: out[q, f] for output rows q < n * out_w (input i = q / out_w, position
// t = q % out_w), from v = sum_{r < span} x[i * in_stride + t * step + r] * w[r, f].
// x holds each input's codes in one contiguous row, so a window (k pixels of every
// channel) is `span` consecutive codes. w is (span, padded), padded a multiple of kLanes
// with zero columns past n_out. The reads are float64: a float32 input converted in the
// loop took twice as long as numpy's copy of it into float64 here.
void window_products(const double* x, long n, long out_w, long in_stride, long step, long span, const double* w,
                     long n_out, long padded, const double* params, const double* bias, const double* scale2,
                     const double* bias2, double* out, double* stats) {
    Finish f = make_finish(params, bias, scale2, bias2);
    run(x, n, out_w, in_stride, step, n_out, padded, f, out,
        [&](const double* const* rows, int np, long f0, double (&acc)[kRows][kLanes]) {
            sums_f64(rows, np, span, w, padded, f0, acc);
        });
    write_stats(f, stats);
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
                         long n_cuts, const int16_t* w, long n_out, long padded, const double* params,
                         const double* bias, const double* scale2, const double* bias2, double* out, double* stats) {
#if defined(__AVX512BW__)
    Finish f = make_finish(params, bias, scale2, bias2);
    run(x, n, out_w, in_stride, step, n_out, padded, f, out,
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
    write_stats(f, stats);
#else
    (void)x, (void)n, (void)out_w, (void)in_stride, (void)step, (void)cuts, (void)n_cuts, (void)w, (void)n_out;
    (void)padded, (void)params, (void)bias, (void)scale2, (void)bias2, (void)out, (void)stats;
#endif
}

// affine on float64 values (an elementwise layer's input codes, exact; scale: its scale
// per column, or null) and on int32 ones (a product made by code_products_u8).
void affine_f64(const double* x, long n, long cols, const double* scale, const double* params, const double* bias,
                const double* scale2, const double* bias2, double* out, double* stats) {
    Finish f = make_finish(params, bias, scale2, bias2);
    affine(x, n, cols, scale, f, out);
    write_stats(f, stats);
}

void affine_i32(const int32_t* x, long n, long cols, const double* scale, const double* params, const double* bias,
                const double* scale2, const double* bias2, double* out, double* stats) {
    Finish f = make_finish(params, bias, scale2, bias2);
    affine(x, n, cols, scale, f, out);
    write_stats(f, stats);
}

}  // extern "C"
