"""The PYNQ driver, run unchanged on pynq's own Overlay/allocate/DMA against the simulated
device: bit-exact end to end, the stream contract, and bundles it must refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_asr.deploy.bundle import BundleError
from edge_asr.deploy.driver import EdgeAsrOverlay
from edge_asr.deploy.simdevice import StreamContractError
from edge_asr.sim.engine import load_design, simulate
from edge_asr.sim.fixed import to_float


def test_pynq_is_the_real_package():
    import pynq
    from pynq.pl_server.device import Device
    assert pynq.__version__ == "4.0.0"
    assert np.__version__.startswith("1.")  # as on the board image
    from edge_asr.deploy.simdevice import SimulatedDevice
    assert issubclass(SimulatedDevice, Device)


def test_bit_exact_against_csim_golden_vectors(overlay, device, golden):
    x, y = golden
    out = overlay.run_codes(x.reshape(len(x), -1))
    assert out.shape == y.shape and np.array_equal(out, y)  # the driver's codes are C-sim's, to the bit
    # the float path: the driver codes features into the input type itself
    r = overlay.predict(to_float(x, overlay.in_type) + 0.4 * overlay.in_type.lsb)  # off-grid, rounds back
    assert np.array_equal(r.codes, y) and np.array_equal(r.values, to_float(y, overlay.out_type))
    assert device.core.inputs_run == 2 * len(x)
    # pynq's buffers really went through the DMA registers: one send and one receive per batch
    batches = -(-len(x) // overlay.batch_size)
    assert [t.channel for t in device.transfers[:2]] == ["mm2s", "s2mm"] and len(device.transfers) == 4 * batches


def test_bit_exact_against_the_simulator_out_of_range(overlay, bundle):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 12, size=(37,) + overlay.input_shape)  # far beyond the input type's range: saturates
    x[0] = overlay.in_type.max_value * 3
    expect = simulate(load_design(bundle), x)
    r = overlay.predict(x)
    assert np.array_equal(r.codes, expect.codes) and np.array_equal(r.values, expect.outputs)


def test_single_frame_path(overlay, device, golden):
    x, y = golden
    device.transfers.clear()
    r = overlay.predict_one(to_float(x[3], overlay.in_type))
    assert np.array_equal(r.codes, y[3]) and r.values.shape == (overlay.n_out,) and r.seconds > 0
    send, recv = device.transfers
    assert (send.channel, send.beats, send.tlast_beat) == ("mm2s", overlay.n_in, overlay.n_in - 1)
    assert (recv.channel, recv.beats, recv.tlast_beat) == ("s2mm", overlay.n_out, overlay.n_out - 1)
    assert send.address % 4 == 0 and recv.address % 4 == 0
    assert overlay.timing_summary()["calls"] == 1


def test_batches_and_tlast(bundle, device, golden):
    x, y = golden
    ol = EdgeAsrOverlay(bundle, batch_size=7)
    out = ol.run_codes(x[:20].reshape(20, -1))
    assert np.array_equal(out, y[:20])
    sends = [t for t in device.transfers if t.channel == "mm2s"]
    recvs = [t for t in device.transfers if t.channel == "s2mm"]
    assert [t.beats for t in sends] == [7 * ol.n_in, 7 * ol.n_in, 6 * ol.n_in]
    assert [t.beats for t in recvs] == [7 * ol.n_out, 7 * ol.n_out, 6 * ol.n_out]
    assert all(t.tlast_beat == t.beats - 1 for t in sends + recvs)  # TLAST only at the end of each transfer
    # the same buffers are reused: a second call still lands in the driver's own output buffer
    again = ol.run_codes(x[:20].reshape(20, -1))
    assert np.array_equal(again, out) and recvs[0].address == [t for t in device.transfers if t.channel == "s2mm"][-1].address
    ol.close()


def _vivado_hwh(tmp_path, stream_bits: int | None = None):
    """A .hwh Vivado wrote (pynqmetadata's test copy of the 'resizer' design: PS7, a
    top-level axi_dma_0 with 32-bit streams, an HLS core with AXI-lite), optionally with
    the DMA's stream widths set to `stream_bits`."""
    import pynqmetadata
    src = Path(pynqmetadata.__file__).parent / "tests" / "hwhs" / "resizer.hwh"
    text = src.read_text(encoding="utf-8-sig")
    if stream_bits is not None:
        for name in ("c_m_axis_mm2s_tdata_width", "c_s_axis_s2mm_tdata_width"):
            text = text.replace(f'<PARAMETER NAME="{name}" VALUE="32"/>',
                                f'<PARAMETER NAME="{name}" VALUE="{stream_bits}"/>')
    hwh = tmp_path / f"vivado{stream_bits or 32}.hwh"
    hwh.write_text(text)
    bit = hwh.with_suffix(".bit")
    # never programmed (the simulated device reads the .hwh only), but a bitstream's start: header, sync word
    bit.write_bytes(b"\x00\x09\x0f\xf0" + b"\xff" * 16 + bytes.fromhex("AA995566"))
    return bit, hwh


def test_a_vivado_hwh_with_other_stream_widths_is_refused(tmp_path, design_dir, device):
    from edge_asr.deploy.bundle import write_bundle
    from edge_asr.deploy.driver import DriverError
    bit, hwh = _vivado_hwh(tmp_path)
    b = write_bundle(design_dir, tmp_path / "b", bit=bit, hwh=hwh, log=lambda m: None)
    with pytest.raises(DriverError, match="DMA streams 32-bit words, the design's input stream is 16-bit"):
        EdgeAsrOverlay(b)
    assert not device.regions  # refused before the fabric was programmed


def test_driver_runs_on_a_vivado_hwh(tmp_path, design_dir, device, golden):
    """pynq's parser on a hardware description Vivado wrote (top-level DMA, other IP beside it)."""
    from edge_asr.deploy.bundle import write_bundle
    bit, hwh = _vivado_hwh(tmp_path, stream_bits=16)
    b = write_bundle(design_dir, tmp_path / "b", bit=bit, hwh=hwh, log=lambda m: None)
    ol = EdgeAsrOverlay(b)
    assert "axi_dma_0" in ol.ip_dict and "resize_accel_0" in ol.ip_dict and not ol.bundle_info["simulation_only"]
    x, y = golden
    assert np.array_equal(ol.run_codes(x[:20].reshape(20, -1)), y[:20])


def _raw_dma(overlay):
    from pynq import allocate
    dma = overlay.dma
    buf_in = allocate(shape=(4 * overlay.in_bytes,), dtype=np.uint8)
    buf_out = allocate(shape=(4 * overlay.out_bytes,), dtype=np.uint8)
    return dma, buf_in, buf_out


def test_contract_partial_input(overlay):
    dma, buf_in, _ = _raw_dma(overlay)
    with pytest.raises(StreamContractError, match=f"whole number of {overlay.n_in}-beat inputs"):
        dma.sendchannel.transfer(buf_in, nbytes=overlay.in_bytes - 2)
    with pytest.raises(StreamContractError, match="whole number of 2-byte beats"):
        dma.sendchannel.transfer(buf_in, nbytes=overlay.in_bytes + 1)


def test_contract_receive_buffer_too_small(overlay):
    dma, buf_in, buf_out = _raw_dma(overlay)
    dma.recvchannel.transfer(buf_out, nbytes=2 * overlay.out_bytes - 2)
    with pytest.raises(StreamContractError, match="smaller than the .*output packet"):
        dma.sendchannel.transfer(buf_in, nbytes=2 * overlay.in_bytes)


def test_contract_receive_larger_than_packet_ends_at_tlast(overlay):
    dma, buf_in, buf_out = _raw_dma(overlay)
    dma.sendchannel.transfer(buf_in, nbytes=overlay.in_bytes)
    dma.recvchannel.transfer(buf_out)  # the whole 4-output buffer
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == overlay.out_bytes  # the DMA stops at TLAST


def test_contract_waiting_on_send_before_receive_deadlocks(overlay):
    dma, buf_in, _ = _raw_dma(overlay)
    dma.sendchannel.transfer(buf_in, nbytes=3 * overlay.in_bytes)
    with pytest.raises(StreamContractError, match="before a receive is armed"):
        dma.sendchannel.wait()


def test_contract_two_sends_without_a_receive_stall(overlay):
    dma, buf_in, buf_out = _raw_dma(overlay)
    dma.sendchannel.transfer(buf_in, nbytes=overlay.in_bytes)
    dma.sendchannel.wait()  # one input's output fits in the IP's stream buffers
    dma.sendchannel.transfer(buf_in, nbytes=overlay.in_bytes)
    with pytest.raises(StreamContractError, match="before a receive is armed"):
        dma.sendchannel.wait()  # a second one does not


def test_contract_alignment_and_addresses(overlay, device):
    dma, buf_in, _ = _raw_dma(overlay)
    with pytest.raises(RuntimeError, match="aligned"):  # pynq's own check: no realignment engine
        dma.sendchannel.transfer(buf_in, start=2, nbytes=overlay.in_bytes)
    mmio = dma.mmio  # below pynq's checks, straight at the registers
    mmio.write(0x18, buf_in.physical_address + 2)
    with pytest.raises(StreamContractError, match="not aligned"):
        mmio.write(0x28, overlay.in_bytes)
    mmio.write(0x18, 0x00001000)  # nothing allocated there
    with pytest.raises(StreamContractError, match="not inside one allocated buffer"):
        mmio.write(0x28, overlay.in_bytes)
    mmio.write(0x00, 0x0)  # halt the channel
    mmio.write(0x18, buf_in.physical_address)
    with pytest.raises(StreamContractError, match="halted"):
        mmio.write(0x28, overlay.in_bytes)


@pytest.mark.parametrize("tamper", ["alter", "remove", "add", "driver"])
def test_driver_refuses_tampered_bundle(fresh_bundle, device, tamper):
    if tamper == "alter":
        p = fresh_bundle / "design.json"
        p.write_text(p.read_text().replace('"AP_RND_CONV"', '"AP_TRN"', 1))
    elif tamper == "remove":
        (fresh_bundle / "edge_asr_net.hwh").unlink()
    elif tamper == "add":
        (fresh_bundle / "extra.bit").write_bytes(b"\x00")
    else:
        p = fresh_bundle / "driver" / "edge_asr" / "deploy" / "stream.py"
        p.write_text(p.read_text() + "\n# changed\n")
    with pytest.raises(BundleError):
        EdgeAsrOverlay(fresh_bundle)
    assert device.bitfile_name is None and not device.regions  # nothing was loaded


def test_driver_refuses_another_board(bundle):
    from edge_asr.deploy.simdevice import SimulatedDevice
    dev = SimulatedDevice(board="zcu104")
    with pytest.raises(BundleError, match="board pynq-z2, this is zcu104"):
        EdgeAsrOverlay(bundle, device=dev)
    assert dev.bitfile_name is None


def test_driver_refuses_another_part(bundle):
    from edge_asr.deploy.simdevice import SimulatedDevice
    dev = SimulatedDevice(board="pynq-z2", part="xc7z010clg400-1")
    with pytest.raises(BundleError, match="part xc7z020clg400-1, this is xc7z010clg400-1"):
        EdgeAsrOverlay(bundle, device=dev)
    ok = EdgeAsrOverlay(bundle, device=SimulatedDevice(board="pynq-z2", part="xc7z020clg400-1"))
    assert ok.is_loaded()


def test_board_name_from_the_pynq_image(bundle, monkeypatch):
    from edge_asr.deploy.simdevice import SimulatedDevice
    monkeypatch.setenv("BOARD", "ZCU104")  # what a ZCU104 image sets
    dev = SimulatedDevice(board=None)
    with pytest.raises(BundleError, match="this is zcu104"):
        EdgeAsrOverlay(bundle, device=dev)
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    assert EdgeAsrOverlay(bundle, device=dev).bundle_info["board"] == "pynq-z2"


def test_simulation_only_bundle_needs_a_bitstream_on_a_board(bundle, device, monkeypatch):
    monkeypatch.setattr(device, "simulated", False)  # what a real board's device says
    with pytest.raises(BundleError, match="simulation-only"):
        EdgeAsrOverlay(bundle, device=device)


def test_input_errors(overlay):
    from edge_asr.deploy.driver import DriverError
    with pytest.raises(DriverError, match="shape"):
        overlay.predict(np.zeros((2, 98, 20)))
    with pytest.raises(DriverError, match="NaN"):
        overlay.predict(np.full((1,) + overlay.input_shape, np.nan))


def _run_from_bundle(bundle, code_or_args, env_extra=None, tmp_path=None):
    """Python with only the bundle's driver/ on the path (no repo, no host packages)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPATH"] = str(bundle / "driver")
    env.update(env_extra or {})
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def test_bundle_driver_runs_alone(fresh_bundle, tmp_path, golden):
    x, y = golden
    np.save(tmp_path / "x.npy", x[:5])
    code = f"""
import sys, json, numpy as np
from edge_asr.deploy.simdevice import SimulatedDevice
from edge_asr.deploy.driver import EdgeAsrOverlay
import edge_asr
SimulatedDevice.activate()
ol = EdgeAsrOverlay({str(fresh_bundle)!r})
out = ol.run_codes(np.load('x.npy').reshape(5, -1))
heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'hls4ml', 'qonnx', 'soundfile') if m in sys.modules)
print(json.dumps({{"file": edge_asr.__file__, "out": out.tolist(), "heavy": heavy}}))
"""
    res = _run_from_bundle(fresh_bundle, code, tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["file"].startswith(str(fresh_bundle / "driver"))
    assert got["heavy"] == []
    assert np.array_equal(np.array(got["out"]), y[:5])
    # Python's bytecode cache in driver/ does not make the bundle look tampered with
    assert list((fresh_bundle / "driver" / "edge_asr").rglob("*.pyc"))
    from edge_asr.deploy.bundle import verify_bundle
    verify_bundle(fresh_bundle)


def test_recognize_cli_on_the_pynq_backend(fresh_bundle, tmp_path):
    from tests.board.conftest import SHIPPED_MODEL
    clips = sorted((SHIPPED_MODEL / "examples").glob("*.wav"))[:4]
    check = _run_from_bundle(fresh_bundle, ["-m", "edge_asr.cli", "check", str(fresh_bundle)], None, tmp_path)
    assert check.returncode == 0 and "bundle" in check.stdout, check.stderr
    args = ["-m", "edge_asr.cli", "recognize", "--bundle", str(fresh_bundle), "--json", *map(str, clips)]
    board = _run_from_bundle(fresh_bundle, args, {"EDGE_ASR_PYNQ_DEVICE": "simulated"}, tmp_path)
    assert board.returncode == 0, board.stderr
    sim = _run_from_bundle(fresh_bundle, args + ["--backend", "sim"], None, tmp_path)
    assert sim.returncode == 0, sim.stderr
    b = [json.loads(line) for line in board.stdout.splitlines()]
    s = [json.loads(line) for line in sim.stdout.splitlines()]
    assert [r["file"] for r in b] == list(map(str, clips))
    assert [r["events"] for r in b] == [r["events"] for r in s]  # the board path decides as the simulator does
    words = {c.name.split("-")[0] for c in clips} - {"_silence_", "_unknown_"}
    assert words & {e["word"] for r in b for e in r["events"]}


@pytest.mark.parametrize("backend", ["pynq", "sim"])
def test_recognize_refuses_a_tampered_bundle(fresh_bundle, tmp_path, backend):
    # from_bundle leaves the check to the overlay on the pynq backend: it must still happen
    p = fresh_bundle / "design.json"
    p.write_text(p.read_text().replace('"AP_RND_CONV"', '"AP_TRN"', 1))
    args = ["-m", "edge_asr.cli", "recognize", "--bundle", str(fresh_bundle), "--backend", backend,
            str(tmp_path / "missing.wav")]
    res = _run_from_bundle(fresh_bundle, args, {"EDGE_ASR_PYNQ_DEVICE": "simulated"}, tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "altered" in res.stderr and "design.json" in res.stderr


def test_recognize_without_a_board_says_so(fresh_bundle, tmp_path):
    # x86, no board, no simulated device: one line, before any audio is read
    res = _run_from_bundle(fresh_bundle, ["-m", "edge_asr.cli", "recognize", "--bundle", str(fresh_bundle),
                                          str(tmp_path / "missing.wav")], None, tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "no PYNQ device" in res.stderr and "EDGE_ASR_PYNQ_DEVICE=simulated" in res.stderr
