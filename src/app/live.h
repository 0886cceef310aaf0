// live.h: what the app's threads share. Three rates, three threads:
//   capture thread (capture.c): the newest camera/file frame wins;
//   training thread (train_thread.c): takes the newest frame, applies control
//     events, takes K steps, publishes the reconstruction (and, through the
//     control queue, a view of its numbers for the HUD and every surface);
//   main thread (app.c): owns the window; shows the newest camera frame and
//     the newest reconstruction at the monitor's rate, reads the keyboard.
// Nothing on the main thread waits for training, disk or camera I/O: the two
// threads meet only in short copies under `mu` (newest wins).
#pragma once
#include <pthread.h>
#include <stdint.h>

#include "atlas_gpu.h"
#include "capture.h"
#include "controls.h"
#include "display.h"
#include "recon_gpu.h"
#include "record.h"
#include "run.h"
#include "vcam.h"

typedef struct {
    const Settings *s;
    Run run;          // the trainer: the training thread's while it runs
    Capture *cap;
    Recorder *rec;    // takes (record.h): the run loop's output
    Vcam *vcam;       // --output v4l2:...: the virtual camera, a second output (or NULL)
    ControlQueue *q;  // keys, MIDI, OSC -> training thread; its view -> HUD
    pthread_t thread;
    pthread_mutex_t mu;  // guards everything below
    pthread_cond_t cond;
    // Frame slot: main -> training (newest wins).
    uint8_t *in_rgb;
    int in_w, in_h;
    size_t in_cap;
    uint64_t in_seq;
    double in_arrival;
    // Reconstruction slot: training -> main (newest wins).
    uint8_t *rec_rgb;
    uint64_t rec_seq;
    double rec_arrival;  // arrival time of the frame it reconstructs
    int rec_on_gpu;      // the newest went through rg, not rec_rgb
    uint8_t *net_rgb;    // what the network was given for it (an input transform in force)
    int net_on;          // 0: no transform, net_rgb is stale
    uint8_t *ch_rgb[TB_CHANNELS];  // [channels] 1..count-1: their reconstructions (with rec_seq)
    // CUDA-GL interop, or NULL: reconstructions through rec_rgb. Not guarded by
    // mu: it stays until teardown; once interop fails recon_gpu_ok says 0 and
    // the training thread uses rec_rgb again.
    ReconGpu *rg;
    char status[256];
    double status_secs;
    int quit, done;
    int opening;         // [schedule]: the hours just opened (the training thread wakes the run)
    char presence[96];   // [presence]: "empty room: learning paused" while it lasts, else ""
    // The layer atlas (atlas.h), drawn only while the window shows it. The main
    // thread says what it wants (atlas_on; atlas_focus: -1 every layer, i:
    // activation i alone; atlas_solo: the first of the atlas_solo_n bottleneck
    // channels shown alone, -1 none); the training thread draws into a buffer of its own after a frame
    // and swaps it with atlas_mid (atlas_seq counts them), and the main thread
    // swaps atlas_mid with atlas_show (its own): no copy and no wait under mu.
    int atlas_on, atlas_focus, atlas_solo, atlas_solo_n;
    uint8_t *atlas_mid, *atlas_show;
    int atlas_w, atlas_h;
    uint64_t atlas_seq;
    // On CUDA with interop (atlas_gpu.h; NULL: host only): the newest picture
    // went through ag (atlas_on_gpu), drawn for ag_want (the training thread's
    // alone). ag is made by ag_make (atlas_gpu_create on CUDA, else NULL; the
    // main thread's) the first time the window shows the atlas, not at start:
    // its buffers are tens of MB. Published under mu before atlas_on, so the
    // training thread reads it there; it stays until teardown.
    ReconGpu *ag;
    ReconGpu *(*ag_make)(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err);
    AtlasWant ag_want;
    int atlas_on_gpu;
} App;

// A line for the operator: logged, and shown on screen for `secs` seconds.
void app_status(App *a, double secs, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// The training thread (arg: App *). Returns when told to quit or after
// s->frames frames.
void *train_thread_main(void *arg);
// Tell the training thread to stop and wait for it (the trainer is ours again).
void app_stop_training(App *a);

// Main thread: the newest reconstruction onto the display, from rec_rgb (under
// mu) or through rg (outside mu). *seen is the rec_seq last taken; *arrival
// gets its frame's arrival time. Returns 1 if a new one was shown; a GPU one
// not yet written is left for the next call.
int app_show_recon(App *a, Display *d, uint64_t *seen, double *arrival);

// The atlas's two halves (atlas_feed.c). Training thread, after a frame: while
// the atlas is wanted, read the activations, draw, and hand the picture over,
// or draw it on the GPU through ag while its interop works (*f: that thread's
// buffers, made on first use; atlas_feed_free at the end).
// Main thread, each turn: on = whether the window shows the atlas (its
// buffers are made the first time), and the newest picture onto the display;
// *seen is the atlas_seq last shown.
typedef struct AtlasFeed AtlasFeed;
void atlas_feed(App *a, AtlasFeed **f);
void atlas_feed_free(AtlasFeed *f);
void atlas_show(App *a, Display *d, int on, uint64_t *seen);

// The keyboard panel (panel.c): display keys act at once, training keys become
// events (a step, a toggle, a value) the training loop applies to the values
// in force.
typedef struct {
    float clip_saved;  // what X turns clip back on to
    int flip, hud, help;
    int layout_before;  // what A goes back to from the atlas
} Panel;
void panel_init(Panel *pn, Display *d, const Settings *s);
void panel_key(App *a, Display *d, Panel *pn, const DisplayKey *k);
// The HUD's lines from the training loop's view (a take being recorded, the
// virtual camera's line `out` (vcam_hud_line; NULL or "" for none), the live
// parameters, then loss, rates, step, backend, source) and a note about the
// room ([presence]: "empty room: learning paused"; "" for none).
void panel_hud(Display *d, const RunView *v, const RecordStatus *rs, const char *out, const char *backend,
               double disp_fps, const char *src, double delay_ms, const char *note);
