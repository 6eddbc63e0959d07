"""The bit-exact simulator of a converted design (numpy and the standard library; on the
host, onnxruntime and g++ where they help, with numpy as the fallback).

    fixed    ap_fixed arithmetic on int64 codes (quantize, requantize, overflow)
    tables   hls4ml's lookup tables (softmax, sigmoid, tanh), as its C++ fills them
    exact    exact integer matrix products (BLAS where exact) for Dense and Conv
    kernels  one function per layer kind, and their registry
    engine   the scheduler: code the inputs, run the layers, chunks on all cores
    vectors  golden vectors (C-sim outputs kept in the repository) and their check
    blas     BLAS held to one thread around small products
    int8     the host's 8-bit input coding and first product in one pass: compiled
             (native_int8.cpp, with the Dense layers after it), else on onnxruntime
    native   Dense/Conv1D with their cast in one compiled pass (g++: native.cpp and
             native_int8.cpp, sharing the finish in native_finish.h)
    fused    the ApplyAlpha and ReLU run inside the pass of the layer before them
    tensor   codes with their fixed-point type, what the kernels pass along
"""

from .engine import SimResult, code_input, simulate, simulate_codes

__all__ = ["SimResult", "code_input", "simulate", "simulate_codes"]
