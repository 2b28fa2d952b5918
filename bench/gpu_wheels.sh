#!/usr/bin/env bash
# Fetches, into .whl/ (git-ignored), the pure-Python packages the GPU benchmarks need that the lent
# H200's image lacks (it has torch, transformers, peft, tokenizers, safetensors, accelerate, but
# not MONAI, Ignite, nibabel or segment-anything) plus the bundle's own transformers and peft
# versions. Run it here, at no device time; then every device call carries .whl and starts with
# the install line printed at the end. Nothing is fetched on the device (it reaches nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" && touch "$exclude"
grep -qxF '/.whl/' "$exclude" || echo '/.whl/' >> "$exclude"
rm -rf .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl monai==1.6.1 pytorch-ignite==0.5.5 nibabel==5.4.2 segment-anything==1.0 \
    transformers==5.23.0 peft==0.21.2 fire==0.7.1 termcolor==3.3.0
du -sh .whl
echo "device command prefix:"
echo "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:\$PWD || exit;"
