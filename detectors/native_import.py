"""Import pybind11 extension modules (google-re2) so they also load in PyFlink's thread mode.

In thread mode (``python.execution-mode: thread``) pemja gives every Python operator of a task
chain its own ``PyThreadState`` on the task thread, and CPython registers only the first state
created on a thread with the ``PyGILState`` API. A PyFlink job easily chains several Python
operators (``get_side_output`` adds an identity ``map``, a Python ``KeySelector`` or timestamp
assigner adds one more), so an operator can run in an unregistered state. pybind11 calls
``PyGILState_Ensure`` the first time one of its modules loads; on such a thread that swaps to the
*other* state and waits for the GIL the thread already holds: ``import re2`` never returns.

A thread started with :mod:`threading` is registered, so the first import is done on one; every
later import finds the module in ``sys.modules``. Calls into re2 afterwards do not use
``PyGILState`` and run fine on the task thread.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType


def import_native(name: str) -> ModuleType:
    """``importlib.import_module(name)``, the first time on a fresh (PyGILState-registered) thread."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    errors: list[BaseException] = []

    def load() -> None:
        try:
            importlib.import_module(name)
        except BaseException as error:  # noqa: BLE001 - re-raised on the calling thread
            errors.append(error)

    loader = threading.Thread(target=load, name=f"import-{name}", daemon=True)
    loader.start()
    loader.join()
    if errors:
        raise errors[0]
    return sys.modules[name]
