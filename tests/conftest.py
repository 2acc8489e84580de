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
    import os
    import shutil
    import subprocess

    if shutil.which("flite") and shutil.which("t2p"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("flite is not installed and apt-get cannot install it here (not root)")
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "flite"], check=True, capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
