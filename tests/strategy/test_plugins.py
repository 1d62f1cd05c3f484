"""Strategy plugins: loading by module path and entry point, params validated by the
plugin's model, and a misbehaving plugin refused with reason codes while the daemon runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mmbot.domain.instrument import Instrument
from mmbot.domain.orders import Quote, Side
from mmbot.errors import ConfigError
from mmbot.plugins import build_plugin
from mmbot.strategy.model import Decision
from mmbot.strategy.plugin import (
    MODEL_BAD_DECISION,
    MODEL_BAD_PRICE,
    MODEL_CROSSED,
    MODEL_OFF_LOT,
    MODEL_RAISED,
    check_decision,
)
from tests.conftest import CAPTURE, MMBOT
from tests.strategy.example_plugin import EXAMPLE, PROFILE, install_example, plugin_env

INST = Instrument.from_symbol("BTC/USDT", tick_size="0.01", step_size="0.00001", min_notional="5")
FAULTY = "tests.strategy.faulty_plugin:FaultyModel"


def _q(side: Side, price: object, qty: int = 1000) -> Quote:
    return Quote(side=side, price_ticks=price, qty_lots=qty)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        (Decision(quotes=(_q(Side.BUY, float("nan")),)), MODEL_BAD_PRICE),
        (Decision(quotes=(_q(Side.BUY, 100.5),)), MODEL_BAD_PRICE),
        (Decision(quotes=(_q(Side.BUY, 101), _q(Side.SELL, 101))), MODEL_CROSSED),
        (Decision(quotes=(_q(Side.SELL, 101, 1500),)), MODEL_OFF_LOT),
        (Decision(hedge=_q(Side.SELL, 101, 1)), MODEL_OFF_LOT),
        ("quotes", MODEL_BAD_DECISION),
        (Decision(quotes=("bid",)), MODEL_BAD_DECISION),  # type: ignore[arg-type]
    ],
)
def test_check_decision_when_nonsense_then_reason_code(decision: object, reason: str) -> None:
    bad = check_decision(decision, INST)
    assert bad is not None and bad[0] == reason


def test_check_decision_when_sane_two_sided_then_none() -> None:
    assert check_decision(Decision(quotes=(_q(Side.BUY, 100), _q(Side.SELL, 101))), INST) is None


def test_build_plugin_when_module_path_then_validated_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    model = build_plugin("mmbot_microprice.model:MicroPriceQuoter", {"levels": 3, "order_size": 0.02}, INST)
    assert type(model).__name__ == "MicroPriceQuoter"
    assert model.params.levels == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        ("no_such_module_xyz:Model", {}, "cannot import module 'no_such_module_xyz'"),
        ("tests.strategy.faulty_plugin:Missing", {}, "has no class 'Missing'"),
        ("no_such_entry_point", {}, "no entry point of that name in 'mmbot.strategies'"),
        (FAULTY, {"size_lots": "many"}, "strategy.params.size_lots"),
        (FAULTY, {"sizes": 1}, "strategy.params.sizes"),
    ],
)
def test_build_plugin_when_bad_spec_or_params_then_config_error_naming_it(spec: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_plugin(spec, params, INST)


def test_run_when_plugin_raises_nan_crossed_off_lot_then_refusals_counted_and_run_completes(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    cfg = tmp_path / "faulty.yaml"
    cfg.write_text(f'strategy:\n  model: "{FAULTY}"\n  params:\n    raise_on_mid: false\n')
    out = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "run", "--config", str(cfg), "--speed", "0", "--no-status", "--data", CAPTURE[0], "--summary-json", str(out)],
        cwd=tmp_path, env=plugin_env(clean_env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    denied = summary["risk_denials_by_reason"]
    for reason in (MODEL_RAISED, MODEL_BAD_PRICE, MODEL_CROSSED, MODEL_OFF_LOT, MODEL_BAD_DECISION):
        assert denied.get(reason, 0) > 0, (reason, denied)
    assert summary["fills"] > 0  # the sane steps still quote and trade: the daemon kept running
    assert summary["risk_denials"] >= sum(denied[r] for r in (MODEL_RAISED, MODEL_BAD_PRICE, MODEL_CROSSED))


def test_backtest_when_example_installed_then_entry_point_profile_runs(tmp_path: Path, clean_env: dict[str, str]) -> None:
    target = install_example(tmp_path)
    out = tmp_path / "s.json"
    proc = subprocess.run(
        [*MMBOT, "backtest", "--config", str(PROFILE), "--data", CAPTURE[0], "--summary-json", str(out)],
        cwd=tmp_path, env=plugin_env(clean_env, str(target)), capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["fills"] > 0
    assert not any(r.startswith("MODEL_") for r in summary["risk_denials_by_reason"])
