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

// Logging: one line to stderr per call, never one per frame. Levels: debug
// (shown only with [health] log_level = debug), info (tb_log), warn, error.
// The line is "tabula: MSG" for info and "tabula: warn: MSG" (debug:, error:)
// otherwise, after a prefix: under systemd's journal (JOURNAL_STREAM names
// fd 2) the syslog priority, "<4>", for journald to read (it stamps the time
// itself); elsewhere the local time to the millisecond,
// "2026-11-29T07:30:01.123 ". Each line is one write(2), so lines from
// different threads never interleave.
typedef enum { TB_LOG_DEBUG = 0, TB_LOG_INFO, TB_LOG_WARN, TB_LOG_ERROR } TbLogLevel;
#ifdef __GNUC__
#define TB_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TB_PRINTF(f, a)
#endif
void tb_debug(const char *fmt, ...) TB_PRINTF(1, 2);
void tb_log(const char *fmt, ...) TB_PRINTF(1, 2);
void tb_warn(const char *fmt, ...) TB_PRINTF(1, 2);
void tb_error(const char *fmt, ...) TB_PRINTF(1, 2);
void tb_logv(int level, const char *fmt, va_list ap);
// Lines below this level are dropped (default TB_LOG_INFO).
void tb_log_set_level(int level);
// "debug", "info", "warn", "error" -> TbLogLevel; -1 if none.
int tb_log_level_parse(const char *name);
// 1 if fd is the stream JOURNAL_STREAM ("DEV:INODE") names, as systemd sets it
// for a service whose output goes to the journal.
int tb_log_is_journal(int fd);
// The prefix and level word of a line ("<4>tabula: warn: " or
// "2026-11-29T07:30:01.123 tabula: warn: ") at wall_ms (ms since the epoch,
// local time) into buf; its length.
size_t tb_log_prefix(char *buf, size_t n, int level, int journal, int64_t wall_ms);

// Monotonic clock in seconds.
double tb_now(void);

// Memory the system can still give (MemAvailable), in bytes; 0 if unknown.
uint64_t tb_mem_available(void);
// A /proc file, read whole from its start through *fd (opened on the first
// call, -1 before, and kept open: a file opened and closed every second would
// make the process's descriptor count flicker; closed at exit). buf, or NULL if unreadable.
const char *tb_proc_read(const char *path, int *fd, char *buf, size_t n);

// malloc that CHECKs (out of host memory is not recoverable here).
void *tb_malloc(size_t n);
void *tb_calloc(size_t count, size_t size);

// v as the shortest of %.7g, %.8g, %.9g that reads back as the same float, so
// two logs compare bit for bit as text and 0.5 still reads 0.5. Returns buf.
const char *tb_fmt_float(char buf[24], float v);

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
