"""Shared helper: the checker script loaded as a module."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_checker() -> ModuleType:
    path = os.path.join(REPO, "tools", "check_includes")
    loader = importlib.machinery.SourceFileLoader("check_includes", path)
    spec = importlib.util.spec_from_loader("check_includes", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_includes"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def checker() -> ModuleType:
    """tools/check_includes, so tests and the tool compare with the compiler the same way."""
    return _load_checker()
