// The Dense/Conv1D arithmetic of edge_asr/sim (exact.py's float path) fused in one pass:
// each output's sum of products, its bias, the scaling to the result's lsb, the rounding
// and the clip, with the bounds of the sums for the wrap check and the edge counts.
// Compiled for the host by edge_asr/sim/native.py (g++, once, cached) and called through
// ctypes; see native.py for why this is ours and not a library's.
//
// Exactness: every code and every partial sum is an integer below 2**52 in magnitude
// (native.py takes only layers whose float plan proves it from the types), so the
// products and sums are exact in double in any order, with or without FMA; scaling by a
// power of two is exact; nearbyint is round-half-to-even in the default rounding mode.

#include <algorithm>
#include <cmath>

namespace {

constexpr int kLanes = 16;  // outputs per block of filters (two AVX-512 registers of doubles)
constexpr int kRows = 6;    // output rows per block: 12 accumulators hide the FMA latency

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

}  // namespace

// out[q, f] for output rows q < n * out_w (input i = q / out_w, position t = q % out_w):
//   v = sum_{r < span} x[i * in_stride + t * step + r] * w[r, f] + bias[f]
//   out[q, f] = clip(round(v * factor), lo, hi)
// x holds each input's codes in one contiguous row, so a window (k pixels of every
// channel) is `span` consecutive codes. w is (span, padded), padded a multiple of kLanes
// with zero columns past n_out; bias has `padded` entries. mode: 0 round half to even,
// 1 floor(v + 0.5), 2 floor, 3 none. stats: the smallest and largest v (before scaling,
// for the wrap check), then how many results equal hi and how many equal edge_lo (the
// values at the type's edges). The reads are float64: a float32 input converted in the
// loop took twice as long as numpy's copy of it into float64 here.
extern "C" void window_products(const double* x, long n, long out_w, long in_stride, long step, long span,
                                const double* w, long n_out, long padded, const double* bias, double factor,
                                int mode, double lo, double hi, double edge_lo, double* out, double* stats) {
    double vmin = INFINITY, vmax = -INFINITY;
    long at_hi = 0, at_lo = 0;  // integer counters: a double one is a 4-cycle chain per output
    const long total = n * out_w;
    for (long q0 = 0; q0 < total; q0 += kRows) {
        const int np = static_cast<int>(std::min<long>(kRows, total - q0));
        const double* rows[kRows];
        for (int p = 0; p < np; ++p) {
            const long q = q0 + p;
            rows[p] = x + (q / out_w) * in_stride + (q % out_w) * step;
        }
        for (long f0 = 0; f0 < padded; f0 += kLanes) {
            double acc[kRows][kLanes];
            switch (np) {
                case 6: block<6>(rows, span, w, padded, f0, acc); break;
                case 5: block<5>(rows, span, w, padded, f0, acc); break;
                case 4: block<4>(rows, span, w, padded, f0, acc); break;
                case 3: block<3>(rows, span, w, padded, f0, acc); break;
                case 2: block<2>(rows, span, w, padded, f0, acc); break;
                default: block<1>(rows, span, w, padded, f0, acc); break;
            }
            const int lanes = static_cast<int>(std::min<long>(kLanes, n_out - f0));
            for (int p = 0; p < np; ++p) {
                double* o = out + (q0 + p) * n_out + f0;
                for (int l = 0; l < lanes; ++l) {
                    double v = acc[p][l] + bias[f0 + l];
                    vmin = std::min(vmin, v);
                    vmax = std::max(vmax, v);
                    v *= factor;
                    if (mode == 0) v = std::nearbyint(v);
                    else if (mode == 1) v = std::floor(v + 0.5);
                    else if (mode == 2) v = std::floor(v);
                    v = std::min(std::max(v, lo), hi);
                    at_hi += v == hi;
                    at_lo += v == edge_lo;
                    o[l] = v;
                }
            }
        }
    }
    stats[0] = vmin;
    stats[1] = vmax;
    stats[2] = static_cast<double>(at_hi);
    stats[3] = static_cast<double>(at_lo);
}
