// common.c: errors, logging, clock, checked allocation, RNG.
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tb_fail(TbErr *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

// ---------------------------------------------------------------- logging

static int log_level = TB_LOG_INFO;
static int log_journal;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *const LEVEL_NAME[] = {"debug", "info", "warn", "error"};
static const char LEVEL_PRIORITY[] = {'7', '6', '4', '3'};  // syslog: debug, info, warning, err

void tb_log_set_level(int level) {
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int tb_log_level_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, LEVEL_NAME[i]) == 0) return i;
    return -1;
}

int tb_log_is_journal(int fd) {
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char end;
    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2) return 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    // Output redirected elsewhere under systemd keeps the variable: compare.
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void log_init(void) { log_journal = tb_log_is_journal(2); }

size_t tb_log_prefix(char *buf, size_t n, int level, int journal, int64_t wall_ms) {
    if (level < TB_LOG_DEBUG || level > TB_LOG_ERROR) level = TB_LOG_ERROR;
    char word[16] = "";
    if (level != TB_LOG_INFO) snprintf(word, sizeof word, "%s: ", LEVEL_NAME[level]);
    int len;
    if (journal) {
        len = snprintf(buf, n, "<%c>tabula: %s", LEVEL_PRIORITY[level], word);
    } else {
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;
        char stamp[32] = "";
        if (localtime_r(&secs, &tm)) strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        len = snprintf(buf, n, "%s.%03d tabula: %s", stamp, (int)(wall_ms % 1000), word);
    }
    return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

void tb_logv(int level, const char *fmt, va_list ap) {
    if (level < __atomic_load_n(&log_level, __ATOMIC_RELAXED)) return;
    pthread_once(&log_once, log_init);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    // The whole line in one buffer (a long one, e.g. a shader log, on the heap).
    char small[1024], *line = small;
    size_t pre = tb_log_prefix(small, sizeof small, level, log_journal, wall_ms);
    va_list aq;
    va_copy(aq, ap);
    int m = vsnprintf(small + pre, sizeof small - pre, fmt, aq);
    va_end(aq);
    if (m < 0) m = 0;
    size_t len = pre + (size_t)m;
    if (len + 1 >= sizeof small) {
        line = malloc(len + 2);
        if (!line) {
            line = small;
            len = sizeof small - 2;
        } else {
            memcpy(line, small, pre);
            vsnprintf(line + pre, (size_t)m + 1, fmt, ap);
        }
    }
    line[len++] = '\n';
    for (size_t at = 0; at < len;) {
        ssize_t w = write(2, line + at, len - at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        at += (size_t)w;
    }
    if (line != small) free(line);
}

#define TB_LOG_FN(name, level)          \
    void name(const char *fmt, ...) {   \
        va_list ap;                     \
        va_start(ap, fmt);              \
        tb_logv(level, fmt, ap);        \
        va_end(ap);                     \
    }
TB_LOG_FN(tb_debug, TB_LOG_DEBUG)
TB_LOG_FN(tb_log, TB_LOG_INFO)
TB_LOG_FN(tb_warn, TB_LOG_WARN)
TB_LOG_FN(tb_error, TB_LOG_ERROR)

double tb_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The descriptors tb_proc_read keeps, closed at exit so that nothing tabula
// opened is left open when it ends (tests/test_valgrind.sh checks).
static int *proc_fds[8];
static int n_proc_fds;
static void proc_close_all(void) {
    for (int i = 0; i < n_proc_fds; i++)
        if (*proc_fds[i] >= 0) close(*proc_fds[i]), *proc_fds[i] = -1;
}

const char *tb_proc_read(const char *path, int *fd, char *buf, size_t n) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);  // the first open, once
    if (*fd < 0 && n_proc_fds < 8 && (*fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (n_proc_fds == 0) atexit(proc_close_all);
        proc_fds[n_proc_fds++] = fd;
    }
    int f = *fd;
    pthread_mutex_unlock(&mu);
    if (f < 0 || n == 0) return NULL;
    size_t len = 0;
    ssize_t got;
    while (len + 1 < n && (got = pread(f, buf + len, n - 1 - len, (off_t)len)) > 0) len += (size_t)got;
    buf[len] = 0;
    return len ? buf : NULL;
}

uint64_t tb_mem_available(void) {
    static int fd = -1;
    char text[4096];
    const char *at = tb_proc_read("/proc/meminfo", &fd, text, sizeof text) ? strstr(text, "MemAvailable:") : NULL;
    unsigned long long kb = 0;
    if (!at || sscanf(at, "MemAvailable: %llu kB", &kb) != 1) return 0;
    return (uint64_t)kb * 1024;
}

void *tb_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL, "out of memory allocating %zu bytes", n);
    return p;
}

void *tb_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    CHECK(p != NULL, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

const char *tb_fmt_float(char buf[24], float v) {
    for (int digits = 7; digits < 9; digits++) {
        snprintf(buf, 24, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) return buf;
    }
    snprintf(buf, 24, "%.9g", (double)v);  // nine always read back (NaN, inf: as printed)
    return buf;
}

void tb_rng_seed(TbRng *r, uint64_t seed) {
    // splitmix64 so that nearby seeds give unrelated streams; never 0.
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x2545F4914F6CDD1Dull;
}

uint32_t tb_rng_u32(TbRng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545F4914F6CDD1Dull) >> 32);
}

float tb_rng_uniform(TbRng *r) { return (float)(tb_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float tb_rng_normal(TbRng *r) {
    // Box-Muller; u1 in (0,1] so log is finite.
    float u1 = 1.0f - tb_rng_uniform(r);
    float u2 = tb_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}
