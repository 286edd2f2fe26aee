#!/usr/bin/env bash
# Documentation and integrations: install the docs, onnx and dask extras into
# the current environment (where cymlp is already installed), build the docs
# with warnings as errors (the gallery examples run during the build), and run
# the ONNX and dask tests. .ci/run calls this after the main test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
export MPLBACKEND=Agg

# The extras' requirements, read from the installed cymlp's metadata, so that
# pip does not rebuild cymlp itself (as `pip install ".[docs,onnx,dask]"` would).
mapfile -t requirements < <(python - <<'PY'
from importlib.metadata import requires

try:
    from packaging.requirements import Requirement
except ImportError:  # packaging comes with pytest; pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement

wanted = {"docs", "onnx", "dask"}
found = set()
for text in requires("cymlp") or []:
    req = Requirement(text)
    for extra in wanted:
        if req.marker is not None and req.marker.evaluate({"extra": extra}):
            found.add(extra)
            req.marker = None
            print(req)
            break
missing = wanted - found
if missing:
    raise SystemExit("cymlp's metadata declares no extra(s): %s" % ", ".join(sorted(missing)))
PY
)
echo "== installing the docs, onnx and dask extras: ${requirements[*]}"
python -m pip install "${requirements[@]}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== building the documentation (sphinx -W)"
start=$SECONDS
python -m sphinx -W --keep-going -q -b html docs "$out/html"
echo "docs built in $((SECONDS - start)) s"

echo "== ONNX export and dask tests"
start=$SECONDS
status=0
python -m pytest tests/test_onnx.py tests/test_dask.py \
    tests/test_fitted_state.py::test_onnx_export_checks_fitted_state \
    tests/test_activation_table.py::test_onnx_converter_covers_every_activation \
    -p no:cacheprovider 2>&1 \
    | tee "$out/pytest.log" || status=$?
echo "integration tests ran in $((SECONDS - start)) s"
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
# with the extras installed nothing may be skipped
if grep -Eq '^=+ .*[0-9]+ skipped' "$out/pytest.log"; then
    echo "error: integration tests were skipped although the extras are installed" >&2
    exit 1
fi
