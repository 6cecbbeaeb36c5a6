"""Shared fixtures: the real offline mirror and throw-away project roots."""

import os, shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NO_DATA = "no data folder: set CRYPTOVOL_DATA_DIR or place the offline mirror at ../shared/data"


def find_data_dir() -> Path | None:
    """The real data the tests read: $CRYPTOVOL_DATA_DIR (the Makefile sets it), else ../shared/data
    beside the checkout."""
    env = os.environ.get("CRYPTOVOL_DATA_DIR")
    # an explicit folder: a wrong one fails the tests below, it is never skipped
    if env:
        return Path(env)
    beside = REPO.parent / "shared" / "data"
    return beside.resolve() if beside.is_dir() else None


MIRROR = find_data_dir()


def require_data() -> Path:
    """The data folder, or skip the calling module with the one-line reason (only where no data
    folder exists at all)."""
    if MIRROR is None:
        pytest.skip(NO_DATA, allow_module_level=True)
    return MIRROR


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real offline data folder (yahoo/ and sentiment/); a skip with the reason only when none
    exists."""
    path = require_data()
    assert (path / "yahoo").is_dir(), (
        f"the data folder {path} has no yahoo/ folder; it should hold the offline mirror's layout"
    )
    return path


@pytest.fixture
def project(tmp_path, monkeypatch, mirror) -> Path:
    """A fresh project root (copy of params.yaml + settings.ini) so a test never writes into the
    repo."""
    import cryptovol.config as config

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "settings.ini", tmp_path / "settings.ini")
    (tmp_path / "nbs").symlink_to(REPO / "nbs")
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(tmp_path))
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    config.reset_params()
    yield tmp_path
    config.reset_params()


@pytest.fixture(autouse=True)
def tiny_rv_net(request, monkeypatch):
    """Outside tests/test_rvnet.py, rv_net (a network fitted at every origin of every evaluation and
    backtest) trains 2 epochs of 1 seed: the other tests check that it runs and shows up everywhere;
    test_rvnet.py and benchmarks/rvnet.py check what it learns."""
    if request.module.__name__.endswith("test_rvnet"):
        return
    import dataclasses

    from cryptovol import rvnet

    full = rvnet.RVNetSpec.from_params.__func__

    def tiny(cls, section, windows=None):
        return dataclasses.replace(full(cls, section, windows), epochs=2, seeds=1)

    monkeypatch.setattr(rvnet.RVNetSpec, "from_params", classmethod(tiny))


@pytest.fixture(autouse=True)
def serial_by_default(request, monkeypatch):
    """In-process tests run the backtest's folds in this process unless they ask for processes or
    Ray (an explicit `Executor`, or `parallel.workers`/`address` set): the patches above (tiny
    rv_net) do not reach a spawned process. The command-line tests run the shipped default
    (`parallel.workers: null`, one process per core) for real."""
    from cryptovol.parallel import Executor

    shipped = Executor.from_params.__func__

    def from_params(cls, params=None):
        ex = shipped(cls, params)
        return cls(workers=1) if ex.workers is None and ex.address is None else ex

    monkeypatch.setattr(Executor, "from_params", classmethod(from_params))


# `make pytest` runs the tests in two processes (pytest-xdist, `--dist loadgroup`). A test file
# stays in one process, so its module fixtures are built once, except the files in SPLIT_FILES,
# whose tests are each minutes long and whose fixtures are cheap (test_backtest alone is ~18 min).
# The files that start Ray share one group, so two Ray instances (or a test's two-node cluster and
# another's local node) never meet.
RAY_FILES = {"test_parallel", "test_sweep", "test_benchmarks"}
SPLIT_FILES = {"test_backtest"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.stem
        if name not in SPLIT_FILES:
            item.add_marker(pytest.mark.xdist_group("ray" if name in RAY_FILES else name))
