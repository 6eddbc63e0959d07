// edge-asr: the register after a combinational kernel: its result and a valid flag.
`timescale 1ns / 1ps
module edge_asr_stage #(
    parameter W = 8
) (
    input clk,
    input rst,
    input en,
    input in_valid,
    input [W-1:0] in_data,
    output reg out_valid,
    output reg [W-1:0] out_data
);
  always @(posedge clk) begin
    if (rst) out_valid <= 1'b0;
    else if (en) begin
      out_valid <= in_valid;
      if (in_valid) out_data <= in_data;
    end
  end
endmodule
