"""``--set key=value [key=value ...]``: any config field from the command line (in the spirit of
MMSegmentation's ``--cfg-options``).

Values are YAML (``lr=3e-3`` a float, ``img_scale=[1024,256]`` a list, ``grad_clip=null``,
``eval_mode=slide`` a string), read by the config files' loader; dots reach into mappings
(``model_args.depth=6``). Unknown keys and wrong types are caught when the config is built
(:func:`lkca.config.loader.load_config`), as for a YAML file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lkca.bounded_files import FileLimit
from lkca.config.files import parse_yaml
from lkca.errors import ConfigError


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=3e-3", "model_args.depth=6"]`` -> ``{"lr": 0.003, "model_args": {"depth": 6}}``.

    Later items win. Raises :class:`ConfigError` for an item without ``=``, an empty key, a value
    that is not YAML, or a key set both as a value and as a mapping (``a=1 a.b=2``).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. lr=3e-3 or "
                              "model_args.depth=6")
        try:
            value = parse_yaml(text, "--set value", finite=False)
        except FileLimit:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote it or close "
                              "its brackets") from None
        node = out
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:depth + 1])} was set to a "
                                  "value, so it cannot hold keys; set one or the other")
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(f"--set {item!r}: {key.strip()} already holds keys; set one or the "
                              "other")
        node[parts[-1]] = value
    return out
