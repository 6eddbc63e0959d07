"""`python -m edge_asr.cli`: the console script `edge-asr`."""

import sys

from . import main

sys.exit(main())
