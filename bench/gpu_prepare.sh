#!/usr/bin/env bash
# gpu_prepare.sh: run here before a GPU session. The device machine gets this
# checkout but not ../shared, so one real clip is copied into gpu-data/ (kept
# out of git through .git/info/exclude); name "gpu-data" in the device tool's
# carry and run bench/gpu_session.sh there:
#   bench/gpu_prepare.sh && <device run> "bash bench/gpu_session.sh"  (carry: gpu-data)
set -eu
cd "$(dirname "$0")/.."
mkdir -p gpu-data
grep -qx '/gpu-data/' .git/info/exclude 2>/dev/null || echo '/gpu-data/' >> .git/info/exclude
cp ../shared/data/hikers_forest_320x240.y4m gpu-data/
du -sh gpu-data
