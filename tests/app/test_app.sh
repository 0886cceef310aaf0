#!/usr/bin/env bash
# test_app.sh: why it exists: this is the program as a user meets it: a real
# window (Xvfb + Mesa) on a real clip, driven by real key events. The C tests
# check the parts; only here would we notice that the parts are not wired
# together: a layout that shows the wrong thing, a key that changes nothing or
# the wrong parameter, S that saves no snapshot, Esc that does not quit, or a
# bad input that crashes the app instead of exiting 2 with a message.
# 1. Each layout's screenshot shows what it should.
# 2. Real key events (xdotool) change the parameters they name by the documented
#    step, and the metrics stream shows it; S saves a snapshot; Esc quits.
# 3. Bad inputs in app mode: a clear message, exit 2, no crash.
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
need_display "$@"
PY=/usr/bin/python3
$PY -c "import PIL" 2>/dev/null || skip_all "/usr/bin/python3 has no PIL (install python3-pil)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="file:$DATA/asl_signer_a_320x240.y4m"
RUN=(--backend cpu --size 64x64 --source "$CLIP" --steps-per-frame 1)

# ---- 1. layouts --------------------------------------------------------------
# One 30-frame run per layout, HUD off and on, each leaving a screenshot; done
# once for the cases below. Runs that failed are listed in layout_failed.
layouts_done=
layout_failed=()
run_layouts() {
  [ -n "$layouts_done" ] && return
  layouts_done=1
  for layout in mirror side triptych; do
    for hud in 0 1; do
      timeout 120 "$BIN" "${RUN[@]}" --layout $layout --hud $hud --frames 30 \
        --screenshot "$T/$layout-$hud.png" 2>"$T/err-$layout-$hud" || layout_failed+=("$layout-$hud")
    done
  done
}
# box_stats IMAGE X0 Y0 X1 Y1 (fractions of the image): mean RGB and the fraction
# of bright (>200) and non-black (>16) pixels in the box.
cat > "$T/stats.py" <<'PYEOF'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
W, H = im.size
x0, y0, x1, y1 = [float(v) for v in sys.argv[2:6]]
box = im.crop((int(x0 * W), int(y0 * H), int(x1 * W), int(y1 * H)))
px = list(box.getdata())
n = len(px)
mean = [sum(p[c] for p in px) / n for c in range(3)]
bright = sum(1 for p in px if max(p) > 200) / n
nonblack = sum(1 for p in px if max(p) > 16) / n
print("%.1f %.1f %.1f %.4f %.4f" % (mean[0], mean[1], mean[2], bright, nonblack))
PYEOF
box_stats() { $PY "$T/stats.py" "$@"; }
field() { echo "$1" | awk -v k="$2" '{print $k}'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a>=b)}'; }

each_layout_run_writes_its_screenshot() {
  run_layouts
  local f
  for f in "${layout_failed[@]}"; do
    bad "${f%-*} hud=${f##*-} run failed"; cat "$T/err-$f" >&2
  done
  for f in mirror-0 mirror-1 side-0 side-1 triptych-0 triptych-1; do
    [ -s "$T/$f.png" ] && ok || bad "no screenshot $f"
  done
}

# mirror: a 1:1 picture in a 16:9 window: black bars left and right, picture in the middle.
mirror_has_black_bars_and_a_picture() {
  run_layouts
  local s
  s=$(box_stats "$T/mirror-0.png" 0 0.3 0.1 0.7); ge 0.01 "$(field "$s" 5)" && ok || bad "mirror: left bar not black ($s)"
  s=$(box_stats "$T/mirror-0.png" 0.4 0.3 0.6 0.7); ge "$(field "$s" 5)" 0.9 && ok || bad "mirror: centre empty ($s)"
}

# side: camera (left) and reconstruction (right) differ after 30 frames from blank.
side_panes_differ_and_neither_is_blank() {
  run_layouts
  local l r d
  l=$(box_stats "$T/side-0.png" 0.05 0.3 0.45 0.7); r=$(box_stats "$T/side-0.png" 0.55 0.3 0.95 0.7)
  d=$(awk -v a="$l" -v b="$r" 'BEGIN{split(a,x," ");split(b,y," ");s=0;for(i=1;i<=3;i++){d=x[i]-y[i];s+=(d<0?-d:d)};print s}')
  ge "$d" 6 && ok || bad "side: panes look the same (left $l, right $r)"
  ge "$(field "$l" 5)" 0.9 && ge "$(field "$r" 5)" 0.9 && ok || bad "side: a pane is blank ($l | $r)"
}

# triptych: the error pane (right third) is not blank.
triptych_error_pane_not_blank() {
  run_layouts
  local e
  e=$(box_stats "$T/triptych-0.png" 0.7 0.35 0.97 0.65); ge "$(field "$e" 5)" 0.3 && ok || bad "triptych: error pane blank ($e)"
}

# HUD: light text top-left when on, none when off.
hud_text_only_when_on() {
  run_layouts
  local h1 h0
  h1=$(box_stats "$T/side-1.png" 0 0 0.35 0.12); h0=$(box_stats "$T/side-0.png" 0 0 0.35 0.12)
  ge "$(field "$h1" 4)" 0.01 && ok || bad "HUD on: no text pixels ($h1)"
  ge 0.001 "$(field "$h0" 4)" && ok || bad "HUD off: text pixels ($h0)"
}

# ---- 2. keys -------------------------------------------------------------------
# One run driven by real key presses, once for the cases below: keys_rc is
# "missing" without xdotool, else the exit code; esc_quit 0 if Esc did not quit.
keys_rc=
esc_quit=1
run_keys() {
  [ -n "$keys_rc" ] && return
  if ! command -v xdotool >/dev/null; then
    echo "keys: xdotool missing (install xdotool): key part not run" >&2; keys_rc=missing; return
  fi
  "$BIN" "${RUN[@]}" --lr 0.01 --momentum 0.9 --clip 1 --memory 0 --frames 100000 \
    --metrics "$T/m.jsonl" --files.snapshot_dir "$T/snaps" 2>"$T/keys.err" &
  local pid=$! wid i
  wid=$(timeout 30 xdotool search --sync --name '^tabula$' | head -1)
  key() {  # one key, then give training time to take a few frames with it
    xdotool windowfocus --sync "$wid" 2>/dev/null
    xdotool key --window "$wid" "$1"; sleep 1.2
  }
  sleep 2
  key Up; key Right; key c; key bracketright; key m; key x; key s
  key Escape
  for i in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  if kill -0 $pid 2>/dev/null; then esc_quit=0; kill $pid; fi
  wait $pid; keys_rc=$?
}

esc_quits_with_exit_0() {
  run_keys
  [ "$keys_rc" = missing ] && { bad "xdotool missing"; return; }
  [ $esc_quit = 1 ] || bad "Esc did not quit"
  [ $keys_rc = 0 ] && ok || { bad "exit $keys_rc after Esc"; cat "$T/keys.err" >&2; }
}

# The metrics stream shows each step: lr x10^(1/4), momentum +0.01, clip x sqrt2,
# steps/frame +1, memory +1, then clip off.
keys_step_their_parameters_in_the_metrics() {
  run_keys
  [ "$keys_rc" = missing ] && { bad "xdotool missing"; return; }
  cat > "$T/keys.py" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def seen(pred): return any(pred(r) for r in rows)
near = lambda a, b: abs(a - b) <= 1e-5 * max(1, abs(b))
checks = {
  "start lr 0.01": seen(lambda r: near(r["lr"], 0.01)),
  "Up: lr 0.0177828": seen(lambda r: near(r["lr"], 0.0177827941)),
  "Right: momentum 0.91": seen(lambda r: near(r["momentum"], 0.91)),
  "C: clip 1.41421": seen(lambda r: near(r["clip"], 1.41421356)),
  "]: steps_per_frame 2": seen(lambda r: r["steps_per_frame"] == 2),
  "M: memory 1": seen(lambda r: r["memory"] == 1),
  "X: clip off": seen(lambda r: r["clip"] == 0 and r["memory"] == 1),
}
last = rows[-1]
checks["final lr/momentum/clip/steps/memory"] = (near(last["lr"], 0.0177827941) and near(last["momentum"], 0.91)
    and last["clip"] == 0 and last["steps_per_frame"] == 2 and last["memory"] == 1)
bad = [k for k, v in checks.items() if not v]
print("%d rows; failed: %s" % (len(rows), bad))
sys.exit(1 if bad else 0)
PYEOF
  $PY "$T/keys.py" "$T/m.jsonl" && ok || { bad "keys did not show in metrics"; tail -3 "$T/m.jsonl" >&2; }
}

s_saves_a_snapshot() {
  run_keys
  [ "$keys_rc" = missing ] && { bad "xdotool missing"; return; }
  ls "$T"/snaps/snap-*.safetensors >/dev/null 2>&1 && ok || bad "S saved no snapshot"
}

# ---- 3. bad inputs in app mode: clear message, exit 2, no crash ---------------
missing_clip_exits_2_naming_it() {
  local rc
  "$BIN" --source "file:$T/none.mp4" --frames 5 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q "none.mp4" "$T/err" && ok || { bad "missing clip: exit $rc"; cat "$T/err" >&2; }
}
missing_camera_exits_2_naming_it() {
  local rc
  "$BIN" --source camera:/dev/video77 --frames 5 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q "/dev/video77" "$T/err" && ok || { bad "missing camera: exit $rc"; cat "$T/err" >&2; }
}
empty_image_folder_exits_2_saying_so() {
  local rc
  mkdir -p "$T/empty"
  "$BIN" --headless --source "dir:$T/empty" --frames 3 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q "empty" "$T/err" && ok || { bad "empty image folder: exit $rc"; cat "$T/err" >&2; }
}
broken_config_exits_2_naming_file_and_line() {
  local rc
  printf '[train]\nlr = fast\n' > "$T/bad.ini"
  "$BIN" --config "$T/bad.ini" 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q "bad.ini:2:" "$T/err" && ok || { bad "broken config: exit $rc"; cat "$T/err" >&2; }
}

run_case each_layout_run_writes_its_screenshot
run_case mirror_has_black_bars_and_a_picture
run_case side_panes_differ_and_neither_is_blank
run_case triptych_error_pane_not_blank
run_case hud_text_only_when_on
run_case esc_quits_with_exit_0
run_case keys_step_their_parameters_in_the_metrics
run_case s_saves_a_snapshot
run_case missing_clip_exits_2_naming_it
run_case missing_camera_exits_2_naming_it
run_case empty_image_folder_exits_2_saying_so
run_case broken_config_exits_2_naming_file_and_line
finish
