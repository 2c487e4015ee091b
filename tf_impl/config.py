"""The one base of every technique's frozen config dataclass.

Each technique keeps its settings in one ``@dataclass(frozen=True)`` that derives from
:class:`TechniqueConfig`; the dataclass's defaults are the settings its module documents (the
paper's, or a shrunk version the docstring names). The base gives every config the same
behaviour:

- **Presets**: ``Config.paper(**changes)`` and ``Config.quick(**changes)`` apply the class's
  ``PAPER`` and ``QUICK`` changes to the defaults (both empty unless the technique has a paper
  budget that differs from its everyday one), then ``changes``.
- **Copies**: ``config.with_(steps=500, tv_weight=0.1)``; names of the technique's own fields
  change it, names of :class:`tf_impl.optimize.OptimizeConfig`'s fields change its
  ``optimize``. An unknown name is refused with the list of fields and a "did you mean".
- **Validation** on construction: every ``int``, ``float``, ``bool`` and ``str`` field (and
  their ``| None`` forms) must hold a value of that kind, then the class's own ``validate()``
  checks ranges and choices. Both raise the class's ``error`` (a ``ValueError``: the command
  line prints it as one line), so a bad value reads the same in every technique.
- **Records**: ``to_dict()`` (JSON-ready after ``json.dumps(default=list)``) and
  ``from_dict()``, which refuses unknown keys and turns lists back into tuples.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import asdict, fields, replace
from typing import Any

__all__ = ["ConfigError", "TechniqueConfig", "plain"]


def plain(value):
    """``value`` as a message shows it: numpy scalars and arrays (also inside lists and
    tuples) as Python numbers and lists, so that ``f"got {plain(k)!r}"`` reads ``got 99``, not
    ``got np.int64(99)``; anything else as it is."""
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        return value.tolist()
    return value


class ConfigError(ValueError):
    """A config field that does not exist or holds a bad value; the message names it."""


_KINDS = {  # annotation -> (test, what the message calls it)
    "int": (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "bool": (lambda v: isinstance(v, (bool,)) or type(v).__name__ == "bool_", "True or False"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


def _kind(annotation) -> tuple[str, bool] | None:
    """(``int``/``float``/``bool``/``str``, whether None is allowed) for a simple field
    annotation, or None for anything else (tuples, nested configs: their own checks)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__",
                                                                   str(annotation))
    parts = [p.strip() for p in text.split("|")]
    optional = "None" in parts
    parts = [p for p in parts if p != "None"]
    if len(parts) == 1 and parts[0] in _KINDS:
        return parts[0], optional
    return None


class TechniqueConfig:
    """Base of the techniques' frozen configs (see the module docstring).

    Class attributes a technique may set (plain assignments, so the dataclass does not take
    them for fields): ``error`` (the exception raised on a bad field, default
    :class:`ConfigError`), ``PAPER`` and ``QUICK`` (the presets' changes to the defaults).
    """

    error = ConfigError
    PAPER: dict[str, Any] = {}
    QUICK: dict[str, Any] = {}

    def __post_init__(self):
        for f in fields(self):
            kind = _kind(f.type)
            value = getattr(self, f.name)
            if kind is None or (value is None and kind[1]):
                continue
            test, what = _KINDS[kind[0]]
            if not test(value):
                raise self.error(f"{type(self).__name__}.{f.name} must be {what}"
                                 f"{' or None' if kind[1] else ''}; got {plain(value)!r}")
        self.validate()

    def validate(self) -> None:
        """Range and choice checks of the technique's fields; raise ``self.error``."""

    # -- presets ------------------------------------------------------------------------------
    @classmethod
    def paper(cls, **changes):
        """The paper's settings: the defaults with ``PAPER`` applied, then ``changes``."""
        return cls().with_(**{**cls.PAPER, **changes})

    @classmethod
    def quick(cls, **changes):
        """The short everyday settings: the defaults with ``QUICK`` applied, then ``changes``."""
        return cls().with_(**{**cls.QUICK, **changes})

    # -- copies and records -------------------------------------------------------------------
    def with_(self, **changes):
        """A copy with ``changes`` applied (optimiser fields go to ``optimize``)."""
        own = {f.name for f in fields(self)}
        nested = getattr(self, "optimize", None) if "optimize" in own else None
        inner = {f.name for f in fields(nested)} if nested is not None else set()
        unknown = sorted(set(changes) - own - inner)
        if unknown:
            raise self.error(self._unknown(unknown, own | inner))
        opt = {k: changes.pop(k) for k in list(changes) if k in inner and k not in own}
        cfg = replace(self, **changes)
        return replace(cfg, optimize=nested.with_(**opt)) if opt else cfg

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        """The config a ``to_dict()`` record describes; unknown keys are refused (the record
        was written by another version)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise cls.error(f"{cls._unknown(unknown, known)} (was the record written by "
                            "another version?)")
        values = {}
        for k, v in d.items():
            if k == "optimize" and isinstance(v, dict):
                from .optimize import OptimizeConfig

                v = OptimizeConfig.from_dict(v)
            values[k] = tuple(v) if isinstance(v, list) else v
        return cls(**values)

    @classmethod
    def _unknown(cls, names: list[str], known: set[str]) -> str:
        hints = [f"{n!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            n, known, n=1)) else repr(n) for n in names]
        return (f"{cls.__name__} has no field {', '.join(hints)}; its fields are "
                f"{', '.join(sorted(known))}")
