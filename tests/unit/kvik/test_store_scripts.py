"""The kvik store's Lua scripts as files (services/kvik/lua/*.lua, loaded by store.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from services.kvik import store
from services.kvik.store import lua_source

LUA = Path(store.__file__).parent / "lua"
ROOT = Path(store.__file__).parents[2]


def _needs(name: str) -> tuple[str, ...]:
    """The libraries a file's leading comment says it needs ("-- Needs a, b." or none)."""
    first = (LUA / f"{name}.lua").read_text(encoding="utf-8").splitlines()[0]
    found = re.match(r"-- Needs ([a-z_, ]+)\.", first)
    return tuple(part.strip() for part in found.group(1).split(",")) if found else ()


def test_every_lua_file_is_a_script_or_a_library_a_script_uses() -> None:
    libraries = {library for needs in store._SCRIPTS.values() for library in needs}
    files = {path.stem for path in LUA.glob("*.lua")}
    assert files == set(store._SCRIPTS) | libraries


@pytest.mark.parametrize("name", sorted(store._SCRIPTS))
def test_a_script_is_sent_with_the_libraries_its_comment_names(name: str) -> None:
    assert _needs(name) == store._SCRIPTS[name]


def test_a_script_is_its_libraries_then_its_own_file() -> None:
    stage = (LUA / "stage.lua").read_text(encoding="utf-8")
    heartbeat = (LUA / "heartbeat.lua").read_text(encoding="utf-8")
    assert lua_source("heartbeat") == stage + heartbeat
    assert "local function stage(" in lua_source("record_as")
    assert "local function stage(" not in lua_source("start")


def test_the_lua_files_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "lua/*.lua" in pyproject["tool"]["setuptools"]["package-data"]["*"]
