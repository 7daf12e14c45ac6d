"""A pydantic validation error as tunelab's ConfigError: the dotted config path, the offending
value, and for an unknown key the closest key the schema has (config/keys.py).

Its own module so that every config section (method.py, update.py, load.py) can format its
errors without importing the run config that contains it.
"""

from __future__ import annotations

import difflib
import re

from pydantic import ValidationError

from tunelab.config.keys import Location, config_keys, locate, tag_of
from tunelab.errors import ConfigError


def _unknown_key(where: Location, path: str) -> str:
    """Why a key is not allowed here, with the closest key that is (from the schema)."""
    parent, key = where.parent, path.rpartition(".")[2]
    if where.union is not None and parent is not None:
        union, disc, tag, members = where.union
        others = [tag_of(m)[1] for m in members if m is not parent and key in m.model_fields]
        if others:
            word = union.rpartition(".")[2] if disc == "name" else disc
            own = [k for k in parent.model_fields if k != disc]
            return (
                f"not a setting of {word} '{tag}' (its settings: {', '.join(own) or 'none'}); "
                f"{key} is a setting of {', '.join(others)}"
            )
    near: list[str] = []
    if parent is not None:
        siblings = [k for k in parent.model_fields if not (where.union and k == where.union[1])]
        near = [
            path.rpartition(".")[0] + "." + k if "." in path else k
            for k in difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
        ]
    if not near:  # the key exists in another section: train.max_length -> data.max_length
        same = [k for k in config_keys() if k.name == key and not k.section]
        same = [k for k in same if not k.when] or same  # the unconditional ones first
        near = [f"{k.key} (with {k.when})" if k.when else k.key for k in same[:2]]
    if near:
        return f"unknown key; did you mean {' or '.join(near)}? (`tunelab train --help` lists the keys)"
    return "unknown key (check its spelling; `tunelab train --help` lists the keys)"


def format_validation_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    """The first pydantic error as a ConfigError naming the dotted config path (under prefix).

    Union members are left out of the path (procedure.distill.alpha -> procedure.alpha,
    search.space.train.lr.float.low -> search.space.train.lr.low), as are pydantic's names
    for the branches of a plain union (method.train_layers.int -> method.train_layers)."""
    err = exc.errors()[0]
    head: list = [int(p) if p.isdigit() else p for p in prefix.split(".")] if prefix else []
    where = locate(head + list(err["loc"]))
    path = ".".join(where.shown)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return ConfigError(path, _unknown_key(where, path))
    if kind == "missing":
        return ConfigError(path, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # method.name / procedure.name
        disc = err["ctx"]["discriminator"].strip("'")
        path = f"{path}.{disc}" if path else disc
        if kind == "union_tag_not_found":
            return ConfigError(path, "required key is missing")
        tags = err["ctx"]["expected_tags"]
        return ConfigError(path, f"must be one of {tags}", err["ctx"]["tag"], has_value=True)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        # a section's check names its key first ("merge: ..."): fold it into the path
        key, sep, rest = msg.partition(": ")
        if sep and re.fullmatch(r"[a-z_][a-z0-9_.]*", key) and not path.endswith(key):
            path, msg = f"{path}.{key}" if path else key, rest
    msg = msg[0].lower() + msg[1:]
    if kind == "greater_than":
        msg = f"must be > {err['ctx']['gt']:g}"
    elif kind == "greater_than_equal":
        msg = f"must be >= {err['ctx']['ge']:g}"
    return ConfigError(
        path, msg, err.get("input"), has_value="input" in err and kind != "value_error"
    )
