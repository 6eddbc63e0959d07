"""The hardware IR: design.json (`Design`), its fixed-point types and folder manifests.

The only code that parses design.json. Imports numpy and the standard library only.
"""

from .design import DESIGN_FILE, DESIGN_SCHEMA_VERSION, Design, Layer, Weight, load_design, write_design
from .manifest import ManifestError, verify_manifest, write_manifest
from .types import FixedType

__all__ = ["DESIGN_FILE", "DESIGN_SCHEMA_VERSION", "Design", "FixedType", "Layer", "ManifestError", "Weight",
           "load_design", "verify_manifest", "write_design", "write_manifest"]
