"""What the host suite cannot import without pynq: the board modules' exception classes
belong to EdgeAsrError, and the public API's overlay resolves and is documented."""

from __future__ import annotations

import inspect

import edge_asr
from edge_asr.errors import EdgeAsrError


def test_board_exceptions_are_edge_asr_errors():
    from edge_asr.deploy import driver, simdevice
    classes = [c for m in (driver, simdevice) for c in vars(m).values()
               if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == m.__name__]
    assert {c.__name__ for c in classes} == {"DriverError", "StreamContractError"}
    assert all(issubclass(c, EdgeAsrError) for c in classes)


def test_the_overlay_is_public_and_documented():
    from edge_asr.deploy.driver import EdgeAsrOverlay
    assert edge_asr.EdgeAsrOverlay is EdgeAsrOverlay
    doc = inspect.getdoc(EdgeAsrOverlay)
    assert "Args:" in doc and "Raises:" in doc
    for name, member in vars(EdgeAsrOverlay).items():
        if not name.startswith("_") and inspect.isfunction(member):
            assert inspect.getdoc(member), name
