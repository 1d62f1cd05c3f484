"""The composed model inside the real engine and simulated venue, on the start of the bundled capture."""

from __future__ import annotations

from itertools import islice

from mmbot.config.settings import load_settings
from mmbot.marketdata.capture import CaptureParser, ReadStats, read_events
from mmbot.wiring import build_replay
from tests.conftest import CAPTURE


def _replay(overrides: dict[str, object], n_events: int) -> list[object]:
    settings = load_settings(None, environ={}, overrides=overrides)
    built = build_replay(settings, "20260101T000000Z-test0001")
    seen: list[object] = []
    for event in islice(read_events(CAPTURE, CaptureParser([built.instrument]), ReadStats()), n_events):
        built.session.step(event)
        seen.extend(built.engine.drain_events())
    built.session.flush()
    seen.extend(built.engine.drain_events())
    return seen


def test_engine_when_hedge_enabled_and_inventory_above_threshold_then_taker_hedge_fills_with_taker_fee() -> None:
    events = _replay({"strategy": {"hedge": {"enabled": True, "threshold": 0.005, "cooldown_ms": 500}}}, 30_000)

    fills = [e.payload for e in events if e.kind == "fill"]  # type: ignore[attr-defined]
    hedges = [f for f in fills if f["reason"] == "hedge_taker"]
    assert hedges, f"no hedge fill among {len(fills)} fills"
    assert all(f["liquidity"] == "taker" and float(f["fee"]) > 0 for f in hedges)  # 1 bps taker fee
    assert all(f["liquidity"] == "maker" for f in fills if f["reason"] != "hedge_taker")


def test_engine_when_avellaneda_model_then_warms_up_then_quotes_from_the_model() -> None:
    events = _replay({"strategy": {"model": "avellaneda_stoikov", "spread_bps": 1, "avellaneda": {"gamma": 0.03, "horizon_s": 10, "warmup_s": 30}}}, 60_000)

    reasons = [e.payload["reasons"][0] for e in events if e.kind == "decision"]  # type: ignore[attr-defined]
    assert reasons[0] == "warmup"
    assert "avellaneda_stoikov" in reasons
    assert reasons.index("avellaneda_stoikov") > 0
