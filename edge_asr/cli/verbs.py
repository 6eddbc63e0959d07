"""What each `edge-asr` verb does: parse-level checks, then one call into its stage, then
printing. Each verb's extra is required before its stage is imported."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..errors import InputError
from ..extras import require_extra


def cmd_data_synth(a: argparse.Namespace) -> int:
    """`edge-asr data synth`; returns the exit code."""
    require_extra("data", "edge-asr data synth")
    from ..data.synth import synth
    synth(a.out, size=a.size, seed=a.seed, jobs=a.jobs, force=a.force, progress=not a.quiet,
          log=lambda m: print(m, file=sys.stderr), exclude_engines=a.exclude_engine,
          train_only_words=a.train_only_words)
    return 0


def cmd_data_human(a: argparse.Namespace) -> int:
    """`edge-asr data human`; returns the exit code."""
    require_extra("data", "edge-asr data human")
    from ..data.human import make_human_set
    make_human_set(a.out, copies=a.copies, seed=a.seed, force=a.force, log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_data_running(a: argparse.Namespace) -> int:
    """`edge-asr data running`; returns the exit code."""
    require_extra("data", "edge-asr data running")
    from ..data.running import make_running_set
    make_running_set(a.out, hours=a.hours, split=a.split, seed=a.seed, force=a.force, progress=not a.quiet,
                     homophones=a.homophones,
                     log=lambda m: print(m, file=sys.stderr), windows=a.windows)
    return 0


def cmd_data_import(a: argparse.Namespace) -> int:
    """`edge-asr data import`; returns the exit code."""
    from ..data.importer import SplitRule, import_corpus
    names = {flag: tuple(n.strip() for n in value.split(",") if n.strip())
             for flag, value in (("valid", a.valid_speakers), ("test", a.test_speakers))}
    if a.split and (names["valid"] or names["test"] or a.valid_paths or a.test_paths):
        raise InputError("--split puts every clip in one split: leave out --valid-/--test-speakers and -paths")
    splits = SplitRule(split=a.split, valid_speakers=names["valid"], test_speakers=names["test"],
                       valid_paths=tuple(a.valid_paths), test_paths=tuple(a.test_paths))
    import_corpus(a.src, a.out, layout=a.layout, mapping=a.map, force=a.force, progress=not a.quiet,
                  log=lambda m: print(m, file=sys.stderr), splits=splits)
    return 0


def cmd_data_augment(a: argparse.Namespace) -> int:
    """`edge-asr data augment`; returns the exit code."""
    require_extra("data", "edge-asr data augment")
    from ..data.augment_corpus import AugmentSpec, augment_corpus
    try:
        lo, hi = (float(v) for v in a.snr.split(","))
    except ValueError as exc:
        raise InputError(f"--snr {a.snr!r}: give LOW,HIGH in dB, e.g. 0,20") from exc
    spec = AugmentSpec(copies=a.copies, seed=a.seed, noise_p=a.noise_p, snr_db=(lo, hi), reverb=a.reverb,
                       telephone=a.telephone)
    augment_corpus(a.src, a.out, spec, noise=a.noise, jobs=a.jobs, force=a.force, progress=not a.quiet,
                   log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_data_mine(a: argparse.Namespace) -> int:
    """`edge-asr data mine`; returns the exit code."""
    require_extra("train", "edge-asr data mine")
    from ..training.mining import mine
    mine(a.model, a.src, a.out, threshold=a.threshold, split=a.split, force=a.force, progress=not a.quiet,
         log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_data_connected(a: argparse.Namespace) -> int:
    """`edge-asr data connected`; returns the exit code."""
    require_extra("data", "edge-asr data connected")
    from ..data.connected import make_connected_set
    make_connected_set(a.out, n=a.n, seed=a.seed, force=a.force, split=a.split,
                       log=lambda m: print(m, file=sys.stderr))
    return 0


def _net_options(pairs: list[str]) -> dict:
    """--net-option KEY=INT pairs -> constructor arguments of the net."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value.lstrip("-").isdigit():
            raise InputError(f"--net-option {pair!r}: give KEY=INTEGER, e.g. channels=128")
        options[key] = int(value)
    return options


def _data_weights(pairs: list[str]) -> dict:
    """--data-weight DIR=W pairs -> {DIR: W}."""
    weights = {}
    for pair in pairs:
        d, sep, w = pair.rpartition("=")
        try:
            weights[d] = float(w)
        except ValueError:
            sep = ""
        if not sep or not d:
            raise InputError(f"--data-weight {pair!r}: give DIR=WEIGHT, e.g. data/fsdd=3")
    return weights


def cmd_train(a: argparse.Namespace) -> int:
    """`edge-asr train`; returns the exit code."""
    require_extra("train", "edge-asr train")
    from ..frontend.features import FeatureConfig
    from ..training.distributed import Launch
    from ..training.spec import TrainConfig
    from ..training.train import train
    distill = {k: v for k, v in (("distill_weight", a.distill_weight),
                                 ("distill_temperature", a.distill_temperature)) if v is not None}
    if distill and not a.teacher:
        raise InputError(f"--{next(iter(distill)).replace('_', '-')} only applies to distillation: "
                         "give --teacher RUN as well, or leave it out")
    qat_defaults = {"weight_bits": 4, "act_bits": 4, "bias_bits": 16, "first_last_bits": None, "init": None}
    qat_flags = [f for f, default in qat_defaults.items() if getattr(a, f) != default]
    if qat_flags and not a.qat:
        raise InputError(f"--{qat_flags[0].replace('_', '-')} applies to quantization-aware training: add --qat")
    qat = None
    if a.qat:
        require_extra("qat", "edge-asr train --qat")
        qat = {"weight_bits": a.weight_bits, "act_bits": a.act_bits, "bias_bits": a.bias_bits,
               "first_last_bits": a.first_last_bits}
    cfg = TrainConfig(net=a.net, net_options=_net_options(a.net_option), epochs=a.epochs, qat=qat, init=a.init or "",
                      batch_size=a.batch_size, lr=a.lr, patience=a.patience, seed=a.seed, threads=a.threads,
                      engine_balance=a.engine_balance, noise_mix=a.noise_mix, teacher=a.teacher or "",
                      lr_scaling=a.lr_scaling, profile=a.profile, data_weights=_data_weights(a.data_weight),
                      **distill)
    fcfg = FeatureConfig(n_mels=a.n_mels, fmax=a.fmax, n_mfcc=a.n_mfcc, cmn=a.cmn)
    fcfg.validate()
    where = Launch(nproc=a.nproc, nnodes=a.nnodes, node_rank=a.node_rank, master_addr=a.master_addr,
                   master_port=a.master_port)
    train(a.data, a.out, cfg, fcfg, force=a.force, progress=not a.quiet, log=lambda m: print(m, file=sys.stderr),
          extra_train=a.extra_train, resume=a.resume, where=where, debug=getattr(a, "debug", False),
          extra_valid=a.extra_valid)
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    """`edge-asr export`; returns the exit code."""
    require_extra("train", "edge-asr export")
    from ..training.export import export
    export(a.run, a.out, data_dir=a.data, name=a.name, opset=a.opset, force=a.force, progress=not a.quiet,
           log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    """`edge-asr eval`; returns the exit code."""
    from ..training.evaluate import evaluate, format_report, record_metrics
    if a.record_as and not a.record:
        raise InputError("--record-as names what --record writes; give --record too")
    if a.record_as and not re.fullmatch(r"[a-z][a-z0-9_-]*", a.record_as):
        raise InputError(f"--record-as {a.record_as!r}: use lower-case letters, digits, - and _ (e.g. human)")
    if (a.set_threshold or a.report or a.target_fire_rate is not None) and not a.running:
        raise InputError("--set-threshold, --target-fire-rate and --report need --running DIR (`edge-asr data running`)")
    if a.report:
        from ..atomic import refuse_existing
        refuse_existing(Path(a.report), False, "--report")
    if a.running:  # every check before any work
        from ..data.manifest import read_manifest
        from ..training.streamed import check_threshold_sets
        read_manifest(a.running)
        if a.set_threshold:
            check_threshold_sets(a.data, a.split, a.running)
    res = evaluate(a.model, a.data, split=a.split, progress=not (a.quiet or a.json))
    if a.record:
        record_metrics(a.model, res, a.record_as)
    text = format_report(res)
    if a.running:
        from ..runtime.recognizer import Recognizer
        from ..training.streamed import (
            detection_report,
            format_streamed,
            record_streamed,
            record_threshold,
            streamed_figures,
        )
        streamed = streamed_figures(Recognizer.from_model(a.model), a.data, a.split, a.running,
                                    a.target_fa_per_hour, progress=not (a.quiet or a.json),
                                    target_fire_rate=a.target_fire_rate)
        res["streamed"] = streamed
        text += "\n\n" + format_streamed(streamed)
        if a.record:
            record_streamed(a.model, streamed, a.record_as)
        if a.set_threshold:
            record_threshold(a.model, streamed)
            text += f"\nwrote threshold {streamed['operating_point']['threshold']:.2f} into {a.model}/model.json"
        if a.report:
            detection_report(streamed, a.report)
            text += f"\nreport: {a.report}"
    print(json.dumps(res) if a.json else text)
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    """`edge-asr convert`; returns the exit code."""
    require_extra("convert", "edge-asr convert")
    from ..hw.convert import ConvertOptions, convert
    opts = ConvertOptions(board=a.board, io=a.io, reuse=a.reuse, bits=a.bits, clock_ns=a.clock_ns,
                          calib=a.calib, config=a.config, budget=a.budget)
    convert(a.model, a.out, opts, force=a.force, log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_cost(a: argparse.Namespace) -> int:
    """`edge-asr cost`; returns the exit code (1 when the design does not fit its board)."""
    from ..hw.cost import cost_record, format_cost
    from ..hw.cost_check import error_line, model_error
    from ..ir.design import Design
    record = cost_record(Design.load(a.design), a.budget)
    synth = None
    if a.synth:  # Yosys's counts of the RTL kernels beside the estimates
        require_extra("rtl", "edge-asr cost --synth")
        from ..rtl.synth import format_result, synth_design
        synth = synth_design(a.design, max_products=a.max_products, log=lambda m: print(m, file=sys.stderr))
    if a.json:
        print(json.dumps({**record, "model_error": model_error(), **({"synth": synth} if synth else {})}))
    else:
        print(format_cost(record) + "\n" + error_line() + ("\n\n" + format_result(synth) if synth else ""))
    return 0 if record["fits"] or not record["board"] else 1


def cmd_check(a: argparse.Namespace) -> int:
    """`edge-asr check`; returns the exit code."""
    from ..ir.manifest import verify_manifest
    m = verify_manifest(a.dir)
    if m.get("kind") == "bundle":
        from ..deploy.bundle import verify_bundle
        verify_bundle(a.dir)
    if m.get("kind") == "design":  # `bundle` checked a bundle's design; the cost model is not on a board
        from ..hw.cost import check_recorded_cost
        from ..ir.design import Design
        check_recorded_cost(Design.load(a.dir, verify=False))  # the manifest was checked just now
    print(f"{a.dir}: ok ({m.get('kind')}, {len(m['files'])} files match manifest.json)")
    return 0


def cmd_rtl(a: argparse.Namespace) -> int:
    """`edge-asr rtl`; returns the exit code."""
    require_extra("rtl", "edge-asr rtl")
    from ..rtl.flow import write_rtl
    out = write_rtl(a.design, a.out, force=a.force, log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {out}")
    return 0


def cmd_synth(a: argparse.Namespace) -> int:
    """`edge-asr synth`; returns the exit code."""
    require_extra("rtl", "edge-asr synth")
    from ..rtl.synth import format_result, synth_design
    res = synth_design(a.design, max_products=a.max_products, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(res) if a.json else format_result(res))
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    """`edge-asr verify`; returns the exit code."""
    if a.against == "rtl":
        require_extra("rtl", "edge-asr verify --against rtl")
        from ..rtl.flow import format_result as format_rtl
        from ..rtl.flow import verify_rtl
        res = verify_rtl(a.design, n=a.n, max_products=a.max_products, data=a.data,
                         log=lambda m: print(m, file=sys.stderr))
        print(json.dumps(res) if a.json else format_rtl(res))
        if res["mismatches"]:
            print(f"edge-asr verify: {res['mismatches']} kernel outputs differ between Verilator and the simulator",
                  file=sys.stderr)
            return 1
        return 0
    if a.max_products is not None:
        raise InputError("--max-products applies to --against rtl")
    if a.against in ("csim", "qonnx"):
        require_extra("convert", f"edge-asr verify (against {a.against})")
    from ..hw.verify import format_result, verify
    res = verify(a.design, against=a.against, n=a.n, data=a.data, bitexact=a.bitexact,
                 log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(res) if a.json else format_result(res))
    if a.against == "qonnx" and res["mismatches"]:
        print(f"edge-asr verify: {res['mismatches']} logits differ between the simulator and QONNX's executor "
              f"(at most {res['max_abs_lsb']:g} LSB)", file=sys.stderr)
        return 1
    if a.bitexact and res["mismatches"]:
        print(f"edge-asr verify: {res['mismatches']} output values differ between the simulator and "
              f"{a.against}", file=sys.stderr)
        return 1
    if res["top1_agreement"] < a.min_agreement:
        print(f"edge-asr verify: top-1 agreement {res['top1_agreement']:.4f} is below --min-agreement "
              f"{a.min_agreement}", file=sys.stderr)
        return 1
    return 0


def cmd_sim(a: argparse.Namespace) -> int:
    """`edge-asr sim`; returns the exit code."""
    from ..runtime.offline import format_sim, run_sim
    res = run_sim(a.design, a.input, trace=a.trace)
    print(json.dumps(res) if a.json else format_sim(res))
    return 0


def cmd_vectors(a: argparse.Namespace) -> int:
    """`edge-asr vectors`; returns the exit code."""
    if a.check:
        from ..sim.vectors import check_vectors
        n = check_vectors(a.out)
        print(f"{a.out}: simulator vs stored C-sim outputs: {n} differing values")
        return 1 if n else 0
    if not a.design or not a.inputs:
        raise InputError("writing vectors needs DESIGN and --inputs X.npy (or use --check)")
    require_extra("convert", "edge-asr vectors (C simulation)")
    from ..hw.csim import write_golden_vectors
    n = write_golden_vectors(a.design, a.inputs, a.out, wild=a.wild, force=a.force,
                             log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {n} golden vectors (C-sim) to {a.out}")
    return 0


def cmd_recognize(a: argparse.Namespace) -> int:
    """`edge-asr recognize`; returns the exit code."""
    from ..frontend.audio import pcm_stdin_chunks
    from ..runtime.recognizer import Recognizer, RecognizerConfig
    cfg = RecognizerConfig(stride_ms=a.stride_ms, threshold=a.threshold)
    rec = Recognizer.open(model=a.model, design=a.design, bundle=a.bundle, backend=a.backend, config=cfg)

    def describe(e: dict) -> str:
        return f"{e['word']} {e['start']:.2f}-{e['end']:.2f}s ({e['score']:.2f})"

    for path in a.audio:
        live = path == "-" and not a.json  # a microphone: one line per word as it is heard
        if path == "-":
            on_event = (lambda e: print(f"-: {describe(e)}", flush=True)) if live else None
            res = rec.recognize_chunks(pcm_stdin_chunks(sys.stdin.buffer), on_event=on_event)
        else:
            res = rec.recognize_file(path)
        res = {"file": path, **res}
        if a.json:
            print(json.dumps(res), flush=True)
        elif not live or not res["events"]:
            words = ", ".join(describe(e) for e in res["events"])
            print(f"{path}: {words or 'no keywords'}", flush=True)
    return 0


def cmd_bundle(a: argparse.Namespace) -> int:
    """`edge-asr bundle`; returns the exit code."""
    from ..deploy.bundle import write_bundle
    from ..hw.cost import check_recorded_cost
    from ..ir.design import Design
    check_recorded_cost(Design.load(a.design, kind="design"))  # what goes to the board is what was costed
    write_bundle(a.design, a.out, bit=a.bit, hwh=a.hwh, force=a.force, log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    """`edge-asr build`; returns the exit code."""
    require_extra("convert", "edge-asr build")
    from ..hw.build import build
    build(a.design, log=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    """`edge-asr demo`; returns the exit code."""
    require_extra("convert", "edge-asr demo")
    from ..demo import demo
    from ..resources import shipped_model
    # --model: a model directory, or the name of a shipped one (kws-digits-w4a4)
    model = shipped_model() if not a.model else Path(a.model) if ("/" in a.model or Path(a.model).is_dir()) \
        else shipped_model(a.model)
    return demo(model, a.examples, a.report, log=lambda m: print(m, file=sys.stderr), force=a.force)
