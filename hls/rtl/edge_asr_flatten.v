// edge-asr: gather N_PIX pixels of N_CHAN values into one vector (pixel-major: value
// (p, c) at [(p*N_CHAN+c)*W +: W], hls4ml's channels-last flatten) and send it whole.
`timescale 1ns / 1ps
module edge_asr_flatten #(
    parameter N_CHAN = 1,
    parameter W = 8,
    parameter N_PIX = 4
) (
    input clk,
    input rst,
    input en,
    input in_valid,
    input [N_CHAN*W-1:0] in_data,
    output reg out_valid,
    output [N_PIX*N_CHAN*W-1:0] out_data
);
  reg [N_PIX*N_CHAN*W-1:0] pixels;
  reg [31:0] count;
  assign out_data = pixels;
  always @(posedge clk) begin
    if (rst) begin
      count <= 0;
      out_valid <= 1'b0;
    end else if (en) begin
      out_valid <= 1'b0;
      if (in_valid) begin
        if (N_PIX > 1) pixels <= {in_data, pixels[N_PIX*N_CHAN*W-1:N_CHAN*W]};
        else pixels <= in_data;
        out_valid <= (count == N_PIX - 1);
        count <= (count == N_PIX - 1) ? 0 : count + 1;
      end
    end
  end
endmodule
