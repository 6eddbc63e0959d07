// edge-asr: the line buffer of a stride-1 1-D convolution in a stream of pixels.
// Holds the last K pixels (N_CHAN values of W bits each) and says when they form a window:
// from the K-th pixel of an inference on, every pixel completes one. Pixels are counted per
// inference (IN_WIDTH of them), so windows never straddle two inferences.
// window: tap-major, the oldest pixel first: value (tap j, channel c) at [(j*N_CHAN+c)*W +: W],
// the order of the kernel's weight rows. With K = IN_WIDTH it is a flatten: the whole image,
// pixel-major (hls4ml's channels-last order), once per inference. Everything moves only
// while en is high.
`timescale 1ns / 1ps
module edge_asr_linebuf #(
    parameter N_CHAN = 1,
    parameter W = 8,
    parameter K = 3,
    parameter IN_WIDTH = 98
) (
    input clk,
    input rst,
    input en,
    input in_valid,
    input [N_CHAN*W-1:0] in_data,
    output reg out_valid,
    output [K*N_CHAN*W-1:0] window
);
  reg [K*N_CHAN*W-1:0] taps;
  reg [31:0] count;  // pixels of this inference seen so far
  assign window = taps;
  always @(posedge clk) begin
    if (rst) begin
      count <= 0;
      out_valid <= 1'b0;
      taps <= 0;
    end else if (en) begin
      out_valid <= 1'b0;
      if (in_valid) begin
        if (K > 1) taps <= {in_data, taps[K*N_CHAN*W-1:N_CHAN*W]};
        else taps <= in_data;
        out_valid <= (count >= K - 1);
        count <= (count == IN_WIDTH - 1) ? 0 : count + 1;
      end
    end
  end
endmodule
