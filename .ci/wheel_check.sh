#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it (not editable) into a fresh venv and,
# from an empty folder, run the commands the README promises work without the checkout.
# The venv sees the system site-packages so torch is not downloaded again; mtlkit itself comes
# only from the wheel (checked below).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Built from a copy of the files git knows (tracked or not ignored): setuptools writes build/ and
# *.egg-info into the source folder, and ignored local files must not reach the wheel.
mkdir "$work/src"
# (a tracked file deleted but not yet staged has nothing to copy, hence the tolerated cp errors)
git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && xargs -0 cp --parents -t "$work/src" 2>/dev/null || true)
python -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$work/dist" "$work/src"
wheel=("$work"/dist/mtlkit-*.whl)
python -m venv --system-site-packages "$work/venv"
# --no-deps: the dependencies are the system ones; --force-reinstall shadows an editable install there.
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "${wheel[0]}"

mkdir "$work/empty"
cd "$work/empty"
export PATH="$work/venv/bin:$PATH"
unset MTLKIT_EXAMPLES
where="$(python -c 'import mtlkit, pathlib; print(pathlib.Path(mtlkit.__file__).parent)')"
case "$where" in
  "$work/venv/"*) ;;
  *) echo "wheel check: mtlkit imported from $where, not from the wheel" >&2; exit 1 ;;
esac
python -c 'import importlib.resources as r; assert r.files("mtlkit").joinpath("py.typed").is_file(), "no py.typed"'

mtlkit --version
OMP_NUM_THREADS=1 mtlkit demo --epochs 1 --no-progress
mtlkit list --examples "$repo/examples"
if [ -n "${MTLKIT_DATA:-}" ]; then
  OMP_NUM_THREADS=1 mtlkit reproduce coursework-task1 --mode quick --examples "$repo/examples" \
    --results-dir "$work/results" --runs-dir "$work/runs" --no-progress
  test -s "$work/results/coursework_task1.json"
fi
# Without an examples folder: one line saying what to pass, exit code 2, no traceback.
set +e
message="$(mtlkit reproduce coursework-task1 2>&1)"
code=$?
set -e
if [ "$code" -ne 2 ] || [ "$(printf '%s\n' "$message" | wc -l)" -ne 1 ] || [[ "$message" == *Traceback* ]]; then
  echo "wheel check: reproduce without --examples gave exit $code and: $message" >&2
  exit 1
fi
echo "wheel check passed: $message"
