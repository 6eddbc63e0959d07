"""edge-asr: speech acoustic models to PYNQ FPGA designs, checkable without a board."""

__version__ = "0.1.0"
