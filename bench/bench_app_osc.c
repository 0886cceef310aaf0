// bench_app_osc.c: OSC control latency. How long from sending
// `/tabula/param/lr f V` over loopback until the training loop runs its first
// frame with V (the event applied at the start of that frame) and until that
// frame's steps are done. The real surface (osc.c, its thread, the queue) and
// the real run loop (run.c, as the headless driver drives it) on a real clip;
// a client thread sends each message at a random moment once the one before
// it is in force, so the arrival falls anywhere within a frame.
//   bench_app_osc [--sizes 32x32,256x256] [--n 100] [--steps-per-frame 1]
//                 [--clip PATH.y4m]
// Prints send -> queued for the surface alone, then one line per size: frame
// time, send -> applied and send -> frame done (median, 95th percentile, max),
// in ms.
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <lo/lo.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "osc.h"
#include "parse.h"
#include "run.h"
#include "source.h"

#define MAX_N 1000

typedef struct {
    int port, n;
    double frame_s;           // a frame's time, for the random waits
    double t_send[MAX_N];     // written by the client before it sends message i
    atomic_int applied;       // how many messages the loop has seen in force
    float value[MAX_N];
} Bench;

static void *client_main(void *arg) {
    Bench *b = arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint64_t rng = 12345;
    for (int i = 0; i < b->n; i++) {
        while (atomic_load(&b->applied) < i) usleep(200);
        // A random moment within the next frame or two.
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        usleep((useconds_t)(1e6 * b->frame_s * 1.5 * (double)(rng >> 11) / (double)(1ull << 53)));
        lo_message m = lo_message_new();
        lo_message_add_float(m, b->value[i]);
        size_t len = 0;
        void *data = lo_message_serialise(m, "/tabula/param/lr", NULL, &len);
        b->t_send[i] = tb_now();
        sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to);
        free(data);
        lo_message_free(m);
    }
    close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary(double *v, int n, double *med, double *p95, double *max) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *med = v[n / 2], *p95 = v[(int)(0.95 * (n - 1))], *max = v[n - 1];
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

// The surface alone: send -> the event in the queue (no training: the loop
// polls the queue), the OSC thread's own share of the latency.
static int bench_surface(int n) {
    Settings s;
    settings_default(&s);
    s.osc_port = free_port();
    ControlQueue q;
    control_queue_init(&q);
    TbErr err = {{0}};
    Osc *o = osc_start(&s, &q, &err);
    if (!o) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    static Bench b;
    memset(&b, 0, sizeof b);
    b.port = s.osc_port, b.n = n, b.frame_s = 0.002;
    for (int i = 0; i < n; i++) b.value[i] = (float)i;
    pthread_t th;
    pthread_create(&th, NULL, client_main, &b);
    static double queued[MAX_N];
    for (int i = 0; i < n;) {
        ControlEvent e;
        if (!control_pop(&q, &e)) {
            sched_yield();
            continue;
        }
        queued[i] = 1e3 * (tb_now() - b.t_send[i]);
        atomic_store(&b.applied, ++i);
    }
    pthread_join(th, NULL);
    double m, p, x;
    summary(queued, n, &m, &p, &x);
    printf("surface only      send->queued %7.3f / %7.3f / %7.3f ms  (median / p95 / max, n=%d)\n", m, p, x, n);
    osc_stop(o);
    control_queue_destroy(&q);
    return 0;
}

static int bench_size(const char *clip, int W, int H, int n, int K) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H;
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.steps_per_frame = K;
    s.osc_port = free_port();
    ControlQueue q;
    control_queue_init(&q);
    TbErr err = {{0}};
    Osc *o = osc_start(&s, &q, &err);
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", clip);
    Source *src = o ? source_open(spec, NULL, &err) : NULL;
    Run r;
    if (!src || run_open(&r, &s, &q, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    uint8_t *frame = tb_malloc((size_t)src->width * src->height * 3);
    // Warm up and time a frame.
    double t0 = tb_now();
    for (int i = 0; i < 5; i++) {
        src->read(src, frame, &err);
        run_drain(&r, NULL, 0);
        run_frame(&r, frame, src->width, src->height);
    }
    static Bench b;
    memset(&b, 0, sizeof b);
    b.port = s.osc_port, b.n = n, b.frame_s = (tb_now() - t0) / 5;
    for (int i = 0; i < n; i++) b.value[i] = i % 2 ? 0.5f : 0.25f;  // each one a change
    pthread_t th;
    pthread_create(&th, NULL, client_main, &b);
    static double applied[MAX_N], done[MAX_N], frame_ms[MAX_N * 4];
    int nf = 0;
    while (atomic_load(&b.applied) < n) {
        if (src->read(src, frame, &err) < 0) break;
        run_drain(&r, NULL, 0);
        double t_start = tb_now();
        int i = atomic_load(&b.applied);
        int hit = r.p.v[PARAM_LR] == b.value[i];
        run_frame(&r, frame, src->width, src->height);
        double t_end = tb_now();
        if (nf < MAX_N * 4) frame_ms[nf++] = 1e3 * (t_end - t_start);
        if (hit) {
            applied[i] = 1e3 * (t_start - b.t_send[i]);
            done[i] = 1e3 * (t_end - b.t_send[i]);
            atomic_store(&b.applied, i + 1);
        }
    }
    pthread_join(th, NULL);
    double fm, fp, fx, am, ap, ax, dm, dp, dx;
    summary(frame_ms, nf, &fm, &fp, &fx);
    summary(applied, n, &am, &ap, &ax);
    summary(done, n, &dm, &dp, &dx);
    printf("%4dx%-4d K=%d  frame %7.2f ms  send->applied %7.2f / %7.2f / %7.2f ms  "
           "send->frame done %7.2f / %7.2f / %7.2f ms  (median / p95 / max, n=%d)\n",
           W, H, K, fm, am, ap, ax, dm, dp, dx, n);
    free(frame);
    run_close(&r);
    source_close(src);
    osc_stop(o);
    control_queue_destroy(&q);
    return 0;
}

int main(int argc, char **argv) {
    const char *sizes = "32x32,256x256";
    int n = 100, K = 1;
    static char clip[1024];
    const char *data = getenv("TABULA_DATA");
    snprintf(clip, sizeof clip, "%s/asl_signer_a_320x240.y4m", data ? data : "../shared/data");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sizes")) sizes = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps-per-frame")) K = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clip")) snprintf(clip, sizeof clip, "%s", argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (n < 1 || n > MAX_N) n = 100;
    if (bench_surface(n)) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", sizes);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int W, H;
        if (tb_parse_size(tok, 16, 4096, &W, &H)) {
            fprintf(stderr, "bad size %s\n", tok);
            return 2;
        }
        if (bench_size(clip, W, H, n, K)) return 1;
    }
    return 0;
}
