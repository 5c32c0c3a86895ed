"""Loading the configuration: YAML (refusing duplicate keys), then the schema, then the
checks that need the whole file, then the rule set built from it.

`load_config(path)` returns a `GatewayConfig` or raises `ConfigError` carrying every
problem with its path. Shape and types are pydantic's job; cross-references and duplicates
are checked after, because they need the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.checks import check_references, cross_check
from gateway.config.errors import ConfigError, ConfigProblem, format_loc
from gateway.config.ruleset import build_rules
from gateway.config.schema import GatewayConfig

# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one took 6 of the 9 s
# a gateway with 10,000 devices needed to start (bench/scale.py).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """YAML loader that refuses duplicate keys instead of silently keeping the last."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` is flattened (and may be overridden) by construct_mapping
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
        except TypeError:
            break  # unhashable key: construct_mapping raises a ConstructorError for it
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen[key] = key_node
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def parse_config(data: object) -> GatewayConfig:
    """Validate already-parsed data; raises ConfigError with every problem found."""
    # Cross-references are checked on the raw data too, so that one typo in a device
    # does not hide a dangling shut-off valve elsewhere: the user sees every problem.
    references = list(check_references(data))
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_problem_from(err) for err in exc.errors()] + references) from None
    problems = references + list(cross_check(config))
    try:
        build_rules(config)  # merged thresholds must be valid too; raises ConfigError
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path) -> GatewayConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"{path}: not UTF-8 text: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("", f"{path}: not valid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(
            [ConfigProblem("", f"{path}: not valid YAML: nested too deeply")]
        ) from None
    return parse_config(data)


def _problem_from(err: Any) -> ConfigProblem:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    elif err["type"] == "missing":
        msg = "required setting is missing"
    return ConfigProblem(format_loc(loc), msg)
