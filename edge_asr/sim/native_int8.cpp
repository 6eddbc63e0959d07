// The input coding and first matrix product of a design with 8-bit inputs (sim/int8.py)
// in one compiled pass: each float32 input coded as the host codes it for the board
// (x * 2**F rounded half to even, clamped to the type), and the codes' product with the
// first Dense's int8 weights on the CPU's 8-bit dot products (AVX-512 VNNI), summed in
// int32. Built with native.cpp by native.py. Where the CPU lacks VNNI, has_u8() is 0 and
// sim/int8.py runs the same two steps on onnxruntime.
//
// Exactness: 2**F scaling of a float32 is exact (below overflow, where the clamp and the
// caller's range check take over); round-half-to-even is the instruction's nearest mode;
// int32 sums wrap modulo 2**32 and the result is in range (int8.py checks 128 * sum|w| <
// 2**31 per column), so it is exact whatever the partial sums did.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <thread>
#include <vector>
#include <unistd.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "native_finish.h"

namespace {

// Threads kept between calls that help with a call's work: starting a thread per call
// cost 67 us here, as long as coding 2,000 small inputs takes on one core. They sleep on
// a condition variable between calls (onnxruntime's spinning threads kept a core busy for
// 10 ms after each call, docs/experiments.md), and waking one takes tens of microseconds
// here, so the caller does not wait for them: the work is a queue of pieces that the
// caller starts on at once and helpers join as they wake; a helper that wakes after the
// last piece is taken does nothing. Remade in a forked child, which has none of them.
class Helpers {
  public:
    // Runs f(slot) on the calling thread (slot 0) and on up to `extra` helpers (slots 1..),
    // each f taking pieces until none are left; returns when every f that started is done.
    void run(int extra, const std::function<void(int)>& f) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (pid_ != getpid()) {
            // a forked child: the parent's threads are not here. Their handles are dropped
            // unread (detaching or destroying them would act on threads of another process)
            new (&threads_) std::vector<std::thread>();
            pid_ = getpid();
        }
        while (static_cast<int>(threads_.size()) < extra)
            threads_.emplace_back([this, slot = static_cast<int>(threads_.size()) + 1] { serve(slot); });
        job_ = &f;
        extra_ = extra;
        ++generation_;
        if (extra > 0) wake_.notify_all();
        lock.unlock();
        f(0);
        lock.lock();
        job_ = nullptr;  // helpers that wake from here on find nothing to do
        done_.wait(lock, [this] { return working_ == 0; });
    }

  private:
    void serve(int slot) {
        long seen = 0;
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return generation_ != seen; });
            seen = generation_;
            if (job_ == nullptr || slot > extra_) continue;
            const std::function<void(int)>* job = job_;
            ++working_;
            lock.unlock();
            (*job)(slot);
            lock.lock();
            if (--working_ == 0) done_.notify_one();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> threads_;
    const std::function<void(int)>* job_ = nullptr;
    int extra_ = 0, working_ = 0;
    long generation_ = 0;
    pid_t pid_ = getpid();
};

// One call at a time: two Python threads calling at once take turns (a helper serves
// one call at a time).
[[maybe_unused]] std::mutex calls;

[[maybe_unused]] Helpers& helpers() {
    static Helpers* h = new Helpers;  // never destroyed: its threads sleep until exit
    return *h;
}

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
constexpr int kCodeRows = 6;  // input rows per block of the 8-bit product: 6 x 4 accumulators

// Codes one row of float32 inputs: x * scale rounded half to even, clamped to [lo, hi]
// (NaN and values past int32 become INT32_MIN, so lo: the caller checks the inputs when a
// code sits at a clamp). The signed codes go to `codes`, the codes + 128 (what the unsigned
// side of the CPU's 8-bit dot product takes) to `u8`, with their bounds; the values at
// lo and hi are counted by the caller, and only when the bounds reach them.
struct Coding {
    __m512 scale;
    __m512i lo, hi, vmin, vmax;
};

template <bool TAIL>
inline void code16(const float* x, Coding& c, int8_t* codes, uint8_t* u8, __mmask16 m) {
    // 4 KiB ahead: the input is read once, and the hardware's prefetch alone left the
    // conversion waiting on it (5-8 % faster here)
    if (!TAIL) _mm_prefetch(reinterpret_cast<const char*>(x + 1024), _MM_HINT_T0);
    const __m512 raw = TAIL ? _mm512_maskz_loadu_ps(m, x) : _mm512_loadu_ps(x);
    __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(raw, c.scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_epi32(_mm512_max_epi32(q, c.lo), c.hi);
    const __m128i b = _mm512_cvtepi32_epi8(q);
    const __m128i flipped = _mm_xor_si128(b, _mm_set1_epi8(static_cast<char>(0x80)));
    if (TAIL) {
        c.vmin = _mm512_mask_min_epi32(c.vmin, m, c.vmin, q);
        c.vmax = _mm512_mask_max_epi32(c.vmax, m, c.vmax, q);
        if (codes != nullptr) _mm_mask_storeu_epi8(codes, m, b);
        _mm_mask_storeu_epi8(u8, m, flipped);
    } else {
        c.vmin = _mm512_min_epi32(c.vmin, q);
        c.vmax = _mm512_max_epi32(c.vmax, q);
        if (codes != nullptr) _mm_storeu_si128(reinterpret_cast<__m128i*>(codes), b);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(u8), flipped);
    }
}

inline void code_row(const float* x, long span, Coding& c, int8_t* codes, uint8_t* u8) {
    long j = 0;
    for (; j + 16 <= span; j += 16) code16<false>(x + j, c, codes != nullptr ? codes + j : nullptr, u8 + j, 0);
    if (j < span)
        code16<true>(x + j, c, codes != nullptr ? codes + j : nullptr, u8 + j,
                     static_cast<__mmask16>((1u << (span - j)) - 1));
}

// The products of kCodeRows coded rows (u8, each `quads` * 4 bytes) with CB blocks of 16
// weight columns from f0: w is (quads, padded, 4) int8, so one register holds 4 rows of
// 16 columns and one instruction adds 4 products per column.
template <int CB>
void product_block(const uint8_t* u8, long stride, long quads, const int8_t* __restrict w, long padded, long f0,
                   const int32_t* correction, long n_out, int rows, int32_t* out, long out_stride, long col0) {
    // every loop unrolled, else gcc keeps the accumulators on the stack
    __m512i acc[kCodeRows][CB];
#pragma GCC unroll 6
    for (int p = 0; p < kCodeRows; ++p)
#pragma GCC unroll 4
        for (int b = 0; b < CB; ++b) acc[p][b] = _mm512_setzero_si512();
    for (long g = 0; g < quads; ++g) {
        __m512i wv[CB];
#pragma GCC unroll 4
        for (int b = 0; b < CB; ++b) wv[b] = _mm512_loadu_si512(w + (g * padded + f0 + 16 * b) * 4);
#pragma GCC unroll 6
        for (int p = 0; p < kCodeRows; ++p) {
            int32_t four;
            std::memcpy(&four, u8 + p * stride + 4 * g, 4);
            const __m512i xv = _mm512_set1_epi32(four);
#pragma GCC unroll 4
            for (int b = 0; b < CB; ++b) acc[p][b] = _mm512_dpbusd_epi32(acc[p][b], xv, wv[b]);
        }
    }
    // sum((code + 128) * w) - 128 * sum(w): int32 wraps modulo 2**32, and the result is in
    // range (native.py checks 128 * sum|w| < 2**31), so it is exact
    // (loops of constant bounds: an array indexed at run time would live on the stack)
#pragma GCC unroll 6
    for (int p = 0; p < kCodeRows; ++p)
#pragma GCC unroll 4
        for (int b = 0; b < CB; ++b) {
            const long f = f0 + 16 * b, n = std::max<long>(0, std::min<long>(16, n_out - f));
            if (p < rows && n > 0) {
                const __m512i v = _mm512_sub_epi32(acc[p][b], _mm512_loadu_si512(correction + f));
                _mm512_mask_storeu_epi32(out + p * out_stride + f - col0, static_cast<__mmask16>((1u << n) - 1), v);
            }
        }
}

static_assert(kCodeRows == kRows, "a block of coded rows is finished as one block of kRows");

// A Dense layer run after the first on each block of rows while the block is in cache:
// its float64 weights (span, padded) and its finish.
struct Stage {
    const double* w;
    long span, n_out, padded;
    Finish fin;
};

// One slot's finishes: the first Dense's, then those of the Dense layers after it.
struct Pass {
    Finish first;
    std::vector<Stage> stages;
};

// The stages on one block of `rows` finished rows (src, `stride` apart), each into the
// next scratch buffer, the last into out (rows of its width).
void run_stages(std::vector<Stage>& stages, int rows, const double* src, long stride, double* scratch, double* out) {
    double* spare[2] = {scratch, scratch + kRows * stride};
    for (size_t k = 0; k < stages.size(); ++k) {
        Stage& st = stages[k];
        const bool last = k + 1 == stages.size();
        double* dst = last ? out : spare[k % 2];
        const long dst_stride = last ? st.n_out : stride;
        const double* in[kRows];
        for (int p = 0; p < rows; ++p) in[p] = src + p * stride;
        for (long f0 = 0; f0 < st.padded; f0 += kLanes) {
            double acc[kRows][kLanes];
            sums_f64(in, rows, st.span, st.w, st.padded, f0, acc);
            finish_block(acc, rows, static_cast<int>(std::min<long>(kLanes, st.n_out - f0)), f0, st.fin, dst + f0,
                         dst_stride);
        }
        src = dst;
    }
}

// Rows [n0, n1): coded, multiplied, and either stored as int32 sums (pass null) or finished
// (native_finish.h), the stages after it run, into out64. `width`: the widest output of
// the first Dense and the stages.
void code_products_rows(const float* x, long n0, long n1, long span, float scale, int lo, int hi, const int8_t* w,
                        long n_out, long padded, const int32_t* correction, int8_t* codes, int32_t* out, Pass* pass,
                        long width, double* out64, long* stats) {
    const long quads = (span + 3) / 4, stride = 4 * quads;
    std::vector<uint8_t> buffer(kCodeRows * stride, 0x80);  // past span: code 0 (times zero weights)
    int32_t stage[kCodeRows][64] = {};                        // one block's sums, to be finished
    const bool staged = pass != nullptr && !pass->stages.empty();
    std::vector<double> scratch(staged ? 3 * kRows * width : 0);  // the first's output, then two spares
    Coding c{_mm512_set1_ps(scale), _mm512_set1_epi32(lo), _mm512_set1_epi32(hi), _mm512_set1_epi32(hi),
             _mm512_set1_epi32(lo)};
    for (long i0 = n0; i0 < n1; i0 += kCodeRows) {
        const int rows = static_cast<int>(std::min<long>(kCodeRows, n1 - i0));
        for (int p = 0; p < rows; ++p)
            code_row(x + (i0 + p) * span, span, c, codes != nullptr ? codes + (i0 + p) * span : nullptr,
                     buffer.data() + p * stride);
        const uint8_t* u8 = buffer.data();
        for (long f0 = 0; f0 < padded; f0 += 64) {
            int32_t* o = pass == nullptr ? out + i0 * n_out : &stage[0][0];
            const long o_stride = pass == nullptr ? n_out : 64, col0 = pass == nullptr ? 0 : f0;
            const int blocks = static_cast<int>(std::min<long>(4, (padded - f0) / 16));
            switch (blocks) {
                case 4: product_block<4>(u8, stride, quads, w, padded, f0, correction, n_out, rows, o, o_stride, col0); break;
                case 3: product_block<3>(u8, stride, quads, w, padded, f0, correction, n_out, rows, o, o_stride, col0); break;
                case 2: product_block<2>(u8, stride, quads, w, padded, f0, correction, n_out, rows, o, o_stride, col0); break;
                default: product_block<1>(u8, stride, quads, w, padded, f0, correction, n_out, rows, o, o_stride, col0); break;
            }
            if (pass == nullptr) continue;
            for (int b = 0; b < blocks; ++b) {
                const long f = f0 + 16 * b;
                if (f >= n_out) break;
                double acc[kRows][kLanes];
                for (int p = 0; p < rows; ++p)
                    for (int l = 0; l < kLanes; ++l) acc[p][l] = static_cast<double>(stage[p][16 * b + l]);
                double* dst = staged ? scratch.data() + f : out64 + i0 * n_out + f;
                finish_block(acc, rows, static_cast<int>(std::min<long>(kLanes, n_out - f)), f, pass->first, dst,
                             staged ? width : n_out);
            }
        }
        if (staged)
            run_stages(pass->stages, rows, scratch.data(), width, scratch.data() + kRows * width,
                       out64 + i0 * pass->stages.back().n_out);
    }
    stats[0] = std::min<long>(stats[0], _mm512_reduce_min_epi32(c.vmin));
    stats[1] = std::max<long>(stats[1], _mm512_reduce_max_epi32(c.vmax));
}

void merge(Cast& into, const Cast& c) {
    into.vmin = std::min(into.vmin, c.vmin);
    into.vmax = std::max(into.vmax, c.vmax);
    into.at_hi += c.at_hi;
    into.at_lo += c.at_lo;
}

void merge(Finish& into, const Finish& f) {
    merge(into.first, f.first);
    merge(into.second, f.second);
    into.at_relu_hi += f.at_relu_hi;
}
#endif

}  // namespace

extern "C" {

// Whether code_products_u8 is compiled in (the CPU's 8-bit dot products: AVX-512 VNNI).
int has_u8() {
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
    return 1;
#else
    return 0;
#endif
}

// The input coding and first product of an 8-bit design (sim/int8.py) in one pass, on
// `threads` threads: codes[i, j] = clip(round_half_even(x[i, j] * scale), lo, hi) as int8,
// sums[i, f] = sum_j codes[i, j] * w[j, f] in int32, for i < n, j < span, f < n_out.
// w is laid out (ceil(span / 4), padded, 4) with zeros past span and n_out; correction[f]
// is 128 * sum_j w[j, f] (padded entries). bounds: the smallest and largest code.
// With params null the sums go to out (int32); else they are finished as native.cpp's
// kernels finish theirs (make_finish: params, bias, scale2, bias2), and the n_stages Dense
// layers after it run on each block of rows (stage k: dims[3k..] its span, width and padded
// width; ptrs[5k..] the addresses of its float64 weights (span, padded) and of its finish's
// params, bias, scale2, bias2), the last one's output going to out64 (float64); stats: 9
// per finish (write_stats), the first's, then each stage's. codes may be null: the codes
// are not stored.
void code_products_u8(const float* x, long n, long span, float scale, int lo, int hi, const int8_t* w, long n_out,
                      long padded, const int32_t* correction, int threads, int8_t* codes, int32_t* out, long* bounds,
                      const double* params, const double* bias, const double* scale2, const double* bias2,
                      long n_stages, const long* dims, const uint64_t* ptrs, double* out64, double* stats) {
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
    // pieces of kPiece rows: small enough to share 2,000 inputs out as helpers wake
    constexpr long kPiece = 8 * kCodeRows;
    const long pieces = (n + kPiece - 1) / kPiece;
    threads = static_cast<int>(std::max<long>(1, std::min<long>(threads, pieces)));
    std::vector<long> slot_bounds(2 * threads);  // each slot's smallest and largest code
    for (int t = 0; t < threads; ++t) slot_bounds[2 * t] = hi, slot_bounds[2 * t + 1] = lo;
    std::vector<Pass> passes;  // each slot's finishes: their own bounds and counts
    long width = n_out;
    if (params != nullptr) {
        Pass pass{make_finish(params, bias, scale2, bias2), {}};
        for (long k = 0; k < n_stages; ++k) {
            auto at = [&](int i) { return reinterpret_cast<const double*>(static_cast<uintptr_t>(ptrs[5 * k + i])); };
            pass.stages.push_back(Stage{at(0), dims[3 * k], dims[3 * k + 1], dims[3 * k + 2],
                                        make_finish(at(1), at(2), at(3), at(4))});
            width = std::max(width, dims[3 * k + 2]);
        }
        passes.assign(threads, pass);
    }
    std::atomic<long> next{0};
    const std::function<void(int)> work = [&](int slot) {
        long* s = slot_bounds.data() + 2 * slot;
        Pass* pass = passes.empty() ? nullptr : &passes[slot];
        for (long piece; (piece = next.fetch_add(1)) < pieces;) {
            const long a = piece * kPiece;
            code_products_rows(x, a, std::min(n, a + kPiece), span, scale, lo, hi, w, n_out, padded, correction, codes,
                               out, pass, width, out64, s);
        }
    };
    {
        std::lock_guard<std::mutex> one_call(calls);
        helpers().run(threads - 1, work);
    }
    bounds[0] = hi, bounds[1] = lo;
    for (int t = 0; t < threads; ++t) {
        bounds[0] = std::min(bounds[0], slot_bounds[2 * t]);
        bounds[1] = std::max(bounds[1], slot_bounds[2 * t + 1]);
    }
    if (!passes.empty()) {
        for (int t = 1; t < threads; ++t) {
            merge(passes[0].first, passes[t].first);
            for (long k = 0; k < n_stages; ++k) merge(passes[0].stages[k].fin, passes[t].stages[k].fin);
        }
        write_stats(passes[0].first, stats);
        for (long k = 0; k < n_stages; ++k) write_stats(passes[0].stages[k].fin, stats + 9 * (k + 1));
    }
#else
    (void)x, (void)n, (void)span, (void)scale, (void)lo, (void)hi, (void)w, (void)n_out, (void)padded;
    (void)correction, (void)threads, (void)codes, (void)out, (void)bounds, (void)params, (void)bias, (void)scale2;
    (void)bias2, (void)n_stages, (void)dims, (void)ptrs, (void)out64, (void)stats;
#endif
}

}  // extern "C"
