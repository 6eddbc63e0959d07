"""From a float model to hardware: ONNX preparation as small QONNX passes (`onnxprep`),
calibration and per-layer precision (`precision`), hls4ml 1.3 with our repairs
(`hls4ml_fixes`), conversion to a design folder with design.json (`convert`,
`design_writer`), hls4ml's C simulation (`csim`), the fixed-point check against the float
model (`verify`), the boards (`boards`), the cost model of hls4ml's kernels (`cost`), the fit
to a board's budget (`fit`) and the vendor flow (`build`).
Needs the [convert] extra, but for `boards` and `cost` (the `cost` verb is in the base install)."""
