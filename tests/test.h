// test.h: tiny assertion helpers shared by the C tests. Every check counts;
// the program prints "N passed, N failed" and exits 1 if any check failed.
// A test that cannot run here (no GPU, no display) calls TEST_SKIP: exit 77.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tt_pass_, tt_fail_;

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            tt_pass_++;                                                       \
        } else {                                                              \
            tt_fail_++;                                                       \
            fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

// |a-b| <= tol, printing both values when it fails.
#define EXPECT_NEAR(a, b, tol, what)                                                   \
    do {                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                     \
        EXPECT(fabs(a_ - b_) <= (tol), "%s: %.9g vs %.9g (tol %.3g)", what, a_, b_,    \
               (double)(tol));                                                         \
    } while (0)

#define TEST_SKIP(...)                   \
    do {                                 \
        printf("SKIP: ");                \
        printf(__VA_ARGS__);             \
        printf("\n");                    \
        fflush(stdout);                  \
        exit(77);                        \
    } while (0)

static inline int test_finish(void) {
    printf("%d passed, %d failed\n", tt_pass_, tt_fail_);
    return tt_fail_ ? 1 : 0;
}

// Path to a file in the shared data folder ($TABULA_DATA, set by CTest).
static inline const char *test_data(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *d = getenv("TABULA_DATA");
    if (!d) d = "../shared/data";
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d, name);
    return buf[k];
}

// Largest relative error between two arrays: max|a-b| / max(max|b|, floor).
static inline double max_rel_err(const float *a, const float *b, size_t n, double floor_) {
    double md = 0, mb = floor_;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = (d != d) ? INFINITY : d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return md / mb;
}
