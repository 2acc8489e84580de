import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every engine test runs on the CPU and, when available, on CUDA."""
    return request.param


@pytest.fixture(scope="session")
def flite() -> None:
    """Debian's flite (and its t2p), installed like the recipes do when missing and root."""
    import shutil

    if not (shutil.which("flite") and shutil.which("t2p")):
        _apt_install("flite", ["flite"])


def _apt_install(what: str, packages: list[str]) -> None:
    """Install Debian packages like the recipes do (skip the test when that is impossible)."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"{what} is not installed and apt-get cannot install it here (not root)")
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    res = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], capture_output=True, text=True,
                         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if res.returncode != 0:
        pytest.skip(f"{what}: apt-get install {' '.join(packages)} failed: {res.stderr.strip()[-200:]}")


@pytest.fixture(scope="session")
def festival() -> None:
    """Debian's festival with its CMU-lexicon English voices (kal, ked diphones; slt HTS)."""
    import shutil
    from pathlib import Path

    from uasr.data.tts import FESTIVAL_VOICES

    missing = [pkg for _, pkg, sub in FESTIVAL_VOICES.values()
               if not (Path("/usr/share/festival/voices") / sub).is_dir()]
    if shutil.which("festival") and not missing:
        return
    _apt_install("festival", ["festival", *missing])


@pytest.fixture(scope="session")
def espeak_ng() -> None:
    """Debian's espeak-ng (the tests use libespeak-ng.so.1 through ctypes)."""
    import ctypes

    try:
        ctypes.CDLL("libespeak-ng.so.1")
        return
    except OSError:
        pass
    _apt_install("espeak-ng", ["espeak-ng"])
