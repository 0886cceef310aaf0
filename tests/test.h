// test.h: the tiny runner and assertions shared by the C tests (libuv's test
// list is the model). A test program is a list of named cases:
//
//   TEST_IMPL(lr_steps_four_a_decade) { ... EXPECT(...); ... }
//   TEST_MAIN(TEST_ENTRY(lr_steps_four_a_decade), TEST_ENTRY(...))
//
// Each case prints "ok NAME" or "FAIL NAME" (its failed checks above it with
// file:line and the case's name); the program ends with "N passed, N failed"
// (cases) and exits 1 if any failed. `./test_x NAME` runs one case. A case
// that makes no check fails (a test that cannot fail is no test). A program
// that cannot run here (no GPU, no display) calls TEST_SKIP: exit 77; one case
// that cannot calls TEST_SKIP_CASE and the others still run.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tt_pass_, tt_fail_;
static const char *tt_case_ = "main";
static int tt_case_skipped_;

#define EXPECT(cond, ...)                                                     \
    do {                                                                      \
        if (cond) {                                                           \
            tt_pass_++;                                                       \
        } else {                                                              \
            tt_fail_++;                                                       \
            fprintf(stderr, "%s:%d: FAIL [%s]: %s: ", __FILE__, __LINE__, tt_case_, #cond); \
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

// Skip the current case (the others still run), with the reason printed.
#define TEST_SKIP_CASE(...)              \
    do {                                 \
        printf("SKIP %s: ", tt_case_);   \
        printf(__VA_ARGS__);             \
        printf("\n");                    \
        tt_case_skipped_ = 1;            \
        return;                          \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} TestCase;

#define TEST_IMPL(name) static void test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name}

static inline int test_run(const TestCase *cases, size_t n, int argc, char **argv) {
    int ran = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
        tt_case_ = cases[i].name;
        tt_case_skipped_ = 0;
        int pass0 = tt_pass_, fail0 = tt_fail_;
        cases[i].fn();
        fflush(stderr);
        ran++;
        int bad = tt_fail_ > fail0;
        if (!bad && !tt_case_skipped_ && tt_pass_ == pass0) {
            fprintf(stderr, "FAIL [%s]: the case made no check\n", tt_case_);
            bad = 1;
        }
        if (bad) failed++;
        else if (tt_case_skipped_) skipped++;
        printf("%s %s\n", bad ? "FAIL" : tt_case_skipped_ ? "skip" : "ok", tt_case_);
        fflush(stdout);
    }
    tt_case_ = "main";
    if (argc > 1 && ran == 0) {
        fprintf(stderr, "no case named \"%s\"\n", argv[1]);
        return 2;
    }
    printf("%d passed, %d failed, %d skipped\n", ran - failed - skipped, failed, skipped);
    if (failed) return 1;
    return ran > 0 && skipped == ran ? 77 : 0;
}

#define TEST_MAIN(...)                                                          \
    int main(int argc, char **argv) {                                           \
        static const TestCase cases_[] = {__VA_ARGS__};                         \
        return test_run(cases_, sizeof cases_ / sizeof cases_[0], argc, argv);  \
    }

// A whole (small) text file, in a static buffer (NULL if it cannot be read).
static inline char *test_read_all(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

// How many times needle occurs in text (0 for a NULL text).
static inline int test_count(const char *text, const char *needle) {
    int k = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p++) k++;
    return k;
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

// NCHW <-> oneDNN's blocked nChw16c (C a multiple of 16): back 0 packs src
// (NCHW) into dst, back 1 unpacks.
static inline void to_c16(float *dst, const float *src, int B, int C, int HW, int back) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)b * C + c) * HW + p;
                size_t j = (((size_t)b * (C / 16) + c / 16) * HW + p) * 16 + c % 16;
                if (back) dst[i] = src[j];
                else dst[j] = src[i];
            }
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
