// signals.h: SIGTERM (systemctl stop), SIGINT (Ctrl+C) and SIGHUP end a run the
// way quitting does: the loops notice, then --save, --screenshot and the
// metrics are written and the program exits 0. A second signal while that is
// under way ends the process at once.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// Install the handlers (once, at start, before any thread).
void signals_install(void);
// 1 once a stop was asked for (the signal's number is logged when the run ends).
int signals_stop_requested(void);

#ifdef __cplusplus
}
#endif
