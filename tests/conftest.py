"""Shared fixtures: the real offline mirror and throw-away project roots."""
import os, shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# $CRYPTOVOL_DATA_DIR (the Makefile sets it), else the snapshot shipped in the repository: tests never need ../shared
MIRROR = Path(os.environ.get("CRYPTOVOL_DATA_DIR") or REPO/"data"/"snapshot")


@pytest.fixture(scope="session")
def mirror() -> Path:
    "The real offline data folder (yahoo/ and sentiment/): $CRYPTOVOL_DATA_DIR or data/snapshot."
    if not (MIRROR/"yahoo").is_dir():
        pytest.skip(f"offline mirror not found at {MIRROR}; set CRYPTOVOL_DATA_DIR")
    return MIRROR


@pytest.fixture
def project(tmp_path, monkeypatch, mirror) -> Path:
    "A fresh project root (copy of params.yaml + settings.ini) so a test never writes into the repo."
    import cryptovol.config as config
    shutil.copy(REPO/"params.yaml", tmp_path/"params.yaml")
    shutil.copy(REPO/"settings.ini", tmp_path/"settings.ini")
    (tmp_path/"nbs").symlink_to(REPO/"nbs")
    monkeypatch.setenv("CRYPTOVOL_ROOT", str(tmp_path))
    monkeypatch.setenv("CRYPTOVOL_DATA_DIR", str(mirror))
    config.reset_params()
    yield tmp_path
    config.reset_params()
