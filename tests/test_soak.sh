#!/usr/bin/env bash
# test_soak.sh: why it exists: a gallery runs tabula for weeks. A headless run
# on a real clip, thousands of frames with every writer on (metrics, events,
# snapshots asked for by a control), must not grow in memory or open files
# after its warm-up, and must keep its pace. (A longer run is a benchmark; see
# bench/RESULTS.md.) SOAK_FRAMES sets the length (default 3000).
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
FRAMES=${SOAK_FRAMES:-3000}
T=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT

# Start the run and sample its resident memory (kB) and open descriptors every
# 0.2 s until it ends.
# Passive OpenMP waits: on a shared machine spinning threads make the pace
# depend on the neighbours rather than on tabula.
OMP_WAIT_POLICY=passive "$BIN" --headless --backend cpu --size 32x32 --frames "$FRAMES" --memory 1 \
  --source "file:$DATA/asl_signer_a_320x240.y4m" --metrics "$T/m.jsonl" --events "$T/e.jsonl" \
  --save "$T/w.safetensors" --autosave.dir "$T/autosave" 2>"$T/err" &
pid=$!
sample_run "$pid" "$T/m.jsonl" "$T/samples"
wait "$pid"; rc=$?

run_finishes() { [ "$rc" = 0 ] && ok || bad "exit $rc: $(tail -3 "$T/err")"; }

# After the first quarter of the frames (warm-up: buffers grow to their size),
# memory may move by at most 8 MB and descriptors not at all while it trains
# (the saves at the end, --save and the last autosave, allocate and open once).
no_growth_after_warm_up() {
  if [ -n "${ASAN_OPTIONS:-}" ]; then  # set by CMake in a TABULA_SANITIZE build
    skip_case "AddressSanitizer keeps freed memory in quarantine: growth is measured in the plain build"
    return
  fi
  local n; n=$(wc -l < "$T/samples")
  [ "$n" -ge 8 ] || { bad "only $n samples: the run was too short to judge"; return; }
  awk -v q="$((FRAMES / 4))" -v n="$FRAMES" '
    $1 >= q && $1 < n { if (!seen) { r0 = $2; f0 = $3; seen = 1 }
              if ($2 - r0 > dr) dr = $2 - r0; if ($3 != f0) df = 1; last = $2 }
    END { printf "rss after warm-up %d kB, grew by at most %d kB; fds %s\n", r0, dr, df ? "changed" : "steady";
          exit !(seen && dr <= 8192 && !df) }' "$T/samples" && ok || bad "memory or descriptors grew"
}

# The pace of the last quarter is within a factor of two of the second's
# (no slow-down building up; generous for a shared machine).
steady_pace() {
  awk -F'"fps":' -v n="$FRAMES" '{ split($2, a, ","); f = a[1] + 0; i = NR
      if (i > n / 4 && i <= n / 2) { s1 += f; c1++ } if (i > 3 * n / 4) { s2 += f; c2++ } }
    END { if (!c1 || !c2) exit 1; m1 = s1 / c1; m2 = s2 / c2
          printf "frames/s: %.0f in the second quarter, %.0f in the last\n", m1, m2; exit !(m2 > m1 / 2) }' \
    "$T/m.jsonl" && ok || bad "the pace dropped"
}

run_case run_finishes
run_case no_growth_after_warm_up
run_case steady_pace
finish
