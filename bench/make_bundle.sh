#!/usr/bin/env bash
# Makes .carry/bundle.txz, the FlashInfer wheels and prebuilt modules that bench/committed_run.sh
# installs on the GPU machine (which has no network), on a machine without a GPU. It downloads the two
# wheels of the table in bench/README.md into .whl/ (checking their sha256), prebuilds FlashInfer's
# modules into .whl/flashinfer-aot/ (bench/build_flashinfer_aot.py) and packs both. The prebuild
# needs torch, ninja and nvcc of the GPU machine's CUDA major.minor; VENV is a Python 3.12 venv with
# torch 2.11.0 (made, with torch from PyPI, when it does not exist: ~3 GB). Steps already done are
# kept. The prebuild takes ~15 minutes on 2 cores (the fa3 prefill module most of it).
#
#   bench/make_bundle.sh [VENV]        (default VENV: build/peers-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${1:-build/peers-venv}")
wheels=(
  "flashinfer_python-0.6.8.post1-py3-none-any.whl 818f9b8cc2fe66c42a1f6264be4841ac8821ada703685a02cfccb2b5124a710b"
  "apache_tvm_ffi-0.1.15.post2-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl 059eed9bfc94bcd41650fb8eefde74040a1bc7e7b1a6f0a8ff897b02b118875b"
)
names=()
for entry in "${wheels[@]}"; do names+=("${entry%% *}"); done
mkdir -p .whl .carry
for entry in "${wheels[@]}"; do
  set -- $entry
  if [ ! -f ".whl/$1" ]; then
    requirement=$(echo "$1" | sed -E 's/^([a-z_]+)-([^-]+)-.*/\1==\2/')  # pip reads _ as -
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform any -d .whl "$requirement"
  fi
  echo "$2  .whl/$1" | sha256sum --check --quiet || { echo "make_bundle: .whl/$1 is not the wheel bench/README.md names"; exit 1; }
done
if [ ! -f .whl/flashinfer-aot/manifest.json ]; then
  if [ ! -x "$venv/bin/python" ]; then
    python3.12 -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.11.0 ninja
  fi
  # What `import flashinfer` needs beyond torch (its other dependencies are imported only where used).
  "$venv/bin/pip" install -q einops tabulate packaging requests tqdm nvidia-ml-py click
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  "$venv/bin/pip" install -q --no-deps --target "$site" "${names[@]/#/.whl/}"
  PATH="$venv/bin:$PATH" PYTHONPATH="$site" "$venv/bin/python" bench/build_flashinfer_aot.py
fi
XZ_OPT=-9 tar -C .whl -cJf .carry/bundle.txz "${names[@]/#/./}" ./flashinfer-aot
echo "make_bundle: .carry/bundle.txz ($(du -h .carry/bundle.txz | cut -f1))"
