"""Config hardening (issue 29, build item 6): finite and bounded numbers, every MMBOT_*
variable applied or rejected, strict YAML, secrets never echoed, clear file errors.

CLI-facing cases run the real ``mmbot check-config`` in a subprocess; the rest call
load_settings() directly.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mmbot.config.settings import NON_SETTING_ENV, Settings, load_settings, numeric_ranges
from mmbot.errors import ConfigError
from mmbot.research.optimize import load_grid
from mmbot.wiring import apply_secrets_file
from tests.conftest import MMBOT, ROOT


def check_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MMBOT, "check-config", *args], env=env, capture_output=True, text=True, timeout=60)


def load_error(path: Path | None = None, environ: dict[str, str] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {}, **kw)
    return str(info.value)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --- 1. numbers are finite and bounded ------------------------------------------------------
@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("strategy:\n  spread_bps: .inf\n", "strategy.spread_bps"),
        ("strategy:\n  spread_bps: -.inf\n", "strategy.spread_bps"),
        ("risk:\n  stale_book_ms: .nan\n", "risk.stale_book_ms"),
        ("risk:\n  stale_book_ms: 1.0e+999\n", "risk.stale_book_ms"),
        ("risk:\n  stale_book_ms: 1e999\n", "risk.stale_book_ms"),  # a string to YAML, inf to float()
        ("fees:\n  profit_bps: NaN\n", "fees.profit_bps"),  # a Decimal field
        ("strategy:\n  imbalance:\n    within_bps: .inf\n", "strategy.imbalance.within_bps"),  # optional float
        ("strategy:\n  ladder:\n    - {offset_bps: .inf, size: 0.01}\n", "strategy.ladder.0.offset_bps"),
    ],
)
def test_load_settings_when_number_not_finite_then_error_names_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    message = load_error(write(tmp_path, yaml_text))
    assert field in message and "finite" in message


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("strategy:\n  spread_bps: 1.0e+308\n", "strategy.spread_bps"),
        ("strategy:\n  spread_bps: 10001\n", "strategy.spread_bps"),
        ("strategy:\n  order_size: 1.0e+300\n  max_inventory: 1.0e+301\n", "strategy.order_size"),
        ("sim:\n  entry_latency_ms: 1.0e+12\n", "sim.entry_latency_ms"),
        ("risk:\n  stale_book_ms: 86400001\n", "risk.stale_book_ms"),
        ("risk:\n  max_drawdown: \"1e999\"\n", "risk.max_drawdown"),  # finite as a Decimal, but huge
        ("run:\n  speed: 1.0e+308\n", "run.speed"),
        ("strategy:\n  update_freq: 100000000000000000000\n", "strategy.update_freq"),
    ],
)
def test_load_settings_when_number_huge_then_error_names_field_and_bound(tmp_path: Path, yaml_text: str, field: str) -> None:
    message = load_error(write(tmp_path, yaml_text))
    assert field in message and "less than or equal to" in message


def test_load_settings_when_bounds_at_their_limits_then_accepted() -> None:
    s = load_settings(environ={}, overrides={"strategy": {"spread_bps": 10_000}, "risk": {"stale_book_ms": 86_400_000}})
    assert s.strategy.spread_bps == 10_000 and s.risk.stale_book_ms == 86_400_000


def test_every_numeric_field_has_an_upper_bound_and_states_its_range() -> None:
    rows = numeric_ranges()
    assert len(rows) > 60
    assert [name for name, _, rng in rows if rng == "unbounded"] == []

    def walk(model: type[Any], prefix: str = "") -> list[str]:
        missing = []
        for name, info in model.model_fields.items():
            if any(type(m).__name__ == "Le" for m in info.metadata) and "range: " not in (info.description or ""):
                missing.append(prefix + name)
            for sub in _submodels(info.annotation):
                missing.extend(walk(sub, f"{prefix}{name}."))
        return missing

    assert walk(Settings) == []


def _submodels(ann: Any) -> list[type[Any]]:
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in get_args(ann) for m in _submodels(a)]


def test_docs_configuration_table_lists_every_numeric_field_with_its_range() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name, typename, rng in numeric_ranges():
        assert f"| `{name}` | {typename} | `{rng}` |" in doc, name


def test_check_config_when_env_stale_book_ms_is_1e999_then_exit_2_naming_the_variable(clean_env: dict[str, str]) -> None:
    proc = check_config(dict(clean_env, MMBOT_RISK__STALE_BOOK_MS="1e999"))
    assert proc.returncode == 2, proc.stdout
    assert "MMBOT_RISK__STALE_BOOK_MS" in proc.stderr and "risk.stale_book_ms" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_config_when_file_spread_bps_inf_then_exit_2(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = check_config(clean_env, str(write(tmp_path, "strategy:\n  spread_bps: .inf\n")))
    assert proc.returncode == 2 and "strategy.spread_bps" in proc.stderr and "finite" in proc.stderr


# --- 2. every MMBOT_* variable is applied or rejected ---------------------------------------------
def test_check_config_when_top_level_env_vars_then_applied(clean_env: dict[str, str]) -> None:
    env = dict(clean_env, MMBOT_MODE="live", MMBOT_SYMBOLS="BTC/USDT, ETH/USDT", MMBOT_STRATEGY='{"spread_bps": 3}')
    proc = check_config(env, str(ROOT / "config" / "default.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "mode: live" in proc.stdout
    assert "symbols:\n- BTC/USDT\n- ETH/USDT\n" in proc.stdout
    assert "spread_bps: 3" in proc.stdout
    assert "order_size: 0.01" in proc.stdout  # the section mapping merges into the file's section


def test_load_settings_when_symbols_env_is_a_list_then_parsed() -> None:
    for raw in ('["BTC/USDT", "ETH/USDT"]', "[BTC/USDT, ETH/USDT]", "BTC/USDT,ETH/USDT"):
        assert load_settings(environ={"MMBOT_SYMBOLS": raw}).symbols == ["BTC/USDT", "ETH/USDT"], raw


def test_load_settings_when_section_and_field_env_both_set_then_the_field_wins() -> None:
    s = load_settings(environ={"MMBOT_STRATEGY": "{spread_bps: 3, skew_factor: 0.01}", "MMBOT_STRATEGY__SPREAD_BPS": "4"})
    assert s.strategy.spread_bps == 4 and s.strategy.skew_factor == 0.01
    assert load_settings(environ={"MMBOT_STRATEGY__VOLATILITY": "{enabled: true}"}).strategy.volatility.enabled


def test_load_settings_when_env_field_name_has_capitals_then_matched() -> None:
    assert load_settings(environ={"MMBOT_STRATEGY__GLFT__A": "3"}).strategy.glft.A == 3


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("MMBOT_FOO", "1", "environment variable MMBOT_FOO: no such setting foo"),
        ("MMBOT_STRATEGY__SPRAD_BPS", "3", "environment variable MMBOT_STRATEGY__SPRAD_BPS: no such setting strategy.sprad_bps"),
        ("MMBOT_NOSUCH__FIELD", "3", "environment variable MMBOT_NOSUCH__FIELD: no such setting nosuch"),
        ("MMBOT_STRATEGY__SPREAD_BPS__X", "3", "no such setting strategy.spread_bps.x"),
        ("MMBOT_STRATEGY", "3", "environment variable MMBOT_STRATEGY: must be a YAML/JSON mapping of strategy settings"),
        ("MMBOT_STRATEGY", "{spread_bps: [1", "environment variable MMBOT_STRATEGY: must be YAML/JSON"),
    ],
)
def test_load_settings_when_env_var_maps_to_no_setting_then_error_names_it(var: str, value: str, expected: str) -> None:
    assert expected in load_error(environ={var: value})


@pytest.mark.parametrize(
    ("env", "var", "field"),
    [
        ({"MMBOT_STRATEGY__SPREAD_BPS": "-1"}, "MMBOT_STRATEGY__SPREAD_BPS", "strategy.spread_bps"),
        ({"MMBOT_MODE": "livee"}, "MMBOT_MODE", "mode"),
        ({"MMBOT_STRATEGY": '{"spread_bps": "wide"}'}, "MMBOT_STRATEGY", "strategy.spread_bps"),
        ({"MMBOT_STRATEGY": '{"sprad": 1}'}, "MMBOT_STRATEGY", "strategy.sprad"),
    ],
)
def test_load_settings_when_env_value_invalid_then_error_names_the_variable(env: dict[str, str], var: str, field: str) -> None:
    message = load_error(environ=env)
    assert f"{field} (environment variable {var})" in message


def test_load_settings_when_cli_flag_replaces_env_value_then_error_does_not_blame_the_env() -> None:
    message = load_error(environ={"MMBOT_RUN__SPEED": "2"}, overrides={"run": {"speed": -1}})
    assert "run.speed" in message and "MMBOT_RUN__SPEED" not in message


def test_check_config_when_unknown_env_var_then_exit_2_naming_it(clean_env: dict[str, str]) -> None:
    proc = check_config(dict(clean_env, MMBOT_FOO="1"))
    assert proc.returncode == 2
    assert "environment variable MMBOT_FOO: no such setting foo" in proc.stderr and "Traceback" not in proc.stderr


def test_check_config_when_allow_live_set_then_not_rejected(clean_env: dict[str, str]) -> None:
    assert check_config(dict(clean_env, MMBOT_ALLOW_LIVE="yes")).returncode == 0


def test_every_mmbot_variable_named_in_the_repo_is_a_setting_or_whitelisted() -> None:
    sources = [ROOT / "Makefile", ROOT / "Dockerfile", ROOT / "docker-compose.yml", ROOT / "README.md"]
    for folder in ("mmbot", "tests", "deploy", ".ci", "docs", "benchmarks"):
        sources.extend(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix not in (".gz", ".pyc", ".feather", ".parquet"))
    names: set[str] = set()
    deliberate = {ROOT / "tests" / "test_config_hardening.py", ROOT / "docs" / "configuration.md"}  # name bad ones on purpose
    for p in sources:
        if p.exists() and p not in deliberate:
            names.update(re.findall(r"\bMMBOT_[A-Z0-9_]*[A-Z0-9]\b", p.read_text(errors="replace")))
    assert "MMBOT_EXCHANGE__API_KEY" in names and "MMBOT_ALLOW_LIVE" in names
    from mmbot.config.settings import _resolve_env_name

    for name in sorted(names - NON_SETTING_ENV - {"MMBOT__MODE"}):  # MMBOT__MODE: only in a comment, not accepted
        _resolve_env_name(name)  # raises ConfigError for a name that maps to no setting


# --- 3. strict YAML: duplicate keys, non-decimal numbers ----------------------------------------
@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("mode: paper\nmode: live\n", "'mode'"),
        ("strategy:\n  spread_bps: 3\n  order_size: 0.01\n  spread_bps: 4\n", "'spread_bps' appears twice in strategy"),
        ("strategy:\n  volatility:\n    enabled: true\n    enabled: false\n", "'enabled' appears twice in strategy.volatility"),
        ("strategy:\n  ladder:\n    - {offset_bps: 1, size: 1, size: 2}\n", "'size' appears twice in strategy.ladder.0"),
    ],
)
def test_load_settings_when_duplicate_key_then_error_names_key_and_file(tmp_path: Path, yaml_text: str, key: str) -> None:
    path = write(tmp_path, yaml_text)
    message = load_error(path)
    assert key in message and str(path) in message


def test_check_config_when_duplicate_key_then_exit_2(tmp_path: Path, clean_env: dict[str, str]) -> None:
    path = write(tmp_path, "strategy:\n  spread_bps: 3\n  spread_bps: 4\n")
    proc = check_config(clean_env, str(path))
    assert proc.returncode == 2 and "spread_bps" in proc.stderr and str(path) in proc.stderr


@pytest.mark.parametrize("value", ["0x10", "0o17", "017", "0b101", "1:30", "1_000", "-0x10"])
def test_load_settings_when_non_decimal_number_in_file_then_error_names_field_and_value(tmp_path: Path, value: str) -> None:
    message = load_error(write(tmp_path, f"strategy:\n  order_size: {value}\n"))
    assert "strategy.order_size" in message and value in message and "plain decimal" in message


@pytest.mark.parametrize("value", ["0x10", "017", "1:30"])
def test_check_config_when_non_decimal_number_in_env_then_exit_2_naming_variable(clean_env: dict[str, str], value: str) -> None:
    proc = check_config(dict(clean_env, MMBOT_STRATEGY__ORDER_SIZE=value))
    assert proc.returncode == 2, proc.stdout
    assert "MMBOT_STRATEGY__ORDER_SIZE" in proc.stderr and value in proc.stderr


def test_load_settings_when_number_quoted_or_text_field_then_kept_as_text(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, 'audit:\n  account: "0x10"\n'), environ={})
    assert s.audit.account == "0x10"
    assert load_settings(environ={"MMBOT_AUDIT__ACCOUNT": "017"}).audit.account == "017"
    decimal = load_settings(write(tmp_path, "strategy:\n  order_size: .5\n  max_inventory: +2\n  spread_bps: 1.5e+1\n", "e.yaml"), environ={})
    assert (decimal.strategy.order_size, decimal.strategy.max_inventory, decimal.strategy.spread_bps) == (0.5, 2, 15.0)


def test_load_grid_when_duplicate_key_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'spread_bps' appears twice"):
        load_grid(write(tmp_path, "param_space:\n  spread_bps: [1]\n  spread_bps: [2]\n"))


# --- 4. secrets never appear in a message ---------------------------------------------------------
SECRET = "s3cr3t-VALUE-4242"


@pytest.mark.parametrize(
    "env_or_file",
    [
        {"MMBOT_EXCHANGE": '{"secret": ["' + SECRET + '"]}'},
        {"MMBOT_EXCHANGE": '{"api_key": {"k": "' + SECRET + '"}}'},
        {"MMBOT_EXCHANGE": '{"secret": 0x' + "4242" + "}"},
        {"file": f"exchange:\n  secret: [{SECRET}]\n"},
        {"file": f"admin:\n  token: [{SECRET}]\n"},
        {"file": f"exchange:\n  api_key: {{a: {SECRET}}}\n"},
    ],
)
def test_check_config_when_secret_invalid_then_value_redacted(tmp_path: Path, clean_env: dict[str, str], env_or_file: dict[str, str]) -> None:
    env = dict(clean_env)
    args: list[str] = []
    if "file" in env_or_file:
        args.append(str(write(tmp_path, env_or_file["file"])))
    else:
        env.update(env_or_file)
    proc = check_config(env, *args)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert SECRET not in text and "4242" not in text
    assert "<redacted>" in text


def test_check_config_when_secret_env_looks_like_yaml_then_taken_verbatim_and_not_shown(clean_env: dict[str, str]) -> None:
    proc = check_config(dict(clean_env, MMBOT_EXCHANGE__SECRET=f'["{SECRET}"]', MMBOT_EXCHANGE__API_KEY="0123"))
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    s = load_settings(environ={"MMBOT_EXCHANGE__SECRET": f'["{SECRET}"]', "MMBOT_EXCHANGE__API_KEY": "0123"})
    assert s.exchange.secret is not None and s.exchange.secret.get_secret_value() == f'["{SECRET}"]'
    assert s.exchange.api_key is not None and s.exchange.api_key.get_secret_value() == "0123"


def test_apply_secrets_file_when_values_unquoted_then_read_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "api_key: 0123\nsecret: 0x1f\n", "secrets.yaml")
    s = apply_secrets_file(load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(path)}))
    assert s.exchange.api_key is not None and s.exchange.api_key.get_secret_value() == "0123"  # YAML 1.1: 83
    assert s.exchange.secret is not None and s.exchange.secret.get_secret_value() == "0x1f"  # YAML 1.1: 31


def test_apply_secrets_file_when_bad_then_error_without_the_value(tmp_path: Path) -> None:
    dup = write(tmp_path, f"api_key: {SECRET}\nsecret: a\nsecret: {SECRET}\n", "dup.yaml")
    with pytest.raises(ConfigError) as info:
        apply_secrets_file(load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(dup)}))
    assert "'secret' appears twice" in str(info.value) and SECRET not in str(info.value)
    broken = write(tmp_path, f"api_key: [{SECRET}\nsecret: x\n", "broken.yaml")
    with pytest.raises(ConfigError) as info:
        apply_secrets_file(load_settings(environ={"MMBOT_EXCHANGE__SECRETS_FILE": str(broken)}))
    assert SECRET not in str(info.value)


def test_load_settings_when_yaml_syntax_error_then_message_does_not_quote_the_line(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, f"exchange:\n  api_key: {SECRET}\n  secret: [unclosed\n"))
    assert "is not valid YAML" in message and "line" in message
    assert SECRET not in message and "\n" not in message


# --- 5. directory, unreadable and binary config paths -------------------------------------------
def test_check_config_when_path_is_a_directory_then_own_message(tmp_path: Path, clean_env: dict[str, str]) -> None:
    proc = check_config(clean_env, "--config", str(tmp_path))
    assert proc.returncode == 2
    assert f"config path {tmp_path} is a directory, expected a YAML file" in proc.stderr
    assert "does not exist" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (gzip.compress(b"mode: paper\n"), "is not a text file"),
        (b"mode: paper\n\xff\xfe\x00junk", "is not a text file"),
        (b"mode: paper\n\x00\x01\x02", "is a binary file"),
      ],
    ids=["gzip", "invalid-utf8", "nul-bytes"],
)
def test_check_config_when_file_is_binary_then_own_message_naming_path(
    tmp_path: Path, clean_env: dict[str, str], blob: bytes, expected: str
) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(blob)
    proc = check_config(clean_env, "--config", str(path))
    assert proc.returncode == 2
    assert str(path) in proc.stderr and expected in proc.stderr and "Traceback" not in proc.stderr


def test_load_settings_when_file_unreadable_then_own_message_naming_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "mode: paper\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)  # tests run as root: chmod 000 would not stop a read
    message = load_error(path)
    assert message == f"config file {path} cannot be read: Permission denied"


# --- 6. every shipped config still loads --------------------------------------------------------
SHIPPED = [
    ROOT / "config" / "default.yaml",
    ROOT / "mmbot" / "config" / "config_default.yaml",
    *sorted((ROOT / "config" / "profiles").glob("*.yaml")),
]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_check_config_when_shipped_config_then_exit_0(path: Path, clean_env: dict[str, str]) -> None:
    load_settings(path, environ={})
    proc = check_config(clean_env, str(path))
    assert proc.returncode == 0, proc.stderr


def test_shipped_grids_still_load() -> None:
    grids = sorted((ROOT / "config" / "grids").glob("*.yaml"))
    assert grids
    for path in grids:
        assert load_grid(path).size > 0
