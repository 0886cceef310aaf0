// check.h: `tabula --check`, a technician's view of the machine. One line each
// on stdout: the backend it would use, cameras, MIDI, audio, the display, free
// disk where files go, whether the configured folders are writable, the
// configured source and whether the training size fits. The probes that need
// the app's libraries (cameras through V4L2, the window) live in
// src/app/check.c and come in through a hook, so this layer includes nothing
// above it.
#pragma once
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// What the probes found that stops the configured setup from running.
typedef struct {
    int fails;
    char reasons[2048];  // "; "-separated
} CheckReport;

// One line of the report: "WHAT: ..." on stdout.
void check_line(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// A reason the configured setup cannot run (also counted in r).
void check_fail(CheckReport *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The app's probes (cameras, audio, display), NULL in a build without the app.
typedef void (*CheckAppProbes)(const Settings *s, CheckReport *r);

// Run every probe and print the verdict. Returns TB_EXIT_OK when the configured
// setup can run (the source opens, the training size fits, a window can open
// unless headless), TB_EXIT_INPUT with the reasons otherwise.
int check_run(const Settings *s, CheckAppProbes app);

#ifdef __cplusplus
}
#endif
