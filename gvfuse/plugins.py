"""The plugin manager: loads plugins from entry points and keeps the registry of classes.

Every plugin, bundled or third-party, is a module declared under the entry-point
group ``gvfuse`` (``[project.entry-points.gvfuse]`` in its ``pyproject.toml``).
Loading is forgiving: a plugin whose import fails (typically a missing optional
dependency), whose registration hook raises, that implements a hook gvfuse does
not have (a misspelled name) or that registers a class not of the right kind is
listed as skipped with its reason, nothing of it is registered, and the others
keep working. A name that two plugins claim is an error naming both plugins.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import sys
from collections.abc import Iterator, Mapping
from types import ModuleType, TracebackType
from typing import Any

import attrs
import pluggy

from gvfuse import hookspecs
from gvfuse.errors import GvfuseError, PluginError, UnknownComponentError
from gvfuse.interfaces import CONTEXT_KINDS, Component, Fusion, Publisher, Reader, Tracker, Validator, Weighting

ENTRY_POINT_GROUP = "gvfuse"
#: Comma-separated entry-point or distribution names that are not loaded.
BLOCK_ENV = "GVFUSE_BLOCK_PLUGINS"
#: When set (to anything but empty or 0), every hook call and its result is printed on standard error.
TRACE_ENV = "GVFUSE_TRACE_PLUGINS"

KINDS: Mapping[str, type[Component]] = {
    "readers": Reader,
    "trackers": Tracker,
    "weightings": Weighting,
    "fusions": Fusion,
    "validators": Validator,
    "publishers": Publisher,
}


@attrs.frozen
class PluginInfo:
    """A plugin found through its entry point, loaded or skipped."""

    name: str
    distribution: str
    version: str
    module: str
    skipped_reason: str | None = None


@attrs.frozen
class Registration:
    """One registered class: what kind it is, its name, and which plugin provides it."""

    kind: str
    name: str
    cls: type[Component]
    plugin: PluginInfo


@contextlib.contextmanager
def plugin_errors(plugin: str, action: str) -> Iterator[None]:
    """Re-raise an unexpected exception from plugin code as a :class:`PluginError` naming the plugin.

    gvfuse's own errors (bad input, ...) pass through unchanged: they already
    say what is wrong with the input.
    """
    try:
        yield
    except GvfuseError:
        raise
    except Exception as exc:
        raise PluginError(f"{action} failed: {type(exc).__name__}: {exc}", plugin=plugin) from exc


def _blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault((ep.name, ep.value), ep)
    return sorted(seen.values(), key=lambda ep: ep.name)


class PluginSet:
    """The loaded plugins and the registry of their classes.

    Build one with :func:`load_plugins` (or the cached :func:`get_plugins`).
    """

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.registry: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        if os.environ.get(TRACE_ENV, "") not in ("", "0"):
            # pluggy's own tracing, as datasette's DATASETTE_TRACE_PLUGINS: every hook call, its arguments and result
            self.manager.trace.root.setwriter(sys.stderr.write)
            self.manager.enable_tracing()

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's hook relay: ``plugins.hook.gvfuse_<name>(...)`` calls every implementation."""
        return self.manager.hook

    @property
    def loaded(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.skipped_reason is None]

    @property
    def skipped(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.skipped_reason is not None]

    def add(self, module: ModuleType | object, info: PluginInfo) -> None:
        """Register a plugin object (normally a module) and the classes it provides, all or nothing.

        A :class:`PluginError` names the plugin; nothing of it stays registered.
        """
        registrations = self.collect(module, info)
        self.commit(registrations, info)

    def collect(self, module: ModuleType | object, info: PluginInfo) -> list[Registration]:
        """Register ``module``'s hooks and call its registration hooks; its classes, checked, not yet in the registry.

        Anything wrong with the plugin itself (an unknown hook name, a hook that
        raises, a class not of the right kind) unregisters it again and raises
        :class:`PluginError`.
        """
        try:
            self.manager.register(module, name=info.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(" ".join(str(exc).split()), plugin=info.name) from exc
        try:
            unknown = sorted(name for name, caller in vars(self.manager.hook).items()
                             if not name.startswith("_") and not caller.has_spec()
                             and any(i.plugin_name == info.name and not i.optionalhook for i in caller.get_hookimpls()))
            if unknown:
                raise PluginError(f"implements unknown hook(s) {', '.join(unknown)} (misspelled? gvfuse's hooks are "
                                  "in gvfuse.hookspecs)", plugin=info.name)
            registrations: list[Registration] = []
            for kind, base in KINDS.items():
                hook = getattr(self.manager.hook, f"gvfuse_register_{kind}")
                for impl in hook.get_hookimpls():
                    if impl.plugin_name != info.name:
                        continue
                    with plugin_errors(info.name, f"gvfuse_register_{kind}()"):
                        classes = list(impl.function() or [])
                    registrations += [self._checked(kind, base, cls, info) for cls in classes]
            names = [(r.kind, r.name) for r in registrations]
            twice = sorted({f"{kind[:-1]} {name!r}" for kind, name in names if names.count((kind, name)) > 1})
            if twice:
                raise PluginError(f"registers {', '.join(twice)} more than once", plugin=info.name)
        except BaseException as exc:
            self.manager.unregister(name=info.name)
            if isinstance(exc, Exception) and not isinstance(exc, PluginError):
                raise PluginError(f"registration failed: {type(exc).__name__}: {exc}", plugin=info.name) from exc
            raise
        return registrations

    def commit(self, registrations: list[Registration], info: PluginInfo) -> None:
        """Put a collected plugin's classes in the registry; a name another plugin has is an error naming both."""
        for registration in registrations:
            existing = self.registry[registration.kind].get(registration.name)
            if existing is not None:
                self.manager.unregister(name=info.name)
                raise PluginError(
                    f"{registration.kind[:-1]} name {registration.name!r} is registered twice: by plugin "
                    f"{existing.plugin.name!r} ({existing.plugin.distribution}) and by plugin {info.name!r} "
                    f"({info.distribution}); block one with {BLOCK_ENV}",
                    plugin=info.name,
                )
        for registration in registrations:
            self.registry[registration.kind][registration.name] = registration
        self.plugins.append(info)

    def _checked(self, kind: str, base: type[Component], cls: Any, info: PluginInfo) -> Registration:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"registered {cls!r} as one of its {kind}, but it is not a subclass of "
                              f"gvfuse.interfaces.{base.__name__}", plugin=info.name)
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{cls.__qualname__} has no 'name' class attribute", plugin=info.name)
        if issubclass(cls, Validator):
            wrong = {key: kind_ for key, kind_ in dict(cls.needs).items() if kind_ not in CONTEXT_KINDS}
            if wrong:
                raise PluginError(f"validator {name!r} needs context of unknown kind(s) {wrong}; "
                                  f"kinds are {list(CONTEXT_KINDS)}", plugin=info.name)
        return Registration(kind, name, cls, info)

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``name`` among ``kind`` ("readers", "trackers", ...)."""
        try:
            return self.registry[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.registry.get(kind, {}))) or "none"
            skipped = f" ({len(self.skipped)} plugin(s) skipped: see gvfuse plugins)" if self.skipped else ""
            raise UnknownComponentError(f"no {kind[:-1]} named {name!r}; available: {known}{skipped}") from None

    def classes(self, kind: str) -> list[Any]:
        """Every registered class of ``kind``, in name order."""
        return [self.registry[kind][name].cls for name in sorted(self.registry[kind])]

    def notify(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call an event hook through pluggy (so tracing and wrappers apply); an exception names its plugin.

        Implementations run most recently registered first, as pluggy orders
        them; the first unexpected exception stops the call and is re-raised as
        :class:`PluginError` naming the plugin whose implementation raised it.
        """
        hook = getattr(self.manager.hook, hook_name)
        try:
            return list(hook(**kwargs))
        except GvfuseError:
            raise
        except Exception as exc:
            plugin = _raising_plugin(hook.get_hookimpls(), exc.__traceback__)
            raise PluginError(f"{hook_name}() failed: {type(exc).__name__}: {exc}", plugin=plugin) from exc


def _raising_plugin(impls: list[pluggy.HookImpl], traceback: TracebackType | None) -> str | None:
    """The plugin whose hook implementation appears deepest in ``traceback`` (None when none does)."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in impls}
    found = None
    while traceback is not None:
        found = codes.get(traceback.tb_frame.f_code, found)
        traceback = traceback.tb_next
    return found


def load_plugins(block: set[str] | None = None) -> PluginSet:
    """Load every plugin of the entry-point group ``gvfuse`` that is not blocked.

    ``block`` defaults to the names in the ``GVFUSE_BLOCK_PLUGINS`` environment variable.
    """
    blocked = _blocked_names() if block is None else block
    plugins = PluginSet()
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        if ep.name in blocked or dist in blocked:
            plugins.plugins.append(PluginInfo(ep.name, dist, version, ep.value, f"blocked by {BLOCK_ENV}"))
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a plugin's import error must not take gvfuse down
            reason = f"import failed: {type(exc).__name__}: {exc}"
            plugins.plugins.append(PluginInfo(ep.name, dist, version, ep.value, reason))
            continue
        info = PluginInfo(ep.name, dist, version, ep.value)
        try:
            registrations = plugins.collect(module, info)
        except PluginError as exc:  # one broken plugin must not take gvfuse down either
            reason = str(exc).removeprefix(f"plugin {ep.name!r}: ")
            plugins.plugins.append(attrs.evolve(info, skipped_reason=reason))
            continue
        plugins.commit(registrations, info)
    return plugins


@functools.cache
def get_plugins() -> PluginSet:
    """The process-wide plugin set, loaded on first use."""
    return load_plugins()
