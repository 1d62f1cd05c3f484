"""Loading strategy plugins (:mod:`mmbot.strategy.plugin` defines what a plugin is).

``strategy.model`` names one of:

* ``"package.module:ClassName"``: imported with :func:`importlib.import_module`
  (an installed package, or a module on ``PYTHONPATH``);
* ``"name"``: an entry point ``name`` in the group ``mmbot.strategies`` of an
  installed distribution (``[project.entry-points."mmbot.strategies"]`` in its
  pyproject), whose value is ``"package.module:ClassName"``.

The class's ``Params`` (a pydantic model) validates ``strategy.params``; the plugin is
built as ``ClassName(params, instrument)``. Every failure (module not found, no such
class or entry point, no ``Params``, invalid params, a constructor that raises) is a
:class:`~mmbot.errors.ConfigError` naming ``strategy.model`` or ``strategy.params``, so
the command exits 2 with that message.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from mmbot.domain.instrument import Instrument
from mmbot.errors import ConfigError
from mmbot.strategy.model import QuoteModel

ENTRY_POINT_GROUP = "mmbot.strategies"


def plugin_names() -> list[str]:
    """The entry-point names installed in ``mmbot.strategies``."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def resolve_plugin_class(spec: str) -> type[Any]:
    """The class ``spec`` names (``module:Class`` or an entry-point name)."""
    target = spec
    if ":" not in spec:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            names = ", ".join(plugin_names()) or "none installed"
            raise ConfigError(
                f"strategy.model {spec!r}: not a built-in model (simple, avellaneda_stoikov, glft), not "
                f"'package.module:ClassName', and no entry point of that name in {ENTRY_POINT_GROUP!r} ({names})"
            )
        target = found[0].value
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"strategy.model {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"strategy.model {spec!r}: module {module_name!r} has no class {class_name!r}")
    return cls


def build_plugin(spec: str, params: dict[str, Any], instrument: Instrument) -> QuoteModel:
    """The plugin ``spec`` built with its validated ``params`` for ``instrument``."""
    cls = resolve_plugin_class(spec)
    params_model = getattr(cls, "Params", None)
    if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
        raise ConfigError(f"strategy.model {spec!r}: {cls.__name__} has no Params pydantic model (mmbot.strategy.plugin)")
    for method in ("decide", "on_trade", "on_mid"):
        if not callable(getattr(cls, method, None)):
            raise ConfigError(f"strategy.model {spec!r}: {cls.__name__} has no {method}() (mmbot.strategy.plugin)")
    try:
        validated = params_model.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"strategy.params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"strategy.params for {spec!r}: {problems}") from exc
    try:
        model: QuoteModel = cls(validated, instrument)
    except Exception as exc:  # the plugin's constructor: its error names it, exit 2
        raise ConfigError(f"strategy.model {spec!r}: building {cls.__name__} failed: {type(exc).__name__}: {exc}") from exc
    return model
