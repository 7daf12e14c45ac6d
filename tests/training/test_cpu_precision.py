"""train.precision auto on CPU: bf16 autocast only where this CPU does bf16 natively and a
measured matmul is >= 1.2x faster under autocast; cached per CPU/torch; TUNELAB_CPU_BF16."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from tunelab import api
from tunelab.config.schema import TrainConfig
from tunelab.errors import TunelabError
from tunelab.models.planner.device import Device, detect_device
from tunelab.runs.plan import resolved_precision
from tunelab.training import cpu_precision as cp
from tunelab.training import loop
from tunelab.training.loggers import read_metrics
from tunelab.training.optim import build_optimizer


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(cp.ENV, raising=False)
    monkeypatch.setattr(cp, "SIZE", 128)  # emulated bf16 is ~50x slower than fp32 here


def _no_measure(*a, **k):
    raise AssertionError("measured, but the verdict needed no measurement")


def _cpuinfo_native() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    flags = next(line for line in text.splitlines() if line.startswith(("flags", "Features")))
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def test_verdict_follows_cpuinfo_and_skips_measuring_without_native_bf16(monkeypatch, capsys):
    if _cpuinfo_native():
        pytest.skip("this CPU has native bf16: the verdict is measured")
    monkeypatch.setattr(cp, "measure", _no_measure)
    verdict = cp.cpu_precision()
    assert (verdict.bf16, verdict.source, verdict.fp32_gflops) == (False, "no-native", None)
    assert not cp.cache_file().exists()  # nothing measured, nothing cached
    cfg = TrainConfig(precision="auto")
    assert loop._precision(cfg) == "no"
    assert "default train.precision = fp32  (auto: no native bf16 on this CPU)" in (
        capsys.readouterr().out
    )
    here = detect_device()
    if here.kind == "cpu":  # the planner gives the loop's answer for this CPU
        assert resolved_precision("auto", here) == "fp32"


def test_rule_native_and_measured_speedup(monkeypatch):
    monkeypatch.setattr(cp, "native_bf16", lambda: True)
    monkeypatch.setattr(cp, "measure", lambda: (100.0, 119.0))
    slow = cp.cpu_precision()
    assert (slow.bf16, slow.source) == (False, "probe")
    assert "under 1.2x" in slow.why
    monkeypatch.setattr(cp, "cpu_model", lambda: "a CPU where bf16 pays")
    monkeypatch.setattr(cp, "measure", lambda: (100.0, 250.0))
    fast = cp.cpu_precision()
    assert (fast.bf16, fast.why) == (True, "this CPU: 250 vs 100 GFLOP/s")
    here = Device("cpu", 16_000, "this")
    assert resolved_precision("auto", here) == "bf16"  # the cached verdict, as the loop sees it
    assert resolved_precision("auto", Device("cpu", 16_000, "planned", planned=True)) == "fp32"
    assert resolved_precision("fp32", here) == "fp32"


def test_cache_written_reused_and_rekeyed(monkeypatch):
    monkeypatch.setattr(cp, "native_bf16", lambda: True)
    calls = []
    real = cp.measure

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cp, "measure", counted)
    first = cp.cpu_precision()
    assert first.source == "probe" and len(calls) == 1
    assert first.fp32_gflops > 0 and first.bf16_gflops > 0
    path = cp.cache_file()
    stored = json.loads(path.read_text())
    (entry,) = stored.values()
    assert entry["cpu"] == cp.cpu_model() and entry["torch"] == torch.__version__
    assert (entry["fp32_gflops"], entry["bf16_gflops"], entry["bf16"]) == (
        first.fp32_gflops,
        first.bf16_gflops,
        first.bf16,
    )
    mtime = path.stat().st_mtime_ns

    second = cp.cpu_precision()
    assert second.source == "cache" and len(calls) == 1
    assert (second.fp32_gflops, second.bf16_gflops, second.bf16) == (
        first.fp32_gflops,
        first.bf16_gflops,
        first.bf16,
    )
    assert path.stat().st_mtime_ns == mtime

    monkeypatch.setattr(cp, "cpu_model", lambda: "another CPU")
    assert cp.cpu_precision().source == "probe" and len(calls) == 2
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert cp.cpu_precision().source == "probe" and len(calls) == 3
    assert len(json.loads(path.read_text())) == 3  # one verdict per CPU and torch version
    assert cp.cpu_precision().source == "cache" and len(calls) == 3


def test_override(monkeypatch):
    monkeypatch.setattr(cp, "measure", _no_measure)
    monkeypatch.setattr(cp, "native_bf16", lambda: True)
    monkeypatch.setenv(cp.ENV, "0")
    assert (cp.cpu_precision().bf16, cp.cpu_precision().source) == (False, "override")
    monkeypatch.setattr(cp, "native_bf16", lambda: False)
    monkeypatch.setenv(cp.ENV, "1")
    assert cp.cpu_precision().bf16 is True
    monkeypatch.setenv(cp.ENV, "yes")
    with pytest.raises(TunelabError, match="TUNELAB_CPU_BF16"):
        cp.cpu_precision()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU precision")
def test_forced_bf16_run_trains_under_autocast(tiny_model, toy_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(cp.ENV, "1")
    seen: list[tuple] = []
    models = []
    original = loop.build_optimizer

    def watching(model, cfg, lr):
        models.append(model)
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.register_forward_hook(
                    lambda m, i, out: seen.append((out.dtype, m.weight.dtype, m.training))
                )
        opt = original(model, cfg, lr)
        models.append(opt)
        return opt

    monkeypatch.setattr(loop, "build_optimizer", watching)
    cfg = tiny_config(tiny_model, toy_data, tmp_path / "run", train={"precision": "auto"})
    api.train(cfg, preflight=False)
    out = capsys.readouterr().out
    assert "default train.precision = bf16  (auto: bf16 autocast, TUNELAB_CPU_BF16=1)" in out
    training = [s for s in seen if s[2]]
    assert training and all(s[:2] == (torch.bfloat16, torch.float32) for s in training)
    model, opt = models
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    states = [s for s in opt.state.values() if "exp_avg" in s]
    assert states and all(s["exp_avg"].dtype == torch.float32 for s in states)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r.get("split") == "train"]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5  # as fp32 does (test_loop)


def test_cpu_adamw_is_fused_and_steps_like_the_default():
    if torch.cuda.is_available():
        pytest.skip("fused AdamW is the CPU choice")
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.LayerNorm(16))
    b = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.LayerNorm(16))
    b.load_state_dict(a.state_dict())
    cfg = TrainConfig(weight_decay=0.01)
    fused = build_optimizer(a, cfg, 1e-2)
    assert fused.defaults["fused"] is True
    plain = torch.optim.AdamW(
        [
            {"params": [b[0].weight], "weight_decay": 0.01},
            {"params": [b[0].bias, *b[1].parameters()], "weight_decay": 0.0},
        ],
        lr=1e-2,
    )
    x = torch.randn(8, 16)
    for _ in range(5):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_second_loop_in_the_process_may_change_precision():
    from accelerate import Accelerator

    first = loop._accelerator(Accelerator, "no")
    assert first.mixed_precision == "no"
    second = loop._accelerator(Accelerator, "bf16")  # accelerate alone raises ValueError here
    assert second.mixed_precision == "bf16"
    assert loop._accelerator(Accelerator, "no").mixed_precision == "no"
