// edge-asr: 1-D max pooling over pairs of pixels (pool 2, stride 2) in a stream.
// Keeps the first pixel of a pair and sends the channel-wise maximum with the second; a
// last odd pixel of an inference (IN_WIDTH pixels) is dropped, as hls4ml's pooling does.
`timescale 1ns / 1ps
module edge_asr_maxpool #(
    parameter N_CHAN = 1,
    parameter W = 8,
    parameter SIGNED = 0,
    parameter IN_WIDTH = 96
) (
    input clk,
    input rst,
    input en,
    input in_valid,
    input [N_CHAN*W-1:0] in_data,
    output reg out_valid,
    output reg [N_CHAN*W-1:0] out_data
);
  reg [N_CHAN*W-1:0] first;
  reg [31:0] count;
  integer c;
  reg [W-1:0] a, b;
  always @(posedge clk) begin
    if (rst) begin
      count <= 0;
      out_valid <= 1'b0;
    end else if (en) begin
      out_valid <= 1'b0;
      if (in_valid) begin
        if (count[0] == 1'b0) begin
          first <= in_data;
        end else begin
          for (c = 0; c < N_CHAN; c = c + 1) begin
            a = first[c*W +: W];
            b = in_data[c*W +: W];
            if (SIGNED) out_data[c*W +: W] <= ($signed(a) > $signed(b)) ? a : b;
            else out_data[c*W +: W] <= (a > b) ? a : b;
          end
          out_valid <= 1'b1;
        end
        count <= (count == IN_WIDTH - 1) ? 0 : count + 1;
      end
    end
  end
endmodule
