"""Validated parameters.

Every experiment and every network is configured by a frozen dataclass derived from
:class:`Params`. ``Params.build(profile=..., **overrides)`` rejects unknown names, wrong
types and out-of-range values with one :class:`ParamError` that names the parameter and
what is allowed, before anything is allocated or computed.

Constraints live in the field metadata:

``choices``  a tuple of allowed values (for lists: allowed items)
``min``/``max``  inclusive bounds (for lists: bounds on each item)
``gt``       strict lower bound (for lists: on each item)
``nonempty`` for lists: at least one item
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

PROFILES = ("smoke", "book", "paper")
PROFILE_DOC = {"smoke": "seconds; checks that everything runs (CI)",
               "book": "the default; what the book's chapters show",
               "paper": "the paper's scale; hours on a CPU, a GPU helps"}


class ParamError(ValueError):
    """A parameter was unknown, of the wrong type, or out of range."""


def spec(default, *, choices=None, min=None, max=None, gt=None, nonempty=False, doc=""):
    """A dataclass field with validation metadata (see module docstring)."""
    meta = {"choices": choices, "min": min, "max": max, "gt": gt,
            "nonempty": nonempty, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: list(default) if isinstance(default, list) else dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(name: str, value: Any, tp) -> Any:
    """Return ``value`` as type ``tp`` or raise ParamError (ints are accepted as floats)."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ParamError(f"parameter '{name}' must be a list of {_type_name(item_tp)}, "
                             f"got {type(value).__name__} {value!r}")
        return [_coerce(f"{name}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(name, value, inner)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"parameter '{name}' must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ParamError(f"parameter '{name}' must be an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"parameter '{name}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"parameter '{name}' must be a string, got {type(value).__name__} {value!r}")
        return value
    return value


def _check_range(name: str, value, meta) -> None:
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and meta.get("nonempty") and not value:
        raise ParamError(f"parameter '{name}' must not be empty")
    choices = meta.get("choices")
    for v in items:
        if choices is not None and v not in choices:
            raise ParamError(f"parameter '{name}' = {v!r} is not allowed; allowed: "
                             + ", ".join(repr(c) for c in choices))
        if meta.get("min") is not None and v < meta["min"]:
            raise ParamError(f"parameter '{name}' = {v!r} is too small; allowed: >= {meta['min']}")
        if meta.get("max") is not None and v > meta["max"]:
            raise ParamError(f"parameter '{name}' = {v!r} is too large; allowed: <= {meta['max']}")
        if meta.get("gt") is not None and not v > meta["gt"]:
            raise ParamError(f"parameter '{name}' = {v!r} is not allowed; allowed: > {meta['gt']}")


def _allowed(name: str, meta, is_list: bool) -> str:
    """The constraints of a field's metadata in words ('' when there are none)."""
    if name == "profile":
        return ", ".join(map(repr, PROFILES))
    parts = ["each item"] if is_list and any(meta.get(k) is not None for k in ("choices", "min", "max", "gt")) else []
    if meta.get("choices") is not None:
        parts.append(", ".join(map(repr, meta["choices"])))
    for key, word in (("min", ">="), ("max", "<="), ("gt", ">")):
        if meta.get(key) is not None:
            parts.append(f"{word} {meta[key]}")
    text = " ".join(parts[:2]) + "".join(", " + p for p in parts[2:]) if parts[:1] == ["each item"] \
        else ", ".join(parts)
    return text + (", not empty" if text else "not empty") if meta.get("nonempty") else text


@dataclass(frozen=True)
class Params:
    """Base class of validated parameter sets.

    Subclasses declare fields with :func:`spec` and may set ``PROFILE_DEFAULTS``, a mapping
    from profile name to the defaults that profile changes. They may override
    :meth:`check` for constraints between fields (call ``super().check()``).
    """

    PROFILE_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def build(cls, **values: Any) -> "Params":
        """Validate ``values`` (profile defaults first, then explicit values) and return
        the frozen parameter set."""
        known = set(cls.names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParamError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for "
                             f"{cls.__qualname__}; allowed: {', '.join(sorted(known))}")
        merged: dict[str, Any] = {}
        if "profile" in known:
            profile = values.get("profile", cls.__dataclass_fields__["profile"].default)
            if profile not in PROFILES:
                raise ParamError(f"parameter 'profile' = {profile!r} is not allowed; allowed: "
                                 + ", ".join(map(repr, PROFILES)))
            merged.update(cls.PROFILE_DEFAULTS.get(profile, {}))
        merged.update(values)
        hints = typing.get_type_hints(cls)
        clean = {}
        for f in fields(cls):
            if f.name in merged:
                v = _coerce(f.name, merged[f.name], hints[f.name])
                _check_range(f.name, v, f.metadata)
                clean[f.name] = v
        obj = cls(**clean)
        for f in fields(cls):
            if f.name not in clean:
                _check_range(f.name, getattr(obj, f.name), f.metadata)
        obj.check()
        return obj

    def check(self) -> None:
        """Constraints that involve several fields; raise ParamError."""

    @classmethod
    def describe(cls) -> list[str]:
        """One entry per parameter for the command line's help: name, type, default (and each
        profile's where it differs), the allowed values and the field's doc."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            hint = hints[f.name]
            tname = str(hint).replace("typing.", "") if typing.get_origin(hint) else _type_name(hint)
            text = f"{f.name} ({tname}): default {default!r}"
            by_profile = [f"{name}: {values[f.name]!r}" for name, values in cls.PROFILE_DEFAULTS.items()
                          if f.name in values and values[f.name] != default]
            if by_profile:
                text += f" ({'; '.join(by_profile)})"
            allowed = _allowed(f.name, f.metadata, typing.get_origin(hint) is list)
            if allowed:
                text += f"; allowed: {allowed}"
            if f.metadata.get("doc"):
                text += f". {f.metadata['doc']}"
            out.append(text)
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def overrides(self) -> dict[str, Any]:
        """The parameters whose value differs from this profile's default (the field default
        updated by ``PROFILE_DEFAULTS``): what sets this run apart from the profile."""
        profile = self.PROFILE_DEFAULTS.get(getattr(self, "profile", None), {})
        out = {}
        for f in fields(self):
            if f.name == "profile":
                continue
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            value = getattr(self, f.name)
            if value != profile.get(f.name, default):
                out[f.name] = value
        return out

    def replace(self, **changes: Any) -> "Params":
        d = self.to_dict()
        d.update(changes)
        return type(self).build(**d)


def require_fit_lengths(params: Params, *names: str, least: int = 3) -> None:
    """Raise ParamError unless each list parameter ``names`` of ``params`` has at least ``least``
    values: a line fitted with a confidence interval needs N - 2 >= 1 degrees of freedom
    (three points)."""
    if any(len(getattr(params, name)) < least for name in names):
        listed = " and ".join(f"'{name}'" for name in names)
        raise ParamError(f"parameters {listed} need >= {least} values each (a fit with a CI)")


def available_memory_bytes() -> int:
    """Physical memory currently available (Linux), or 8 GiB where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


_DECLARED: contextvars.ContextVar[list | None] = contextvars.ContextVar("nfd_declared", default=None)


@contextlib.contextmanager
def declared_memory():
    """Collect the memory that parameter checks declare (:func:`require_memory`) instead of
    checking it here: yields a list of ``(bytes, what)``. ``nfd reproduce`` checks those
    against the machine that computes the points, which may be a cluster's worker."""
    sink: list = []
    token = _DECLARED.set(sink)
    try:
        yield sink
    finally:
        _DECLARED.reset(token)


def require_memory(nbytes: float, what: str, fraction: float = 0.7) -> None:
    """Raise ParamError when ``nbytes`` exceed ``fraction`` of the available memory (inside
    :func:`declared_memory`: record them instead)."""
    sink = _DECLARED.get()
    if sink is not None:
        sink.append((float(nbytes), what))
        return
    limit = fraction * available_memory_bytes()
    if nbytes > limit:
        raise ParamError(f"{what} needs {nbytes / 2**30:.2f} GiB but only {limit / 2**30:.2f} GiB "
                         "may be used on this machine; reduce the sizes")
