"""design.json, the hardware IR: `Design` is the one reader of the file, `write_design` its writer.

A design.json holds every layer in hls4ml's final order, after all of hls4ml's optimizer
passes: kind, shapes, the exact fixed-point type of every tensor, weight, bias and
accumulator, weights and lookup tables as integer codes, reuse factor, io type, board,
part and clock. The converter makes the record from hls4ml's ModelGraph
(`edge_asr.hw.design_writer`); the simulator, the cost model, the bundle and the board
driver read it through `Design`. Nothing else parses the file.

Loading checks, every time:
- the schema version, against DESIGN_SCHEMA_VERSION;
- the folder's manifest.json (sha256 and size of every file), unless `verify=False`;
- the keys the readers rely on, at the top and in every layer;
- every type is a legal fixed-point type, and every stored code (weights, biases, tables)
  lies inside its type's range.

Needs numpy and the standard library only (it runs on the board).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DesignError, FixedPointError
from .manifest import MANIFEST, verify_manifest
from .types import FixedType

DESIGN_FILE = "design.json"
DESIGN_SCHEMA_VERSION = 1

_TOP_KEYS = ("name", "io_type", "input", "output", "layers")
_LAYER_KEYS = ("name", "class_name", "inputs", "outputs", "output_shape", "output_type", "attributes", "types",
               "weights")


def _type(d, where: str) -> FixedType | None:
    """A type record -> FixedType; None for a type hls4ml gave that is not fixed point (a
    float), which design.json records as {"unsupported": ...}."""
    if not isinstance(d, dict):
        raise DesignError(f"{where}: not a type record")
    if "unsupported" in d:
        return None
    try:
        return FixedType.from_dict(d)
    except (FixedPointError, TypeError) as exc:
        raise DesignError(f"{where}: not a legal fixed-point type ({exc})") from exc


def _codes(values, t: FixedType, shape, where: str) -> np.ndarray:
    """Integer codes from the record, checked against their type's range; read-only."""
    try:
        codes = np.asarray(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DesignError(f"{where}: codes are not integers") from exc
    if shape is not None:
        if codes.size != int(np.prod(shape, dtype=np.int64)):
            raise DesignError(f"{where}: {codes.size} codes for shape {list(shape)}")
        codes = codes.reshape(shape)
    if codes.size and (codes.min() < t.min_code or codes.max() > t.max_code):
        raise DesignError(f"{where}: codes {int(codes.min())}..{int(codes.max())} outside {t.cpp()}'s range "
                          f"{t.min_code}..{t.max_code}; the file was altered or written by a faulty converter")
    codes.flags.writeable = False
    return codes


@dataclass(frozen=True)
class Weight:
    """A layer's weight, bias or scale tensor: integer codes of a fixed-point type, or (for a
    type that is not fixed point) float values."""

    name: str
    shape: tuple[int, ...]
    type: FixedType | None
    codes: np.ndarray | None = None
    values: np.ndarray | None = None


class Layer:
    """One layer of a design: its record, parsed types, weights as arrays, and a cache.

    Attributes:
        name, class_name: hls4ml's layer name and kind (Dense, Conv1D, Softmax, ...).
        inputs, outputs: the tensor names it reads and writes.
        output_shape: its output shape, batch dimension excluded.
        output_type: the result type (None if not fixed point).
        attributes: hls4ml's scalar attributes (n_in, filt_width, strategy, ...).
        types: named types (accum_t, table_t, ...) as FixedType (None if not fixed point).
        weights: name -> Weight.
        tables: lookup tables as stored (softmax's exp/inv codes), or None.
        cache: what a reader prepares from this layer once (the simulator's matrices); it
            lives and dies with the design.
    """

    def __init__(self, record: dict, where: str):
        missing = [k for k in _LAYER_KEYS if k not in record]
        if missing:
            raise DesignError(f"{where}: layer {record.get('name', '?')} lacks {', '.join(missing)}")
        self.record = record
        self.name: str = record["name"]
        here = f"{where}: layer {self.name}"
        self.class_name: str = record["class_name"]
        self.index = record.get("index")
        self.inputs: list[str] = list(record["inputs"])
        self.outputs: list[str] = list(record["outputs"])
        self.output_shape: list[int] = [int(d) for d in record["output_shape"]]
        self.output_type = _type(record["output_type"], f"{here} output type")
        self.attributes: dict = record["attributes"]
        self.types: dict[str, FixedType | None] = {k: _type(v, f"{here} type {k}") for k, v in record["types"].items()}
        self.weights: dict[str, Weight] = {n: self._weight(n, w, here) for n, w in record["weights"].items()}
        self.tables = record.get("tables")
        if self.tables:
            for key in ("exp", "inv"):
                t = _type(self.tables[f"{key}_type"], f"{here} {key} table type")
                if t is not None:
                    _codes(self.tables[key], t, None, f"{here} {key} table")
        self.cache: dict = {}

    @staticmethod
    def _weight(name: str, w: dict, where: str) -> Weight:
        shape = tuple(int(d) for d in w["shape"])
        t = _type(w["type"], f"{where} {name} type")
        if "codes" in w:
            if t is None:
                raise DesignError(f"{where}: {name} has codes but no fixed-point type")
            return Weight(name, shape, t, codes=_codes(w["codes"], t, shape, f"{where} {name}"))
        values = np.asarray(w.get("values", []), dtype=np.float64).reshape(shape)
        values.flags.writeable = False
        return Weight(name, shape, t, values=values)

    def type(self, key: str) -> FixedType:
        """The named fixed-point type `key` (e.g. "accum_t"). Raises DesignError if absent
        or not fixed point."""
        t = self.types.get(key)
        if t is None:
            raise DesignError(f"layer {self.name}: no fixed-point type {key}")
        return t

    def result_type(self) -> FixedType:
        """The output type. Raises DesignError if it is not fixed point."""
        if self.output_type is None:
            raise DesignError(f"layer {self.name}: output type {self.record['output_type']} is not fixed point")
        return self.output_type

    def weight(self, name: str) -> tuple[np.ndarray, FixedType]:
        """(codes, type) of the weight `name`. Raises DesignError if absent or not fixed point."""
        w = self.weights.get(name)
        if w is None or w.codes is None:
            raise DesignError(f"layer {self.name}: no fixed-point weight {name}")
        return w.codes, w.type


class Design:
    """A design.json, checked and parsed. Make one with `Design.load` (or `load_design`).

    Attributes:
        path: the folder the design came from (None for a record held in memory).
        data: the record as written (read it; do not change it).
        layers: the layers in hls4ml's order.
        cache: what a reader works out from the whole design once (the simulator's pass
            size); it lives and dies with the design.
    """

    def __init__(self, data: dict, path: Path | None = None, where: str | None = None):
        where = where or (str(path / DESIGN_FILE) if path else DESIGN_FILE)
        if not isinstance(data, dict):
            raise DesignError(f"{where}: not a design record (want a JSON object)")
        version = data.get("schema_version")
        if version != DESIGN_SCHEMA_VERSION:
            raise DesignError(f"{where}: design schema version {version} is not {DESIGN_SCHEMA_VERSION}; "
                              "convert the model again with this edge-asr")
        missing = [k for k in _TOP_KEYS if k not in data]
        if missing:
            raise DesignError(f"{where}: lacks {', '.join(missing)}; convert the model again")
        self.path = path
        self.data = data
        self.cache: dict = {}
        try:
            self.layers = [Layer(record, where) for record in data["layers"]]
            self._input_type = _type(data["input"]["type"], f"{where}: input type")
            self._output_type = _type(data["output"]["type"], f"{where}: output type")
        except (KeyError, TypeError, ValueError) as exc:
            raise DesignError(f"{where}: malformed ({type(exc).__name__}: {exc}); convert the model again") from exc

    @classmethod
    def load(cls, path: str | Path, verify: bool = True, kind: str | None = None) -> "Design":
        """Read and check a design.

        Args:
            path: a folder holding design.json (a design, a bundle, a golden-vector folder),
                or the design.json file itself.
            verify: check the folder's manifest.json first (default). Turn it off only for
                a folder checked a moment ago (a bundle the driver has just verified).
            kind: the manifest's kind the folder must be ("design", "bundle", "vectors"),
                or None for any.

        Returns:
            The Design.

        Raises:
            DesignError: no design.json, not JSON, another schema version, missing keys, an
                illegal type or a code outside its type.
            ManifestError: the folder has no manifest.json, or a file differs from it.
        """
        path = Path(path)
        if not path.exists():
            raise DesignError(f"{path}: no such design folder; make a design with `edge-asr convert`")
        file = path / DESIGN_FILE if path.is_dir() else path
        folder = file.parent
        if not file.is_file():
            raise DesignError(f"{folder}: no {DESIGN_FILE}; make a design with `edge-asr convert`")
        if verify:
            manifest = verify_manifest(folder, kind)
            if file.name not in manifest["files"]:
                raise DesignError(f"{file}: not listed in {folder / MANIFEST}; rebuild the folder")
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DesignError(f"{file}: not valid JSON ({exc}); convert the model again") from exc
        return cls(data, folder, str(file))

    # --- what the design computes ------------------------------------------------------
    @property
    def input_type(self) -> FixedType:
        """The type the input is coded into (the first stream's element type)."""
        if self._input_type is None:
            raise DesignError(f"{self.name}: input type {self.data['input']['type']} is not fixed point")
        return self._input_type

    @property
    def output_type(self) -> FixedType:
        """The type of the output values."""
        if self._output_type is None:
            raise DesignError(f"{self.name}: output type {self.data['output']['type']} is not fixed point")
        return self._output_type

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input's shape in the design's own (stream) layout, batch excluded."""
        return tuple(int(d) for d in self.data["input"]["shape"])

    @property
    def onnx_input_shape(self) -> tuple[int, ...]:
        """The input's shape in the ONNX model's layout, batch excluded: what callers pass."""
        return tuple(int(d) for d in self.data["input"]["onnx_shape"][1:])

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The output's shape, batch excluded."""
        return tuple(int(d) for d in self.data["output"]["shape"])

    @property
    def n_inputs(self) -> int:
        """Input values per inference (beats of the input stream)."""
        return int(np.prod(self.input_shape, dtype=np.int64))

    @property
    def n_outputs(self) -> int:
        """Output values per inference."""
        return int(np.prod(self.output_shape, dtype=np.int64))

    @property
    def labels(self) -> list[str] | None:
        """The model's class labels, or None (a model converted from a bare .onnx)."""
        return self.data.get("labels")

    # --- where and how it is built -----------------------------------------------------
    @property
    def name(self) -> str:
        """hls4ml's project name (the IP's name)."""
        return self.data["name"]

    @property
    def hls_backend(self) -> str | None:
        """hls4ml's backend (VivadoAccelerator, Vitis): the toolchain, stored under "backend"."""
        return self.data.get("backend")

    @property
    def board(self) -> str | None:
        """The board converted for (pynq-z2, zcu104), or None."""
        return self.data.get("board")

    @property
    def part(self) -> str | None:
        """The FPGA part."""
        return self.data.get("part")

    @property
    def clock_period_ns(self) -> float:
        """The clock period in ns."""
        return float(self.data.get("clock_period_ns") or 10.0)

    @property
    def io_type(self) -> str:
        """hls4ml's io type: io_stream or io_parallel."""
        return self.data["io_type"]

    @property
    def reuse_factor(self) -> int:
        """The design-wide reuse factor (layers may set their own)."""
        return int(self.data.get("reuse_factor", 1))

    def digest(self) -> str:
        """sha256 of what the hardware computes: layers and input/output (not paths or versions)."""
        core = {k: self.data[k] for k in ("input", "output", "layers", "io_type")}
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Design({self.name!r}, {len(self.layers)} layers, {self.input_type.cpp()} -> {self.output_type.cpp()})"


def load_design(path: str | Path, verify: bool = True, kind: str | None = None) -> Design:
    """Read and check a design (the same as `Design.load`).

    Args:
        path: a folder holding design.json, or the file itself.
        verify: check the folder's manifest.json first (default).
        kind: the manifest kind the folder must be ("design", "bundle", "vectors"), or None.

    Returns:
        The Design.

    Raises:
        DesignError: the file is missing, not JSON, of another schema version, or not
            consistent (a type that is not legal, a code outside its type).
        ManifestError: the folder does not match its manifest.
    """
    return Design.load(path, verify=verify, kind=kind)


def write_design(folder: str | Path, record: dict) -> Path:
    """Check a design record as `Design` does, then write it as folder/design.json.

    Raises DesignError if the record would not load. The caller writes the manifest
    (after every other file of the folder).
    """
    Design(record, Path(folder))
    path = Path(folder) / DESIGN_FILE
    path.write_text(json.dumps(record) + "\n")
    return path
