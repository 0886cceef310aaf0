// xvfb.h: for C window tests: whether a program is on the PATH, and running
// this test program again inside a virtual display (Xvfb) when there is none.
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static inline int test_in_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char dir[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, p, prog);
        if (access(dir, X_OK) == 0) return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

// No DISPLAY: exec xvfb-run with this program and its own arguments (a case
// name), read back from /proc/self/cmdline; skip (77, with the reason) when
// there is no xvfb-run. -noreset: the server would otherwise reset when the
// first window closes, and a second window could find it gone for a moment.
static inline void test_ensure_display(void) {
    const char *d = getenv("DISPLAY");
    if (d && d[0]) return;
    if (getenv("TABULA_TEST_UNDER_XVFB")) TEST_SKIP("xvfb-run ran us without a DISPLAY");
    if (!test_in_path("xvfb-run"))
        TEST_SKIP("no DISPLAY and no xvfb-run (install xvfb and xauth) to make one");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) TEST_SKIP("cannot find this program's path: %s", strerror(errno));
    self[n] = 0;
    setenv("TABULA_TEST_UNDER_XVFB", "1", 1);
    printf("no DISPLAY: running again under xvfb-run\n");
    fflush(stdout);
    char *args[16] = {"xvfb-run", "-a", "-s", "-screen 0 1280x720x24 -noreset", self};
    int na = 5;
    static char cmdline[4096];
    FILE *f = fopen("/proc/self/cmdline", "rb");
    size_t len = f ? fread(cmdline, 1, sizeof cmdline - 1, f) : 0;
    if (f) fclose(f);
    cmdline[len] = 0;
    for (size_t i = strlen(cmdline) + 1; i < len && na < 15; i += strlen(cmdline + i) + 1)
        args[na++] = cmdline + i;
    args[na] = NULL;
    execvp("xvfb-run", args);
    fprintf(stderr, "exec xvfb-run: %s\n", strerror(errno));
    exit(1);
}
