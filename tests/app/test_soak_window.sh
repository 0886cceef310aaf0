#!/usr/bin/env bash
# test_soak_window.sh: why it exists: the headless soak (tests/test_soak.sh)
# cannot see what only the window run does every frame: textures, the HUD's
# text, the capture and training threads handing frames over, the watchdog
# pings. A shorter run of the real window under Xvfb must not grow in memory
# or open files after its warm-up either, and must keep drawing.
# SOAK_WINDOW_FRAMES sets the length (default 1200 trained frames).
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
need_display "$@"
FRAMES=${SOAK_WINDOW_FRAMES:-1200}
T=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT

# The clip at 100 frames/s (four times real time), HUD on, every writer on;
# resident memory (kB), descriptors and metrics lines sampled every 0.2 s.
OMP_WAIT_POLICY=passive "$BIN" --backend cpu --size 32x32 --frames "$FRAMES" --fps 100 --hud 1 \
  --source "file:$DATA/asl_signer_a_320x240.y4m" --metrics "$T/m.jsonl" --events "$T/e.jsonl" \
  --health.every_s 1 --autosave.dir "$T/autosave" 2>"$T/err" &
pid=$!
sample_run "$pid" "$T/m.jsonl" "$T/samples"
wait "$pid"; rc=$?

window_run_finishes() {
  [ "$rc" = 0 ] && ok || bad "exit $rc: $(tail -3 "$T/err")"
  [ "$(wc -l < "$T/m.jsonl")" -ge "$FRAMES" ] && ok || bad "$(wc -l < "$T/m.jsonl") of $FRAMES frames trained"
  grep -q "live summary: .*display [1-9]" "$T/err" && ok || bad "no frames drawn: $(grep summary "$T/err")"
}

# After the first quarter, memory may move by at most 8 MB, and the descriptors
# of the last quarter come back to the count after warm-up (one may be open for
# a moment when a sample is taken: the health line reads /proc/self/status).
window_no_growth_after_warm_up() {
  if [ -n "${ASAN_OPTIONS:-}" ]; then  # set by CMake in a TABULA_SANITIZE build
    skip_case "AddressSanitizer keeps freed memory in quarantine: growth is measured in the plain build"
    return
  fi
  local n; n=$(wc -l < "$T/samples")
  [ "$n" -ge 8 ] || { bad "only $n samples: the run was too short to judge"; return; }
  awk -v q="$((FRAMES / 4))" -v n="$FRAMES" '
    $1 >= q && $1 < n { if (!seen) { r0 = $2; f0 = $3; seen = 1 }
              if ($2 - r0 > dr) dr = $2 - r0 }
    $1 >= 3 * q && $1 < 4 * q { if (fmin == "" || $3 < fmin) fmin = $3 }
    END { printf "rss after warm-up %d kB, grew by at most %d kB; fds %d after warm-up, %s at the end\n",
                 r0, dr, f0, fmin
          exit !(seen && dr <= 8192 && fmin != "" && fmin <= f0) }' "$T/samples" && ok ||
    bad "memory or descriptors grew"
}

run_case window_run_finishes
run_case window_no_growth_after_warm_up
finish
