"""synth -> train -> export -> eval end to end, through the CLI as a user runs it."""

import json

import numpy as np
import onnx
import pytest

from edge_asr.cli import main
from edge_asr.errors import ExportError
from edge_asr.runtime.modeldir import load_model_dir
from edge_asr.training import export as export_mod
from edge_asr.training.export import export


def test_cli_end_to_end(tmp_path, small_data, capsys):
    run, model = tmp_path / "run", tmp_path / "model"
    assert main(["train", str(small_data), "--out", str(run), "--epochs", "2", "--quiet", "--net", "mlp"]) == 0
    train_meta = json.loads((run / "train.json").read_text())
    assert len(train_meta["history"]) == 2 and train_meta["net"] == "mlp"
    assert main(["export", str(run), "--out", str(model), "--quiet"]) == 0
    meta = json.loads((model / "model.json").read_text())
    for key in ("labels", "feature", "input", "sample_rate", "data", "metrics"):
        assert key in meta
    assert meta["metrics"]["parity_max_abs"] <= 1e-5
    calib = np.load(model / "calib.npy")  # the calibration input convert and the demo take
    assert calib.dtype == np.float16 and calib.shape[1:] == tuple(meta["input"]["shape"][1:]) and len(calib) > 0
    assert np.isfinite(calib).all()
    graph = onnx.load(str(model / "model.onnx"))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version >= 13
    capsys.readouterr()
    assert main(["eval", str(model), str(small_data), "--json", "--record"]) == 0
    res = json.loads(capsys.readouterr().out)
    n = res["n"]
    assert n == sum(map(sum, res["confusion"])) and 0.0 <= res["accuracy"] <= 1.0
    assert np.trace(np.array(res["confusion"])) == round(res["accuracy"] * n)
    assert json.loads((model / "model.json").read_text())["metrics"]["test_accuracy"] == res["accuracy"]
    # the breakdowns cover every clip once; noise groups follow the manifest's augmentation
    from edge_asr.data.manifest import read_manifest
    rows = read_manifest(small_data, "test")
    for group in ("engine", "condition", "noise", "reverb", "rendering"):
        assert sum(v["n"] for v in res[f"per_{group}"].values()) == n
    babble = [r for r in rows if "noise=babble@" in r.augmentation]
    assert babble and sum(v["n"] for k, v in res["per_noise"].items() if k.startswith("babble@")) == len(babble)
    assert res["per_reverb"]["reverb"]["n"] == sum("reverb=" in r.augmentation for r in rows)
    assert res["per_rendering"]["as voiced"]["n"] == sum("shift=" not in r.augmentation for r in rows)
    # each other word: how often, and as what, it was heard; together they are the
    # confusion matrix's _unknown_ row
    unk = res["labels"].index("_unknown_")
    words = res["per_unknown_word"]
    assert set(words) == {r.text for r in rows if r.label == "_unknown_"}
    for w, v in words.items():
        assert v["n"] == sum(r.text == w for r in rows if r.label == "_unknown_") == sum(v["heard_as"].values())
        assert v["accuracy"] == v["heard_as"].get("_unknown_", 0) / v["n"]
    row = {label: sum(v["heard_as"].get(label, 0) for v in words.values()) for label in res["labels"]}
    assert [row[label] for label in res["labels"]] == res["confusion"][unk]


def test_noise_group():
    from edge_asr.training.evaluate import noise_group
    assert noise_group("speed=1.01;noise=brown@12dB;peak=4dB") == "brown@10-19dB"
    assert noise_group("noise=babble@8dB;telephone") == "babble@5-9dB"
    assert noise_group("noise=white@25dB") == "white@20+dB" and noise_group("noise=pink@3dB") == "pink@<5dB"
    assert noise_group("clean;peak=-19dB") == "none" and noise_group("noise=hum;peak=-27dB") == "hum alone"


def test_report_names_the_other_words_taken_for_digits():
    from edge_asr.training.evaluate import format_report
    res = {"split": "test", "data": "d", "n": 12, "accuracy": 0.5, "labels": ["eight", "_unknown_"],
           "confusion": [[2, 0], [6, 4]],
           **{f"per_{g}": {} for g in ("engine", "condition", "noise", "reverb", "rendering")},
           "per_unknown_word": {"h": {"n": 5, "accuracy": 0.0, "heard_as": {"eight": 5}},
                                "u": {"n": 2, "accuracy": 0.5, "heard_as": {"_unknown_": 1, "eight": 1}},
                                "tree": {"n": 3, "accuracy": 1.0, "heard_as": {"_unknown_": 3}}}}
    last = format_report(res).splitlines()[-1]
    # worst first; words always heard right are left out
    assert last == "other words most often not heard as _unknown_: h 5/5 (as eight), u 1/2 (as eight)"


def test_extra_training_data(tmp_path, small_data, capsys):
    # A second data set's train split joins training; validation stays on the first's.
    import shutil

    from edge_asr.data.manifest import read_manifest
    run = tmp_path / "run"
    n_train = len(read_manifest(small_data, "train"))
    assert main(["train", str(small_data), "--extra-train", str(small_data), "--out", str(run),
                 "--epochs", "1", "--quiet", "--net", "mlp"]) == 0
    assert f"on {2 * n_train} clips, validating on {len(read_manifest(small_data, 'valid'))}" in capsys.readouterr().err
    meta = json.loads((run / "train.json").read_text())
    assert [e["clips"] for e in meta["extra_train"]] == [n_train]
    export(run, tmp_path / "model", progress=False, log=lambda m: None)  # the model says what it was trained on
    model_meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert model_meta["extra_train_data"] == [json.loads((small_data / "data.json").read_text())]
    # an extra set whose train split holds a held-out speaker of the first is refused
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    shutil.copy(small_data / "data.json", leaky / "data.json")
    lines = (small_data / "manifest.csv").read_text().splitlines()
    test_speaker = next(line.split(",")[5] for line in lines[1:] if line.split(",")[7] == "test"
                        and line.split(",")[5] != "noise")
    (leaky / "manifest.csv").write_text("\n".join(
        [lines[0]] + [",".join(f[:5] + [test_speaker] + f[6:]) for f in (line.split(",") for line in lines[1:])
                      if f[7] == "train"]) + "\n")
    assert main(["train", str(small_data), "--extra-train", str(leaky), "--out", str(tmp_path / "r2"),
                 "--epochs", "1", "--quiet", "--net", "mlp"]) == 2
    err = capsys.readouterr().err
    assert "held-out speaker" in err and test_speaker in err and not (tmp_path / "r2").exists()


def test_export_has_no_batchnorm_and_ends_in_softmax(small_model):
    graph = onnx.load(str(small_model / "model.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "BatchNormalization" not in ops and ops[-1] == "Softmax"
    assert {"Conv", "Relu", "MaxPool"} <= set(ops)


def test_export_parity_failure_writes_nothing(tmp_path, small_run, small_data, monkeypatch):
    monkeypatch.setattr(export_mod, "PARITY_TOL", -1.0)  # any difference, even 0, now fails
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export(small_run, tmp_path / "m", data_dir=small_data, progress=False, log=lambda m: None)
    assert not any(tmp_path.iterdir())


def test_export_refuses_overwrite_and_bad_run(tmp_path, small_model, small_run, capsys):
    assert main(["export", str(small_run), "--out", str(small_model), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a training run" in capsys.readouterr().err
    # a damaged train.json: one line, nothing written
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(small_run, bad)
    (bad / "train.json").write_text("{not json")
    assert main(["export", str(bad), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "not a train.json" in err and err.count("\n") == 1 and not (tmp_path / "y").exists()


def test_eval_without_labels_in_model(tmp_path, small_model, small_data, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.onnx").write_bytes((small_model / "model.onnx").read_bytes())
    (bad / "model.json").write_text("{not json")
    assert main(["eval", str(bad), str(small_data)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert load_model_dir(small_model).labels[-2:] == ["_unknown_", "_silence_"]


def test_noise_mix_adds_noise_at_the_asked_level():
    import torch

    from edge_asr.training.batches import NOISE_MIX_SNR_DB, mix_noise
    gen = torch.Generator().manual_seed(0)
    speech = torch.log(torch.rand(200, 40, 98, generator=gen) * 5 + 1e-6)
    bank = torch.rand(7, 40, 98, generator=gen) + 0.1
    assert torch.equal(mix_noise(speech, bank, 0.0, gen), speech)  # share 0: nothing changes
    mixed = mix_noise(speech, bank, 1.0, gen)
    added = torch.exp(mixed) - torch.exp(speech)
    assert (added > 0).all()  # power is only ever added
    snr = 10 * torch.log10(torch.exp(speech).mean(dim=(1, 2)) / added.mean(dim=(1, 2)))
    assert NOISE_MIX_SNR_DB[0] - 0.1 <= snr.min() and snr.max() <= NOISE_MIX_SNR_DB[1] + 0.1
    assert snr.max() - snr.min() > 10  # levels drawn over the range, not one level
    half = mix_noise(speech, bank, 0.5, gen)
    changed = (half != speech).flatten(1).any(dim=1).float().mean()
    assert 0.35 < changed < 0.65


def test_train_with_noise_mix(tmp_path, small_data, capsys):
    run = tmp_path / "run"
    assert main(["train", str(small_data), "--out", str(run), "--epochs", "1", "--quiet", "--net", "mlp",
                 "--noise-mix", "0.5"]) == 0
    meta = json.loads((run / "train.json").read_text())
    assert meta["train_config"]["noise_mix"] == 0.5
    # the mix reaches the training loop: the same seed without it trains on other batches
    assert main(["train", str(small_data), "--out", str(tmp_path / "r0"), "--epochs", "1", "--quiet",
                 "--net", "mlp"]) == 0
    plain = json.loads((tmp_path / "r0" / "train.json").read_text())
    assert plain["history"][0]["loss"] != meta["history"][0]["loss"]
    assert main(["train", str(small_data), "--out", str(tmp_path / "r2"), "--epochs", "1", "--quiet",
                 "--noise-mix", "1.5"]) == 2
    assert "--noise-mix 1.5" in capsys.readouterr().err and not (tmp_path / "r2").exists()


def test_noise_mix_needs_noise_clips(tmp_path, small_data, capsys):
    # a train split without _silence_ clips has no noise to mix: one line, no run left behind
    import shutil
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    lines = (data / "manifest.csv").read_text().splitlines()
    (data / "manifest.csv").write_text("\n".join(
        [lines[0]] + [line for line in lines[1:] if line.split(",")[1] != "_silence_"]) + "\n")
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet",
                 "--noise-mix", "0.5"]) == 2
    assert "--noise-mix needs noise clips" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_distill_loss_pulls_the_student_to_the_teacher():
    import torch

    from edge_asr.training.teacher import distill_loss
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    assert distill_loss(teacher.clone(), teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(2, 3, requires_grad=True)
    loss = distill_loss(student, teacher, 2.0)
    assert loss.item() > 0
    loss.backward()
    stepped = (student - student.grad).detach()
    assert distill_loss(stepped, teacher, 2.0).item() < loss.item()
    # one step already ranks the classes first as the teacher does
    assert stepped.argmax(1).tolist() == teacher.argmax(1).tolist()


def test_train_with_a_teacher(tmp_path, small_data, small_run, capsys):
    def history(run):
        return json.loads((run / "train.json").read_text())

    def train_mlp(out, *extra):
        return main(["train", str(small_data), "--out", str(tmp_path / out), "--epochs", "1", "--quiet",
                     "--net", "mlp", *extra])

    assert train_mlp("student", "--teacher", str(small_run), "--distill-weight", "0.7") == 0
    meta = history(tmp_path / "student")
    assert meta["train_config"]["teacher"] == str(small_run) and meta["train_config"]["distill_weight"] == 0.7
    assert train_mlp("plain") == 0 and train_mlp("weight0", "--teacher", str(small_run), "--distill-weight", "0") == 0
    plain = history(tmp_path / "plain")["history"][0]["loss"]
    # the teacher reaches the loss; at weight 0 it leaves the run exactly as without it
    assert meta["history"][0]["loss"] != plain
    assert history(tmp_path / "weight0")["history"][0]["loss"] == plain
    capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["--teacher", "{data}"], "not a training run"),
    (["--teacher", "{run}", "--n-mels", "32"], "mel front end differs"),
    (["--teacher", "{run}", "--distill-weight", "1.5"], "--distill-weight 1.5"),
    (["--distill-temperature", "3"], "--distill-temperature only applies to distillation"),
    (["--net-option", "channels"], "give KEY=INTEGER"),
    (["--net-option", "width=8"], "has no option 'width'"),
])
def test_train_refuses_a_bad_teacher_or_net_option(tmp_path, small_data, small_run, capsys, args, message):
    args = [a.format(data=small_data, run=small_run) for a in args]
    assert main(["train", str(small_data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_net_option_reaches_the_net(tmp_path, small_data):
    assert main(["train", str(small_data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet",
                 "--net-option", "channels=8", "--net-option", "hidden=4"]) == 0
    meta = json.loads((tmp_path / "run" / "train.json").read_text())
    assert meta["net_kwargs"]["channels"] == 8 and meta["net_kwargs"]["hidden"] == 4
    assert meta["parameters"] < 2000


def test_export_names_a_nan_weight(tmp_path, small_run, capsys):
    import shutil

    import torch
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    state = torch.load(run / "best.pt", weights_only=True)
    key = next(k for k, v in state.items() if torch.is_floating_point(v) and v.ndim > 1)
    state[key].view(-1)[0] = float("nan")
    torch.save(state, run / "best.pt")
    assert main(["export", str(run), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(key) in err and "NaN" in err
    assert not (tmp_path / "m").exists()
