"""Running registered bundle versions for long-lived callers (the ``udf_invoke`` operator, alerting).

A :class:`FunctionRunner` resolves ``org``/``name``[@``version``] in the registry, fetches the archive and
checks every rule again the first time this process needs that version (``service.fetch``: digest, size,
manifest, key, entries), keeps the extracted bundle for the process's life (content-addressed by its
digest), and invokes it through a :class:`~trace_core.udf.invoker.RuntimeInvoker`, whose warm instances
serve further invocations of the same version.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from trace_core.datasets.objectstore import ObjectStore
from trace_core.udf import archive, invoker, models, runtime_api, sandbox, service


class FunctionRunner:
    """Invokes registered bundle versions; thread-safe. ``close()`` stops every instance and deletes the cache."""

    def __init__(self, registry: service.Registry, store: ObjectStore, runner: invoker.RuntimeInvoker,
                 cache_dir: Path | None = None) -> None:
        self._registry = registry
        self._store = store
        self._invoker = runner
        self._cache = cache_dir or Path(tempfile.mkdtemp(prefix="trace-bundles-"))
        self._lock = threading.Lock()
        self._loaded: dict[str, Path] = {}

    def invoke(self, org: str, name: str, version: int | None, event: Any) -> tuple[models.BundleVersion,
                                                                                   runtime_api.InvocationResult]:
        """Invoke ``org``/``name`` at ``version`` (the latest when None) with ``event``; never raises for what
        the handler does (``BundleNotFoundError`` / ``BundleRejectedError`` for what the registry or the
        archive does)."""
        found = service.resolve(self._registry, org, name, version)
        root = self._bundle(found)
        spec = sandbox.FunctionSpec(runtime=found.runtime, entrypoint=found.entrypoint, name=found.name,
                                    version=found.version, memory_mb=found.manifest.limits.memory_mb)
        outcome = self._invoker.invoke(f"{org}/{found.name}@{found.version}:{found.sha256}", root, spec, event,
                                       float(found.manifest.limits.timeout_seconds))
        return found, outcome

    def close(self) -> None:
        self._invoker.close()
        with self._lock:
            for root in self._loaded.values():
                archive.remove(root)
            self._loaded.clear()

    def _bundle(self, version: models.BundleVersion) -> Path:
        with self._lock:  # one fetch per version per process; others wait for it
            root = self._loaded.get(version.sha256)
            if root is None:
                root = service.fetch(version, self._cache / version.sha256, registry=self._registry,
                                     store=self._store).root
                self._loaded[version.sha256] = root
            return root
