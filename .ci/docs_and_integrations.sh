#!/usr/bin/env bash
# Documentation and integrations. .ci/run's packaging stage calls this from
# the environment where it installed the wheel with the test, onnx and dask
# extras.
#
# 1. Integrations, in the current environment: the ONNX and dask tests, and
#    the documentation's Python snippets (tests/test_doc_snippets.py: with
#    the extras installed, the onnx and dask snippets run too). With the
#    extras there, nothing may be skipped but the snippets the pages
#    themselves mark as not runnable here.
# 2. The documentation, in a fresh environment of its own, by the command
#    README.md gives under "Documentation", read from README.md and run as
#    written: `pip install ".[docs]"` (the docs extra alone, as a reader
#    installs it) and `sphinx -W` (the gallery examples run during the build;
#    conf.py makes every cross-reference an error if it does not resolve).
set -euo pipefail
cd "$(dirname "$0")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
export MPLBACKEND=Agg

# The extras' requirements, read from the installed cymlp's metadata, so that
# pip does not rebuild cymlp itself (as `pip install ".[onnx,dask]"` would)
# when this script runs on its own in an environment that lacks them.
mapfile -t requirements < <(python - <<'PY'
from importlib.metadata import requires

try:
    from packaging.requirements import Requirement
except ImportError:  # packaging comes with pytest; pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement

wanted = {"test", "onnx", "dask"}
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
echo "== the test, onnx and dask extras: ${requirements[*]}"
python -m pip install -q "${requirements[@]}"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== ONNX export, dask and documentation snippet tests"
start=$SECONDS
status=0
python -m pytest tests/test_onnx.py tests/test_dask.py tests/test_doc_snippets.py \
    tests/test_fitted_state.py::test_onnx_export_checks_fitted_state \
    tests/test_vocabulary.py::test_onnx_converter_covers_every_activation \
    tests/test_per_layer_activations.py::test_onnx_export_of_a_mixed_network \
    -p no:cacheprovider -rs 2>&1 \
    | tee "$out/pytest.log" || status=$?
echo "integration tests ran in $((SECONDS - start)) s"
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
# With the extras installed nothing may be skipped, except the snippets that
# the documentation marks as not runnable here (their reason starts with
# "not run:").
if grep -E '^SKIPPED' "$out/pytest.log" | grep -vq 'not run:'; then
    echo "error: integration tests were skipped although the extras are installed" >&2
    exit 1
fi

# The references in PyTorch: the modern recipe's schedules, losses, AdamW and
# clipping are checked against torch's own where torch is installed, and the
# benchmark suite's torch worker against numpy and cymlp (the tests skip
# without it); here it is, and none may skip for want of it.
echo "== PyTorch references"
python -m pip install -q "torch==2.13.0"
TORCH_TESTS=(tests/test_recipe.py tests/test_adamw_clipping.py
             tests/test_benchmark_torch_worker.py
             tests/test_per_layer_activations.py::test_gradient_matches_torch
             tests/test_per_layer_activations.py::test_one_step_matches_torch)
python -m pytest "${TORCH_TESTS[@]}" -p no:cacheprovider -rs 2>&1 | tee "$out/torch.log"
if grep -E '^SKIPPED' "$out/torch.log" | grep -q "torch"; then
    echo "error: a PyTorch reference test was skipped although torch is installed" >&2
    exit 1
fi

echo "== the documentation, by README.md's command, in a fresh environment"
rm -rf .venv-docs docs/_build
python3 -m venv .venv-docs
# shellcheck disable=SC1091
. .venv-docs/bin/activate
command=$(python .ci/readme_command.py "Documentation")
echo "\$ ${command}"
start=$SECONDS
bash -euo pipefail -c "${command}"
echo "docs built in $((SECONDS - start)) s"
