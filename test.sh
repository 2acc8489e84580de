#!/usr/bin/env bash
# Runs the test suite. Creates or repairs the environment first (see local/env.sh).
#   ./test.sh                 all tests
#   ./test.sh tests/graph -x  extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"
source local/env.sh
exec python -m pytest -q "$@"
