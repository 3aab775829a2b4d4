"""Keras's serialised-object dicts: ``{"module", "class_name", "config", "registered_name"}``.

Initializers, regularizers and constraints are all named the same way in Keras:
by a class name, its snake_case form or another alias, or by such a dict.  A
``Catalogue`` holds one family and turns any of those spellings into a
``KerasObject`` (class name + full config), so that ``get_config`` can write
the dict Keras itself would write.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional


class KerasObject:
    """A named Keras object with its configuration (defaults filled in)."""

    def __init__(self, module: str, class_name: str, config: Dict[str, Any]):
        self.module = module
        self.class_name = class_name
        self.config = dict(config)

    def serialize(self) -> dict:
        return {"module": self.module, "class_name": self.class_name,
                "config": dict(self.config), "registered_name": None}

    def __eq__(self, other):
        return (isinstance(other, KerasObject) and other.class_name == self.class_name
                and other.config == self.config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{self.class_name}({arguments})"


class Catalogue:
    """One family of Keras objects: their names, aliases and default configs."""

    def __init__(self, kind: str, module: str, defaults: Dict[str, Dict[str, Any]],
                 aliases: Dict[str, str], make: Callable[[str, dict], KerasObject] = None):
        self.kind = kind                   # "initializer", "regularizer", ... for messages
        self.module = module
        self.defaults = defaults           # class name -> default config
        self.aliases = dict(aliases)       # extra spellings -> class name
        for class_name in defaults:
            self.aliases.setdefault(class_name, class_name)
        self.make = make or (lambda class_name, cfg: KerasObject(module, class_name, cfg))

    def names(self):
        return sorted(self.aliases)

    def get(self, identifier, argument: str = "") -> Optional[Any]:
        """None, a name, a serialised dict, a KerasObject or a callable -> the object.

        ``argument`` (e.g. ``"kernel_initializer"``) is named in error messages.
        """
        where = f" for `{argument}`" if argument else ""
        if identifier is None:
            return None
        if isinstance(identifier, KerasObject):
            return identifier
        if isinstance(identifier, str):
            return self._build(identifier, {}, identifier, where)
        if isinstance(identifier, dict):
            class_name = identifier.get("class_name")
            cfg = identifier.get("config") or {}
            if not isinstance(class_name, str):
                raise ValueError(f"Could not interpret {self.kind} identifier{where}: "
                                 f"{identifier!r}")
            if not isinstance(cfg, dict):
                # Keras fails to deserialise such a dict with a TypeError
                raise TypeError(f"Could not deserialize the {self.kind}{where}: its 'config' "
                                f"must be a dict, got {cfg!r}")
            return self._build(class_name, cfg, identifier, where)
        if callable(identifier):
            return identifier
        raise ValueError(f"Could not interpret {self.kind} identifier{where}: {identifier!r}")

    def _build(self, name: str, overrides: dict, identifier, where: str) -> KerasObject:
        class_name = self.aliases.get(name)
        if class_name is None:
            raise ValueError(f"Could not interpret {self.kind} identifier{where}: "
                             f"{identifier!r}. Known names: {', '.join(self.names())}")
        cfg = dict(self.defaults[class_name])
        unknown = set(overrides) - set(cfg)
        if unknown:
            raise TypeError(f"Could not deserialize the {self.kind}{where}: unknown arguments "
                            f"{sorted(unknown)} for {class_name} in {identifier!r}")
        cfg.update(overrides)
        try:
            return self.make(class_name, cfg)
        except (ValueError, TypeError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"Invalid {self.kind}{where}: {error}") from None


def serialize(obj) -> Optional[dict]:
    """The Keras dict for an object of any family (None stays None)."""
    if obj is None:
        return None
    if isinstance(obj, KerasObject):
        return obj.serialize()
    # A user's own callable: say what it is; it cannot be rebuilt from the config.
    get_config = getattr(obj, "get_config", None)
    cfg = get_config() if callable(get_config) else {}
    name = getattr(obj, "__name__", type(obj).__name__)
    return {"module": getattr(obj, "__module__", None), "class_name": name,
            "config": cfg, "registered_name": name}

