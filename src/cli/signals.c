// signals.c: a stop flag set by SIGTERM, SIGINT and SIGHUP (async-signal-safe:
// the handler only stores and, the second time, re-raises).
#define _DEFAULT_SOURCE
#include "signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    if (stop_signal) {  // asked twice: stop now
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int signals_stop_requested(void) { return stop_signal != 0; }
