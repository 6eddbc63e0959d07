"""Board side: deployment bundles, the AXI-stream word format, and (later) the PYNQ driver.

Modules here import numpy and the standard library only (the driver adds pynq), so they
run on the board image, whose numpy is older than the host's.
"""
