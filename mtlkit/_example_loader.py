"""Load example scripts from a folder without putting that folder on ``sys.path``.

An example folder is a flat set of scripts that import each other by bare name
(``from dmtrl_common import train``), because each is also run as ``python examples/dmtrl/x.py``,
where Python puts the script's folder first on ``sys.path``. :class:`ExampleFolder` gives those
bare names the same meaning without that global change: every module it loads gets its own
``__builtins__`` whose ``__import__`` resolves a bare name ``n`` to the sibling ``n.py`` (loaded
once per folder object) before falling back to the normal import system.

A module is in ``sys.modules`` only while its body executes, under a private name
(``_mtlkit_examples_<id>.<stem>``): ``dataclasses`` and ``typing`` look a class's module up
there while a class statement with string annotations runs. Nothing is left behind, so two
folders (or two loads of one folder) never see each other's modules.
"""

from __future__ import annotations

import builtins
import importlib.util
import itertools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ExampleFolder"]

_LOADS = itertools.count()


class ExampleFolder:
    """The scripts of one folder, loadable by stem, importing their siblings by bare name.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (root / "helper.py").write_text("VALUE = 41\\n")
        >>> _ = (root / "main.py").write_text("from helper import VALUE\\nANSWER = VALUE + 1\\n")
        >>> ExampleFolder(root).load("main").ANSWER
        42
        >>> import sys
        >>> "helper" in sys.modules or str(root) in sys.path
        False
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root must be a folder, got {str(root)!r}")
        self._prefix = f"_mtlkit_examples_{next(_LOADS)}"
        self._modules: dict[str, ModuleType] = {}
        self._builtins: dict[str, Any] = {**vars(builtins), "__import__": self._import}

    def has(self, stem: str) -> bool:
        """Whether the folder holds the script ``<stem>.py``."""
        return stem.isidentifier() and (self.root / f"{stem}.py").is_file()

    def load(self, stem: str) -> ModuleType:
        """The module of ``<stem>.py``, executed on first use (siblings it imports included)."""
        if stem in self._modules:
            return self._modules[stem]
        if not self.has(stem):
            raise ValueError(f"stem must name a script in {self.root}, got {stem!r}")
        path = self.root / f"{stem}.py"
        name = f"{self._prefix}.{stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # only for paths without a .py suffix, excluded above
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__builtins__"] = self._builtins
        # Registered before executing, as the import system does, so that import cycles between
        # siblings see the partly initialised module instead of loading it twice.
        self._modules[stem] = module
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del self._modules[stem]
            raise
        finally:
            sys.modules.pop(name, None)
        return module

    def _import(
        self,
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        if level == 0 and self.has(name):
            return self.load(name)
        return builtins.__import__(name, globals, locals, fromlist or (), level)
