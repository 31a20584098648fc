"""The config language shared by ``lkca train`` and ``lkca seg train`` (docs/design.md).

A config is a dataclass with typed, defaulted fields. Values come, later ones winning, from the
dataclass defaults, a YAML file (with ``base:`` inheritance, :mod:`lkca.config.files`), the
command's short flags, and ``--set key=value`` overrides (:mod:`lkca.config.overrides`);
:func:`lkca.config.loader.load_config` merges them, rejects unknown keys with the closest
suggestion and type-checks every field (:mod:`lkca.config.typecheck`).
"""

from lkca.config.bounds import check_choice, check_positive
from lkca.config.files import dump_config, merge, read_config_file
from lkca.config.loader import load_config
from lkca.config.overrides import parse_overrides
from lkca.config.typecheck import check_types, suggest

__all__ = ["check_choice", "check_positive", "check_types", "dump_config", "load_config", "merge",
           "parse_overrides", "read_config_file", "suggest"]
