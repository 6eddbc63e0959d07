// Prints, for every type in TYPES and every input value on stdin, the raw code that
// Vivado/Vitis's ap_fixed gives (a) converting from double and (b) converting from a
// wider fixed-point value. Compiled against hls4ml's own ap_types headers.
#include <cstdio>
#include <vector>
#include "ap_fixed.h"

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
void run(const std::vector<double> &xs) {
    typedef ap_fixed<40, I + 12> wide_s;  // holds every test value exactly
    for (double x : xs) {
        long long from_double, from_fixed;
        wide_s w = x;
        if (S) {
            ap_fixed<W, I, Q, O> a = x;
            ap_fixed<W, I, Q, O> b = w;
            from_double = a.range().to_int64();
            from_fixed = b.range().to_int64();
            // sign-extend the raw W-bit pattern
            if (from_double >> (W - 1) & 1) from_double -= (1LL << W);
            if (from_fixed >> (W - 1) & 1) from_fixed -= (1LL << W);
        } else {
            ap_ufixed<W, I, Q, O> a = x;
            ap_ufixed<W, I, Q, O> b = w;
            from_double = a.range().to_uint64();
            from_fixed = b.range().to_uint64();
        }
        printf("%lld %lld\n", from_double, from_fixed);
    }
}

int main() {
    std::vector<double> xs;
    double v;
    while (scanf("%lf", &v) == 1) xs.push_back(v);
#include "fixed_cases.inc"
    return 0;
}
