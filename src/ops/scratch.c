// scratch.c: growing buffers per thread, one per use (TbBuffer), reused by
// every op. Each is also listed globally, so that it stays reachable (no
// LeakSanitizer report for threads the OpenMP runtime keeps) and is freed when
// its thread ends (the key's destructor) or at exit.
#include <pthread.h>
#include <stdlib.h>

#include "common.h"
#include "ops.h"

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void **all;  // every live buffer (NULL where one was freed)
static size_t n_all, cap_all;

typedef struct {
    void *buf[TB_BUF_COUNT];
    size_t cap[TB_BUF_COUNT], slot[TB_BUF_COUNT];
} Buffers;

static void forget(Buffers *b, int which) {
    pthread_mutex_lock(&mu);
    if (b->slot[which] < n_all) all[b->slot[which]] = NULL;
    pthread_mutex_unlock(&mu);
    free(b->buf[which]);
    b->buf[which] = NULL;
    b->cap[which] = 0;
}

static void destroy(void *p) {
    for (int i = 0; i < TB_BUF_COUNT; i++) forget(p, i);
    free(p);
}

static void free_all(void) {
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_all; i++) free(all[i]), all[i] = NULL;
    pthread_mutex_unlock(&mu);
}

static void init(void) {
    CHECK(pthread_key_create(&key, destroy) == 0, "pthread_key_create");
    atexit(free_all);
}

void *tb_thread_buffer(int which, size_t bytes) {
    CHECK(which >= 0 && which < TB_BUF_COUNT, "thread buffer %d", which);
    pthread_once(&once, init);
    Buffers *b = pthread_getspecific(key);
    if (!b) {
        b = tb_calloc(1, sizeof *b);
        for (int i = 0; i < TB_BUF_COUNT; i++) b->slot[i] = (size_t)-1;
        CHECK(pthread_setspecific(key, b) == 0, "pthread_setspecific");
    }
    if (bytes > b->cap[which]) {
        forget(b, which);
        b->cap[which] = (bytes + 16383) & ~(size_t)16383;  // whole 16 KiB steps, 64-byte multiples
        b->buf[which] = aligned_alloc(64, b->cap[which]);
        CHECK(b->buf[which] != NULL, "out of memory for a %zu-byte scratch buffer", b->cap[which]);
        pthread_mutex_lock(&mu);
        if (n_all == cap_all) {
            cap_all = cap_all ? 2 * cap_all : 16;
            all = realloc(all, cap_all * sizeof *all);
            CHECK(all != NULL, "out of memory");
        }
        b->slot[which] = n_all;
        all[n_all++] = b->buf[which];
        pthread_mutex_unlock(&mu);
    }
    return b->buf[which];
}
