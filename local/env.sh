#!/usr/bin/env bash
# Source me. Creates or repairs the project's virtual environment (.venv) and activates it.
#
#   UASR_VENV    where the environment lives (default: <repo>/.venv)
#   UASR_TORCH   pip requirement used when torch is missing (default: torch==2.13.0, the CPU
#                wheel that this project's machines carry; set e.g. UASR_TORCH=torch for a
#                CUDA build elsewhere). An already installed torch is never replaced.
#
# The environment is (re)installed when it is missing, broken, or older than pyproject.toml.

uasr_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$uasr_root/local/log.sh"

# ensure_apt CMD PACKAGE: make sure command CMD exists, installing Debian PACKAGE if needed.
ensure_apt() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian package $pkg (for $cmd)"
    if [ ! -f /tmp/.uasr-apt-updated ]; then
      apt-get update -qq >/dev/null && touch /tmp/.uasr-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null \
      || die "apt-get install $pkg failed; install it by hand (it provides $cmd)"
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian package $pkg with sudo (for $cmd)"
    sudo apt-get install -y -qq "$pkg" >/dev/null || die "sudo apt-get install $pkg failed"
  else
    die "$cmd not found and apt-get is unavailable: install the package providing $cmd ($pkg on Debian/Ubuntu)"
  fi
}

uasr_venv="${UASR_VENV:-$uasr_root/.venv}"
uasr_stamp="$uasr_venv/.uasr-installed"

_uasr_python_ok() { "$uasr_venv/bin/python" -c 'import sys' >/dev/null 2>&1; }

if ! _uasr_python_ok; then
  command -v python3 >/dev/null 2>&1 || ensure_apt python3 python3
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "Python >= 3.10 is required (found $(python3 --version 2>&1))"
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || ensure_apt_pkg_venv=1
  if [ -n "${ensure_apt_pkg_venv:-}" ]; then
    pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    ensure_apt __uasr_no_such_cmd__ "python${pyver}-venv"
  fi
  log "creating virtual environment $uasr_venv"
  rm -rf "$uasr_venv"
  python3 -m venv "$uasr_venv" || die "python3 -m venv $uasr_venv failed"
fi

if [ ! -f "$uasr_stamp" ] || [ "$uasr_root/pyproject.toml" -nt "$uasr_stamp" ] \
   || ! "$uasr_venv/bin/python" -c 'import uasr, torch' >/dev/null 2>&1; then
  log "installing uasr and its dependencies into $uasr_venv (first run takes a few minutes)"
  "$uasr_venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if ! "$uasr_venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    "$uasr_venv/bin/python" -m pip install -q "${UASR_TORCH:-torch==2.13.0}" \
      || die "pip install ${UASR_TORCH:-torch==2.13.0} failed; set UASR_TORCH to a torch requirement that your index has"
  fi
  "$uasr_venv/bin/python" -m pip install -q -e "$uasr_root[dev]" \
    || die "pip install -e '$uasr_root[dev]' failed (see the pip output above)"
  touch "$uasr_stamp"
fi

# shellcheck disable=SC1091
source "$uasr_venv/bin/activate"
export PYTHONUNBUFFERED=1
