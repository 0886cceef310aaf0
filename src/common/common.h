// common.h: the one error-check macro, status-returning errors, small utilities.
// Included by every C and CUDA file of tabula.
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

// Broken invariant (a bug, not bad input): print where and why, exit(1).
// Stays on in release builds.
#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "tabula: %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, \
                    #cond);                                                        \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

// Exit codes of the program (and of the CLI tests).
enum { TB_EXIT_OK = 0, TB_EXIT_INTERNAL = 1, TB_EXIT_INPUT = 2, TB_EXIT_SKIP = 77 };

// Environment errors (bad file, no camera, no GPU, full disk) travel up as a
// status: a function returns 0 on success or -1 after filling a TbErr.
// It never calls exit().
typedef struct {
    char msg[512];
} TbErr;

// Fill err with a printf-style message and return -1 (so: `return tb_fail(err, ...)`).
int tb_fail(TbErr *err, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

// Log a line to stderr prefixed with "tabula: ".
void tb_log(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

// Monotonic clock in seconds.
double tb_now(void);

// Memory the system can still give (MemAvailable), in bytes; 0 if unknown.
uint64_t tb_mem_available(void);

// malloc that CHECKs (out of host memory is not recoverable here).
void *tb_malloc(size_t n);
void *tb_calloc(size_t count, size_t size);

// Deterministic RNG (xorshift64*), used for init and replay sampling so runs
// with the same --seed are reproducible on every backend.
typedef struct {
    uint64_t s;
} TbRng;
void tb_rng_seed(TbRng *r, uint64_t seed);
uint32_t tb_rng_u32(TbRng *r);
float tb_rng_uniform(TbRng *r);  // [0, 1)
float tb_rng_normal(TbRng *r);   // N(0, 1)

#ifdef __cplusplus
}
#endif
