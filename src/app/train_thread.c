// train_thread.c: the app's training thread. Each turn: apply the control events
// in order, wait briefly for a new frame from the main thread, train on it
// through the run loop the headless driver uses too (run.c), and publish the
// reconstruction and a view of the numbers for the HUD.
#define _DEFAULT_SOURCE
#include <string.h>
#include <time.h>

#include "live.h"

// Control events, in order; the last line for the operator goes on screen.
// Returns 1 on quit.
static int drain_events(App *a) {
    char msg[256];
    int quit = run_drain(&a->run, msg, sizeof msg);
    if (msg[0]) {
        pthread_mutex_lock(&a->mu);
        snprintf(a->status, sizeof a->status, "%s", msg);
        a->status_secs = strstr(msg, "failed") ? 5 : 3;
        pthread_mutex_unlock(&a->mu);
    }
    return quit;
}

// Copy the newest frame from the main thread (waiting up to 20 ms for one).
// Returns 1 with a new frame in *frame, 0 without; *quit when the app stops.
static int take_frame(App *a, uint64_t *seen, uint8_t **frame, size_t *cap, int *w, int *h,
                      double *arrival, int *quit) {
    pthread_mutex_lock(&a->mu);
    if (a->in_seq == *seen && !a->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    }
    *quit = a->quit;
    int fresh = a->in_seq != *seen;
    if (fresh) {
        *w = a->in_w, *h = a->in_h;
        *arrival = a->in_arrival;
        size_t need = (size_t)*w * *h * 3;
        if (need > *cap) {
            free(*frame);
            *frame = tb_malloc(need);
            *cap = need;
        }
        memcpy(*frame, a->in_rgb, need);
        *seen = a->in_seq;
    }
    pthread_mutex_unlock(&a->mu);
    return fresh;
}

// [schedule]: 1 once when the opening hours have begun (the main thread sets it
// before it hands the day's first frame).
static int take_opening(App *a) {
    pthread_mutex_lock(&a->mu);
    int o = a->opening;
    a->opening = 0;
    pthread_mutex_unlock(&a->mu);
    return o;
}

// Hand the reconstruction (host copy in rec, or on the GPU) to the main thread
// (the numbers went out with run_frame). Returns 1 when the run has all the
// frames it asked for.
static int publish(App *a, const uint8_t *rec, uint8_t *const *chs, size_t rec_bytes, int on_gpu, double arrival) {
    Run *r = &a->run;
    const Settings *s = a->s;
    pthread_mutex_lock(&a->mu);
    for (int i = 1; i < r->chans.count; i++) memcpy(a->ch_rgb[i], chs[i], rec_bytes);
    a->rec_on_gpu = on_gpu;
    if (!on_gpu) memcpy(a->rec_rgb, rec, rec_bytes);
    // The triptych's "network input" pane, while an input transform is in force.
    a->net_on = r->t.tf_last && trainer_input(&r->t);
    if (a->net_on) memcpy(a->net_rgb, trainer_input(&r->t), rec_bytes);
    a->rec_seq++;
    a->rec_arrival = arrival;
    if (r->pres_change > 0) presence_describe(&r->pres, a->presence, sizeof a->presence);
    else if (r->pres_change < 0) a->presence[0] = 0;
    int done = (s->frames > 0 && r->frames >= s->frames) || (s->duration > 0 && run_now(r) >= s->duration);
    if (done) a->done = 1;
    pthread_mutex_unlock(&a->mu);
    return done;
}

void *train_thread_main(void *arg) {
    App *a = arg;
    Run *r = &a->run;
    size_t fb = (size_t)r->t.model.spec.width * r->t.model.spec.height * 3;
    uint8_t *frame = NULL, *rec = tb_calloc(1, fb), *chs[TB_CHANNELS] = {0};
    for (int i = 1; i < r->chans.count; i++) chs[i] = tb_malloc(fb);  // [channels]: each one's picture
    size_t frame_cap = 0;
    uint64_t seen = 0;
    int quit = 0;
    AtlasFeed *atlas = NULL;
    while (!quit) {
        if (drain_events(a)) break;
        int w, h;
        double arrival;
        if (!take_frame(a, &seen, &frame, &frame_cap, &w, &h, &arrival, &quit) || quit) continue;
        if (take_opening(a)) {  // before the day's first frame
            char msg[160];
            run_opening(r, msg, sizeof msg);
            pthread_mutex_lock(&a->mu);
            a->presence[0] = 0;
            pthread_mutex_unlock(&a->mu);
        }
        if (run_frame(r, frame, w, h)) app_status(a, 4, "training diverged: restored the last good weights");
        // On the GPU the reconstruction stays there (no wait, no output smoothing,
        // which is done on the host, no take to record); else, and for good once
        // interop has failed, it goes through the host slot: when only the
        // screen wants it, the newest reconstruction that has come back (the
        // read-back never waits for the queued steps; until one arrives the
        // last stays); else this frame's, waited for.
        int on_gpu = !run_output_active(r) && !r->jr.playing && recon_gpu_route(a->rg, r->p.v[PARAM_SMOOTH_OUT]);
        int recent = !on_gpu && !run_output_active(r) && !r->jr.playing && r->p.v[PARAM_SMOOTH_OUT] <= 0;
        if (on_gpu) recon_gpu_produce(a->rg);
        else if (recent) trainer_output_recent(&r->t, rec), r->have_out = 0;  // as run_output
        else run_output(r, rec);
        for (int i = 1; i < r->chans.count; i++) run_channel_output(r, i, chs[i]);
        atlas_feed(a, &atlas);  // while the window shows the atlas
        if (publish(a, rec, chs, fb, on_gpu, arrival)) break;
    }
    atlas_feed_free(atlas);
    run_flush(r);
    free(frame);
    free(rec);
    for (int i = 0; i < TB_CHANNELS; i++) free(chs[i]);
    return NULL;
}
