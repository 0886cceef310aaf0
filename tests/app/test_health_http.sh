#!/usr/bin/env bash
# test_health_http.sh: why it exists: a monitoring tool (Uptime Kuma, a
# Prometheus probe, curl from cron) polls GET /health to learn that the show
# is alive, and alerts on anything but 200. The endpoint must answer JSON with
# the health sample while the run goes on (the steps climbing between two
# reads), 404 anything else, listen on 127.0.0.1 only, and a port another
# program holds must cost one warning, never the run.
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
tmp_and_pids
cd "$T" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
RUN=(--osc.port 0 --midi 0 --headless --backend cpu --width 32 --height 32 --channels 8,16 --autosave.minutes 0
  --source pattern)

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The client: waits for a 200, checks the JSON, reads again and wants more
# steps, then /other. Prints what failed and exits 1, or exits 0.
client() {
  "$PY" - "$1" <<'PYEOF'
import json, sys, time, urllib.error, urllib.request
port = sys.argv[1]
def get(path):
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
    except urllib.error.HTTPError as e:
        r = e
    except OSError as e:
        return 0, "", str(e)
    return r.status, r.headers.get("Content-Type"), r.read().decode()
end = time.time() + 60
code = 0
while time.time() < end:
    code, ctype, body = get("/health")
    if code == 200:
        break
    time.sleep(0.2)
fails = []
if code != 200:
    sys.exit(f"no 200 from /health in 60 s: {code} {body}")
if ctype != "application/json":
    fails.append(f"Content-Type {ctype}")
a = json.loads(body)
keys = ["status", "uptime_s", "fps", "steps_per_s", "loss", "step", "frame", "rss_mb", "mem_available_mb",
        "gpu_mem_used_mb", "gpu_mem_total_mb", "camera", "camera_msg", "dropped_frames", "dropped_events",
        "rollbacks"]
if list(a) != keys:
    fails.append(f"keys {list(a)}")
if a.get("status") != "ok" or a.get("fps") is not None or a.get("camera") is not None:
    fails.append(f"headless sample: {body}")
if not (a.get("rss_mb") or 0) > 0 or a.get("dropped_frames") != 0:
    fails.append(f"rss or dropped frames: {body}")
time.sleep(1.6)
code2, _, body2 = get("/health")
b = json.loads(body2) if code2 == 200 else {}
if not b.get("step", 0) > a["step"] or not b.get("uptime_s", 0) > a["uptime_s"]:
    fails.append(f"no progress between two reads: {body} then {code2} {body2}")
code3, ctype3, body3 = get("/other")
if code3 != 404:
    fails.append(f"/other: {code3} {body3}")
if fails:
    sys.exit("; ".join(fails))
PYEOF
}

health_endpoint_serves_the_sample() {
  local P
  P=$(free_port)
  "$BIN" "${RUN[@]}" --frames 100000000 --health.http_port "$P" --health.every_s 0.5 2>"$T/err" &
  local pid=$!
  PIDS+=("$pid")
  if client "$P" 2>"$T/client"; then ok; else bad "$(cat "$T/client")"; fi
  # Only this machine: the port is not open on another address of it.
  local other
  other=$(hostname -I 2>/dev/null | awk '{print $1}')
  if [ -n "$other" ] && [ "${other#127.}" = "$other" ]; then
    "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex(('$other', $P)) == 0)" &&
      ok || bad "/health answers on $other"
  fi
  kill -TERM "$pid"
  wait "$pid"
  check [ $? = 0 ]
  check grep -q "tabula: health: GET http://127.0.0.1:$P/health" "$T/err"
  check grep -qE "tabula: health ok: uptime [0-9.]+ s, steps/s [0-9.]+, loss" "$T/err"
}

busy_port_warns_and_the_run_goes_on() {
  # Another program holds the port (listening) for the whole run.
  "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$T/holder" &
  PIDS+=("$!")
  local P="" i
  for i in $(seq 100); do P=$(cat "$T/holder"); [ -n "$P" ] && break; sleep 0.1; done
  [ -n "$P" ] || { bad "the port holder did not start"; return; }
  "$BIN" "${RUN[@]}" --frames 20 --health.http_port "$P" 2>"$T/err2"
  check [ $? = 0 ]
  check grep -q "tabula: warn: health: cannot serve /health on 127.0.0.1:$P: Address already in use" "$T/err2"
  check grep -q "tabula: done: 20 frames" "$T/err2"
  local n
  n=$(grep -c "health:" "$T/err2")
  [ "$n" = 1 ] && ok || bad "$n lines about /health, want one: $(grep "health:" "$T/err2")"
}

off_by_default() {
  "$BIN" "${RUN[@]}" --frames 2 2>"$T/err3"
  check [ $? = 0 ]
  grep -q "GET http" "$T/err3" && bad "/health served with http_port 0" || ok
}

run_case health_endpoint_serves_the_sample
run_case busy_port_warns_and_the_run_goes_on
run_case off_by_default
finish
