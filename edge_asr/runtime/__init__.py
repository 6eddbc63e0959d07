"""Running a model or a design on audio: the streaming recognizer (`recognizer`, with its
streams in `stream`), the model directory reader (`modeldir`), the backends behind one
interface (`backends`: onnx, sim, csim, pynq) and offline runs of a design on arrays or
clips (`offline`). Never imports training or hw: the base install and the board run it."""
