// edge-asr: a Verilator testbench of the streaming top level (edge_asr_top) as an AXI-stream
// slave and master. Reads input beats from argv[1], drives them with random gaps (TVALID low)
// and random backpressure on the output (TREADY low), TLAST on the last beat of each
// inference, and writes every output beat and the cycle it left to argv[2].
//   input file, little-endian uint32: n_inferences, beats_per_inference, in_words, out_words,
//     gap_permille, stall_permille, seed, then n_inferences * beats * in_words data words
//   output file: per output beat, out_words data words then its cycle; then the cycle the
//     first input beat was taken, and the number of cycles run
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "Vedge_asr_top.h"
#include "verilated.h"

static uint32_t rng_state = 1;
static uint32_t next_rand() {  // xorshift32: the same sequence on every machine
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s IN.bin OUT.bin\n", argv[0]);
    return 2;
  }
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) return 2;
  uint32_t head[7];
  if (std::fread(head, 4, 7, f) != 7) return 2;
  const uint64_t n_inf = head[0], beats = head[1], in_words = head[2], out_words = head[3];
  const uint32_t gap = head[4], stall = head[5];
  rng_state = head[6] ? head[6] : 1;
  std::vector<uint32_t> data(n_inf * beats * in_words);
  if (std::fread(data.data(), 4, data.size(), f) != data.size()) return 2;
  std::fclose(f);

  VerilatedContext ctx;
  Vedge_asr_top top(&ctx);
  std::vector<uint32_t> out;
  const uint64_t total = n_inf * beats;
  uint64_t sent = 0, received = 0, cycle = 0, first_in = 0;
  bool started = false;
  top.clk = 0;
  top.rst = 1;
  top.s_axis_tvalid = 0;
  top.m_axis_tready = 0;
  for (int i = 0; i < 4; ++i) {
    top.clk = 0; top.eval();
    top.clk = 1; top.eval();
  }
  top.rst = 0;
  const uint64_t limit = (total + n_inf) * 64 + 100000;
  while (received < n_inf && cycle < limit) {
    top.clk = 0;
    const bool offer = sent < total && (next_rand() % 1000) >= gap;
    top.s_axis_tvalid = offer;
    if (offer) {
      for (uint64_t w = 0; w < in_words; ++w) top.s_axis_tdata[w] = data[sent * in_words + w];
      top.s_axis_tlast = (sent % beats) == beats - 1;
    }
    top.m_axis_tready = (next_rand() % 1000) >= stall;
    top.eval();
    const bool take_in = offer && top.s_axis_tready;
    if (top.m_axis_tvalid && top.m_axis_tready) {
      for (uint64_t w = 0; w < out_words; ++w) out.push_back(top.m_axis_tdata[w]);
      out.push_back((uint32_t)cycle);
      ++received;
    }
    top.clk = 1;
    top.eval();
    if (take_in) {
      if (!started) { first_in = cycle; started = true; }
      ++sent;
    }
    ++cycle;
  }
  FILE* o = std::fopen(argv[2], "wb");
  if (!o) return 2;
  std::fwrite(out.data(), 4, out.size(), o);
  uint32_t tail[2] = {(uint32_t)first_in, (uint32_t)cycle};
  std::fwrite(tail, 4, 2, o);
  std::fclose(o);
  top.final();
  return received == n_inf ? 0 : 1;
}
