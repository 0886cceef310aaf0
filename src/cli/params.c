// params.c: the parameter table (see params.h), lookup, and parsing a value.
#include "params.h"

#include "ops.h"
#include "parse.h"
#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#define O(f) offsetof(Settings, f)
// A setting read once at start (not played live).
#define SET .live = -1
// Live parameters: their id, scale, step (factor on a log scale) and HUD label.
#define LIVE(id, sc, st, zu, fl, lb) \
    .live = (id), .scale = (sc), .step = (st), .zero_up = (zu), .floor = (fl), .label = (lb)

// "32,64,128,256": 1 to 8 counts of 1 to 4096 (the encoder's layers), nothing else.
static int valid_channels(const char *v, TbErr *err) {
    int ch[8];
    const char *end;
    if (tb_parse_int_list(v, ch, 8, 1, 4096, &end) < 1 || *end)
        return tb_fail(err, "channels: \"%s\" is not 1 to 8 comma-separated counts of 1 to 4096", v);
    return 0;
}

// "1280x720": the size a recording is encoded at (even numbers, for 4:2:0).
static int valid_record_size(const char *v, TbErr *err) {
    int w, h;
    if (tb_parse_size(v, 16, 7680, &w, &h) < 0 || (w | h) & 1)
        return tb_fail(err, "size: \"%s\" is not WxH with even numbers from 16 to 7680 (e.g. 1280x720)", v);
    return 0;
}

// [output] size: "" (the recording's size) or a size as [record] size takes.
static int valid_output_size(const char *v, TbErr *err) { return v[0] ? valid_record_size(v, err) : 0; }

// [schedule] hours and days: checked where they are read (FILE:LINE in a file).
static int valid_hours(const char *v, TbErr *err) {
    Schedule sc;
    return schedule_parse_hours(&sc, v, err);
}

static int valid_days(const char *v, TbErr *err) {
    Schedule sc;
    return schedule_parse_days(&sc, v, err);
}

static const Param PARAMS[] = {
    // clang-format off
    {"model", "channels", "channels", P_STR, O(channels), 0, 0, NULL, "32,64,128,256",
     "encoder output channels, comma separated (the decoder mirrors them)", SET,
     .valid = valid_channels},
    {"model", "kernel", NULL, P_INT, O(kernel), 2, 9, NULL, "4", "convolution kernel size", SET},
    {"model", "stride", NULL, P_INT, O(stride), 1, 4, NULL, "2", "convolution stride", SET},
    {"model", "pad", NULL, P_INT, O(pad), 0, 4, NULL, "1", "convolution padding", SET},
    {"model", "slope", NULL, P_FLOAT, O(slope), 0, 0.99, NULL, "0.2", "LeakyReLU negative slope", SET},

    {"train", "width", "width", P_INT, O(width), 16, 4096, NULL, "256",
     "training width in pixels (multiple of 16 for the default net)", SET},
    {"train", "height", "height", P_INT, O(height), 16, 4096, NULL, "256",
     "training height in pixels (multiple of 16 for the default net)", SET},
    {"train", "backend", "backend", P_CHOICE, O(backend), 0, 0, "auto|cpu|cuda", "auto",
     "compute backend: auto picks CUDA when a GPU is usable, else the CPU", SET},
    {"train", "deterministic", "deterministic", P_INT, O(deterministic), 0, 1, NULL, "0",
     "1 = on CUDA, only cuDNN algorithms that give the same bits every run, picked without "
     "timing, so a replay can be reproduced (can be slower); the CPU backend is always "
     "deterministic", SET},
    // Switching live keeps the weights and starts the new optimizer's state afresh.
    {"train", "optimizer", "optimizer", P_CHOICE, O(optimizer), 0, 0, "sgd|adam", "sgd",
     "sgd (with momentum) or adam", LIVE(PARAM_OPTIMIZER, SCALE_LIN, 1, 0, 0, "opt")},
    {"train", "loss", "loss", P_CHOICE, O(loss), 0, 0, "mse|l1", "mse",
     "what the network minimises: mse (mean squared error) or l1 (mean absolute error)",
     LIVE(PARAM_LOSS, SCALE_LIN, 1, 0, 0, "loss fn")},
    // lr: 4 steps a decade, as a knob would feel; a step down below 1e-5 stops
    // learning, a step up from 0 starts again at 1e-5.
    {"train", "lr", "lr", P_FLOAT, O(lr), 0, 10, NULL, "2",
     "learning rate (SGD with the default clip learns fastest near 2; Adam wants about 0.001)",
     LIVE(PARAM_LR, SCALE_LOG, 1.77827941, 1e-5, 1e-5, "lr")},  // 10^(1/4)
    {"train", "momentum", "momentum", P_FLOAT, O(momentum), 0, 0.999, NULL, "0.9",
     "SGD momentum", LIVE(PARAM_MOMENTUM, SCALE_LIN, 0.01, 0, 0, "momentum")},
    // clip: x sqrt(2) a step; a step down below 0.01 turns it off, a step up
    // from off turns it on at 1.
    {"train", "clip", "clip", P_FLOAT, O(clip), 0, 1000, NULL, "0.1",
     "clip the global gradient norm to this value (0 = off)",
     LIVE(PARAM_CLIP, SCALE_LOG, 1.41421356, 1, 0.01, "clip")},
    {"train", "weight_decay", "weight-decay", P_FLOAT, O(weight_decay), 0, 1, NULL, "0",
     "L2 weight decay", LIVE(PARAM_WEIGHT_DECAY, SCALE_LOG, 1.77827941, 1e-6, 1e-6, "wd")},
    {"train", "adam_beta1", NULL, P_FLOAT, O(adam_beta1), 0, 0.9999, NULL, "0.9", "Adam beta1", SET},
    {"train", "adam_beta2", NULL, P_FLOAT, O(adam_beta2), 0, 0.99999, NULL, "0.999", "Adam beta2", SET},
    {"train", "adam_eps", NULL, P_FLOAT, O(adam_eps), 1e-12, 1, NULL, "1e-8", "Adam epsilon", SET},
    // At most TB_STATS_RING (64) steps fit between two reads of the stats.
    {"train", "steps_per_frame", "steps-per-frame", P_INT, O(steps_per_frame), 0, 64, NULL, "1",
     "gradient steps per camera frame (0 = frozen)",
     LIVE(PARAM_STEPS, SCALE_LIN, 1, 0, 0, "steps/frame")},
    {"train", "memory", "memory", P_INT, O(memory), 0, 15, NULL, "0",
     "recent frames replayed with the newest in each step (0 = newest only)",
     LIVE(PARAM_MEMORY, SCALE_LIN, 1, 0, 0, "memory")},
    {"train", "ring", "ring", P_INT, O(ring), 1, 1024, NULL, "64",
     "length of the ring of recent frames that memory draws from (played live up to this)",
     LIVE(PARAM_RING, SCALE_LOG, 2, 0, 0, "ring")},
    {"train", "input_smoothing", "input-smoothing", P_FLOAT, O(input_smoothing), 0, 0.99, NULL, "0",
     "blend each new frame with the previous one (0 = off; 0.5 to 0.9: slow and dreamy)",
     LIVE(PARAM_SMOOTH_IN, SCALE_LIN, 0.05, 0, 0, "smooth in")},
    {"train", "output_smoothing", "output-smoothing", P_FLOAT, O(output_smoothing), 0, 0.99, NULL, "0",
     "blend each reconstruction shown with the previous one (0 = off)",
     LIVE(PARAM_SMOOTH_OUT, SCALE_LIN, 0.05, 0, 0, "smooth out")},
    {"train", "freeze", "freeze", P_INT, O(freeze), 0, 1, NULL, "0",
     "1 = freeze the camera: train on and show the last frame",
     LIVE(PARAM_FREEZE, SCALE_LIN, 1, 0, 0, "frozen")},
    {"train", "pause", "pause", P_INT, O(pause), 0, 1, NULL, "0",
     "1 = start with learning paused (the reconstruction still follows the camera)",
     LIVE(PARAM_PAUSE, SCALE_LIN, 1, 0, 0, "paused")},
    // Worlds: the network is given a degraded frame and learns to rebuild the
    // clean one (README "Worlds: transforms"). blur: x2 a step.
    {"train", "transform", "transform", P_CHOICE, O(transform), 0, 0, TF_CHOICES, "none",
     "what the network is given in place of the frame (it still learns the clean frame): none, "
     "grey (luminance only) or edges (Sobel outlines, grey)",
     LIVE(PARAM_TRANSFORM, SCALE_LIN, 1, 0, 0, "input")},
    {"train", "blur", "blur", P_INT, O(blur), 1, 64, NULL, "1",
     "blur the network's input: area-average down to 1/N of the size, bilinear back up (1 = off; "
     "24 leaves only shapes and colours)", LIVE(PARAM_BLUR, SCALE_LOG, 2, 0, 0, "blur")},
    {"train", "jitter", "jitter", P_FLOAT, O(jitter), 0, 0.5, NULL, "0",
     "training inputs only: a random brightness +-J and contrast x(1+-J) per frame (0 = off)",
     LIVE(PARAM_JITTER, SCALE_LIN, 0.05, 0, 0, "jitter")},
    {"train", "seed", "seed", P_INT, O(seed), 0, 2147483647, NULL, "1",
     "random seed for the initial weights and the replay draws", SET},
    {"train", "stats_every", NULL, P_INT, O(stats_every), 1, 60, NULL, "8",
     "read the loss back from the GPU every N frames (each read waits for it)", SET},
    {"train", "rollback_lr_factor", NULL, P_FLOAT, O(rollback_lr_factor), 0, 1, NULL, "1",
     "after the watchdog rolls a diverged network back, multiply the live lr by this (1 = keep; 0.5 halves it)", SET},

    // Slots, scenes and the LFO (src/cli/modulate.h). fade_time: x2 a step; a
    // step down below 0.25 s makes fades instant, a step up from 0 gives 0.25 s.
    {"modulation", "fade_time", "fade-time", P_FLOAT, O(fade_time), 0, 600, NULL, "4",
     "seconds slot_fade takes to cross-fade the live network into a slot (0 = at once)",
     LIVE(PARAM_FADE_TIME, SCALE_LOG, 2, 0.25, 0.25, "fade s")},
    {"modulation", "scenes", "scenes", P_STR, O(scenes), 0, 0, NULL, "config/scenes",
     "folder of scene files (*.ini, in name order: scene 1, 2, ...); a missing default folder means no scenes", SET},
    {"modulation", "lfo_param", "lfo-param", P_CHOICE, O(lfo_param), 0, 0, LFO_TARGETS, "none",
     "the live parameter the LFO moves around the value it is set to (none = off)",
     LIVE(PARAM_LFO_PARAM, SCALE_LIN, 1, 0, 0, "lfo")},
    {"modulation", "lfo_shape", "lfo-shape", P_CHOICE, O(lfo_shape), 0, 0, "sine|triangle|random", "sine",
     "LFO wave: sine, triangle, or random (a random walk)", LIVE(PARAM_LFO_SHAPE, SCALE_LIN, 1, 0, 0, "wave")},
    // rate: half an octave a step.
    {"modulation", "lfo_rate", "lfo-rate", P_FLOAT, O(lfo_rate), 0.001, 20, NULL, "0.1",
     "LFO cycles per second (Hz); random: how fast it wanders",
     LIVE(PARAM_LFO_RATE, SCALE_LOG, 1.41421356, 0, 0, "rate Hz")},
    {"modulation", "lfo_depth", "lfo-depth", P_FLOAT, O(lfo_depth), 0, 1, NULL, "0.1",
     "LFO swing either side of the value, as a fraction of the parameter's range (of its "
     "logarithm for a log-scaled one such as lr: 0.1 of lr's 1e-5..10 is about 2 octaves)",
     LIVE(PARAM_LFO_DEPTH, SCALE_LIN, 0.05, 0, 0, "depth")},

    // The bottleneck and the feedback dream (README "Dreaming and the bottleneck").
    // keep_channels: x2 a step; a step down below 1 gives 0 (all), up from 0 gives 1.
    {"bottleneck", "keep_channels", "keep-channels", P_INT, O(bn_keep), 0, 4096, NULL, "0",
     "keep only the first N channels of the bottleneck (the encoder's last layer) and zero the "
     "rest, in training and display (0 = all)", LIVE(PARAM_BN_KEEP, SCALE_LOG, 2, 1, 1, "keep ch")},
    {"bottleneck", "noise", "noise", P_FLOAT, O(bn_noise), 0, 4, NULL, "0",
     "add Gaussian noise of this std to the bottleneck, in training and display (0 = none)",
     LIVE(PARAM_BN_NOISE, SCALE_LIN, 0.05, 0, 0, "bn noise")},
    {"bottleneck", "latent_freeze", "latent-freeze", P_INT, O(bn_freeze), 0, 1, NULL, "0",
     "1 = hold the bottleneck: the decoder sees the code of the last frame before it, and only "
     "the decoder learns", LIVE(PARAM_BN_FREEZE, SCALE_LIN, 1, 0, 0, "latent frz")},
    {"dream", "feedback", "feedback", P_FLOAT, O(feedback), 0, 1, NULL, "0",
     "the network's input is the camera blended with its own last output, warped (0 = camera "
     "only, 1 = pure feedback: with learning paused it dreams alone)",
     LIVE(PARAM_FEEDBACK, SCALE_LIN, 0.05, 0, 0, "feedback")},
    // zoom: 1% a step.
    {"dream", "zoom", "zoom", P_FLOAT, O(zoom), 0.5, 2, NULL, "1",
     "zoom of the fed-back picture each pass, about the centre (1 = none, above 1 zooms in)",
     LIVE(PARAM_ZOOM, SCALE_LOG, 1.01, 0, 0, "zoom")},
    {"dream", "rotate", "rotate", P_FLOAT, O(rotate), -45, 45, NULL, "0",
     "rotation of the fed-back picture each pass, degrees clockwise about the centre",
     LIVE(PARAM_ROTATE, SCALE_LIN, 0.25, 0, 0, "rotate")},
    {"dream", "shift_x", "shift-x", P_FLOAT, O(shift_x), -64, 64, NULL, "0",
     "shift of the fed-back picture each pass, pixels of the training size to the right",
     LIVE(PARAM_SHIFT_X, SCALE_LIN, 0.25, 0, 0, "shift x")},
    {"dream", "shift_y", "shift-y", P_FLOAT, O(shift_y), -64, 64, NULL, "0",
     "shift of the fed-back picture each pass, pixels of the training size down",
     LIVE(PARAM_SHIFT_Y, SCALE_LIN, 0.25, 0, 0, "shift y")},
    // tau: x2 a step; below 0.25 s it is instant, up from 0 gives 0.25 s.
    {"dream", "tau", "dream-tau", P_FLOAT, O(tau), 0, 60, NULL, "0",
     "time constant in seconds with which the blend in force follows feedback (0 = at once)",
     LIVE(PARAM_TAU, SCALE_LOG, 2, 0.25, 0.25, "tau s")},

    // Channels (src/cli/channels.h): several networks on the same frames; [ch1]
    // to [ch3] sections hold each one's [train] overrides (README "Channels").
    // coupling: x2 a step; a step down below 0.001 turns it off.
    {"channels", "count", "channel-count", P_INT, O(ch_count), 1, TB_CHANNELS, NULL, "1",
     "networks learning from the same frames: channel 0 is [train]'s, [ch1].. override its keys", SET},
    {"channels", "coupling", "coupling", P_FLOAT, O(ch_coupling), 0, 1, NULL, "0",
     "each frame, pull every network's weights toward the channels' mean by this fraction (0 = independent)",
     LIVE(PARAM_COUPLING, SCALE_LOG, 2, 0.001, 0.001, "coupling")},
    {"channels", "layout", NULL, P_CHOICE, O(ch_layout), 0, 0, "panes|windows", "panes",
     "how the window shows the channels: panes (the camera and every channel in a row) or windows (channel 0 in the main window, each other channel fullscreen on a monitor of its own; panes for those without one)", SET},

    {"source", "source", "source", P_STR, O(source), 0, 0, NULL, "",
     "frames from: camera, camera:/dev/videoN, file:PATH (.y4m, or any video in the app "
     "build), dir:PATH (PNG/JPEG), pattern; empty = a camera if present, else the bundled clip", SET},
    {"source", "fps", "fps", P_FLOAT, O(fps), 0, 1000, NULL, "0",
     "play files and image folders at this rate (0 = their own rate; image folders 30)", SET},
    {"source", "camera_width", NULL, P_INT, O(camera_width), 0, 7680, NULL, "0",
     "preferred camera width (0 = the camera's native size)", SET},
    {"source", "camera_height", NULL, P_INT, O(camera_height), 0, 4320, NULL, "0",
     "preferred camera height (0 = native)", SET},
    {"source", "camera_fps", NULL, P_INT, O(camera_fps), 0, 240, NULL, "0",
     "preferred camera frame rate (0 = the camera's default)", SET},
    {"source", "exposure_lock", NULL, P_INT, O(exposure_lock), 0, 1, NULL, "0",
     "1 = after a second of auto exposure, hold it (the network does not chase brightness)", SET},
    {"source", "white_balance_lock", NULL, P_INT, O(white_balance_lock), 0, 1, NULL, "0",
     "1 = likewise hold the white balance", SET},

    {"osc", "port", NULL, P_INT, O(osc_port), 0, 65535, NULL, "9000",
     "UDP port for OSC control (/tabula/param/KEY, /tabula/get/KEY, /tabula/action/NAME; "
     "0 = OSC off)", SET},
    {"osc", "address", NULL, P_STR, O(osc_address), 0, 0, NULL, "127.0.0.1",
     "address OSC listens on: 127.0.0.1 = this machine only; 0.0.0.0 = every network "
     "(anyone on the network can then play the parameters)", SET},
    {"osc", "status_to", NULL, P_STR, O(osc_status_to), 0, 0, NULL, "",
     "host:port to send /tabula/status bundles to (loss, PSNR, steps/s, every live "
     "parameter); empty = nobody", SET},
    {"osc", "status_rate", NULL, P_FLOAT, O(osc_status_rate), 0.1, 100, NULL, "10",
     "status bundles per second", SET},

    {"display", "layout", "layout", P_CHOICE, O(layout), 0, 0, "mirror|side|triptych|atlas", "side",
     "mirror: reconstruction only; side: camera | reconstruction; triptych: adds the error; "
     "atlas: every layer's activations (recorded as the mirror)", SET},
    {"display", "flip", "flip", P_INT, O(flip), 0, 1, NULL, "1",
     "1 = mirror the picture horizontally", SET},
    {"display", "fullscreen", "fullscreen", P_INT, O(fullscreen), 0, 1, NULL, "0",
     "1 = start fullscreen", SET},
    {"display", "monitor", "monitor", P_INT, O(monitor), 0, 16, NULL, "0",
     "monitor index for fullscreen (0 = primary)", SET},
    {"display", "vsync", NULL, P_INT, O(vsync), 0, 1, NULL, "1", "1 = sync to the monitor", SET},
    {"display", "hud", "hud", P_INT, O(hud), 0, 1, NULL, "1", "1 = show the heads-up display", SET},
    {"display", "window_width", NULL, P_INT, O(window_width), 160, 16384, NULL, "1280",
     "window width when not fullscreen", SET},
    {"display", "window_height", NULL, P_INT, O(window_height), 120, 16384, NULL, "720",
     "window height when not fullscreen", SET},

    // Journeys through stored bottleneck codes (src/cli/journey.h).
    {"journey", "mode", "journey-mode", P_CHOICE, O(journey_mode), 0, 0, "linear|slerp|curve", "slerp",
     "the path between stored codes: linear, slerp (along the sphere, keeping the codes' length) "
     "or curve (Catmull-Rom through every stored code)", SET},
    {"journey", "seconds", "journey-seconds", P_FLOAT, O(journey_seconds), 0.1, 3600, NULL, "4",
     "seconds from one stored code to the next", SET},

    {"midi", "enable", "midi", P_INT, O(midi_enable), 0, 1, NULL, "1",
     "1 = play tabula from MIDI controllers through the ALSA sequencer (without one: a log line, no MIDI)", SET},
    {"midi", "devices", "midi-devices", P_STR, O(midi_devices), 0, 0, NULL, "",
     "controllers to connect by name: comma-separated parts of their ALSA names (e.g. nanoKONTROL2); "
     "empty = every hardware MIDI input; one unplugged and plugged back reconnects by itself", SET},
    {"midi", "maps", NULL, P_STR, O(midi_maps), 0, 0, NULL, "",
     "folder of mapping files, chosen by device name (empty = the shipped config/midi); MIDI learn writes there", SET},

    {"health", "every_s", NULL, P_FLOAT, O(health_every_s), 0, 86400, NULL, "60",
     "seconds between health lines in the log (uptime, fps, steps/s, loss, host and GPU memory, "
     "camera, dropped frames and events, rollbacks); 0 = off", SET},
    {"health", "log_level", "log-level", P_CHOICE, O(health_log_level), 0, 0, "debug|info|warn|error", "info",
     "the least important log lines shown: debug (all), info, warn (problems only), error", SET},
    {"health", "http_port", NULL, P_INT, O(health_http_port), 0, 65535, NULL, "0",
     "TCP port of the health endpoint on 127.0.0.1 (GET /health: JSON for monitoring tools); 0 = off", SET},

    {"files", "load", "load", P_STR, O(load), 0, 0, NULL, "",
     "start from these weights (safetensors) instead of a blank network", SET},
    {"files", "save", "save", P_STR, O(save), 0, 0, NULL, "",
     "save the weights (and optimizer state) here at exit", SET},
    {"files", "save_init", "save-init", P_STR, O(save_init), 0, 0, NULL, "",
     "save the weights before the first step", SET},
    {"files", "metrics", "metrics", P_STR, O(metrics), 0, 0, NULL, "",
     "write one JSON line per frame (loss, PSNR, settings, timing) to this file", SET},
    {"files", "events", "events", P_STR, O(events), 0, 0, NULL, "",
     "write every parameter change and action, from any surface, as JSON lines to this file", SET},
    {"files", "snapshot_dir", NULL, P_STR, O(snapshot_dir), 0, 0, NULL, "weights",
     "folder for snapshots saved from the keyboard", SET},

    {"autosave", "dir", NULL, P_STR, O(autosave_dir), 0, 0, NULL, "autosave",
     "folder for autosaves (auto-YYYYmmdd-HHMMSS.safetensors), written by a thread of their own", SET},
    {"autosave", "minutes", NULL, P_FLOAT, O(autosave_minutes), 0, 10080, NULL, "10",
     "minutes between autosaves, and one at the end of a run (0 = off)", SET},
    {"autosave", "keep", NULL, P_INT, O(autosave_keep), 1, 1000, NULL, "3",
     "autosaves kept: the oldest beyond are deleted", SET},
    {"autosave", "resume", NULL, P_INT, O(autosave_resume), 0, 1, NULL, "0",
     "1 = without --load, start from the newest autosave that loads (a damaged one is skipped)", SET},

    // Recording (app/record.h): takes of the picture, the frames trained on and the events.
    {"record", "dir", NULL, P_STR, O(record_dir), 0, 0, NULL, "takes",
     "folder for takes started live (record key, MIDI, OSC): each in DIR/YYYYmmdd-HHMMSS/", SET},
    {"record", "size", NULL, P_STR, O(record_size), 0, 0, NULL, "1280x720",
     "size of video.mkv, whatever the window's (the layout is fitted in, on black)", SET,
     .valid = valid_record_size},
    {"record", "fps", NULL, P_FLOAT, O(record_fps), 0, 240, NULL, "0",
     "frame rate of video.mkv, held constant (frames repeated or skipped); 0 = 30, headless "
     "the run's --fps", SET},
    {"record", "codec", NULL, P_CHOICE, O(record_codec), 0, 0, "h264|ffv1", "h264",
     "video.mkv's codec: h264 (libx264, CRF) or ffv1 (lossless, large)", SET},
    {"record", "crf", NULL, P_INT, O(record_crf), 0, 51, NULL, "20",
     "H.264 quality: lower is better and larger (18 looks lossless, 28 is small)", SET},
    {"record", "preset", NULL, P_CHOICE, O(record_preset), 0, 0,
     "ultrafast|superfast|veryfast|faster|fast|medium", "veryfast",
     "x264 speed preset: slower ones make smaller files and cost more CPU", SET},
    {"record", "layout", NULL, P_CHOICE, O(record_layout), 0, 0, "display|mirror|side|triptych", "display",
     "what video.mkv shows: display = the window's layout (followed live), or a fixed one", SET},
    {"record", "min_free_mb", NULL, P_INT, O(record_min_free_mb), 0, 10000000, NULL, "500",
     "a take ends cleanly when its disk has less than this free (MB); the mirror keeps running", SET},
    {"record", "audio_device", NULL, P_STR, O(record_audio_device), 0, 0, NULL, "",
     "the room's sound in video.mkv from the input device whose name contains this (--check lists "
     "them); empty = the default input, none = no audio; live takes only", SET},

    // The virtual camera (app/vcam.h): --output v4l2:/dev/videoN, a v4l2loopback device.
    {"output", "layout", NULL, P_CHOICE, O(output_layout), 0, 0, "display|mirror|side|triptych", "display",
     "what the virtual camera shows: display = the window's layout (followed live), or a fixed one", SET},
    {"output", "size", NULL, P_STR, O(output_size), 0, 0, NULL, "",
     "the virtual camera's picture size WxH, even numbers (empty = [record] size)", SET,
     .valid = valid_output_size},
    {"output", "fps", NULL, P_FLOAT, O(output_fps), 1, 240, NULL, "30",
     "frame rate the virtual camera announces to its readers; frames are sent as they are made", SET},

    // Opening hours (src/cli/schedule.h): the window and live runs only.
    {"schedule", "hours", NULL, P_STR, O(sched_hours), 0, 0, NULL, "",
     "opening hours, local time: HH:MM-HH:MM ranges, comma separated (20:00-02:00 runs past "
     "midnight); outside them a black screen and no training; empty = always open", SET,
     .valid = valid_hours},
    {"schedule", "days", NULL, P_STR, O(sched_days), 0, 0, NULL, "",
     "opening days: mon tue wed thu fri sat sun and ranges, comma separated (e.g. mon-fri,sun); "
     "empty = every day", SET, .valid = valid_days},
    {"schedule", "rebirth", NULL, P_CHOICE, O(sched_rebirth), 0, 0, "continue|fresh", "continue",
     "at each opening: continue (the network of yesterday) or fresh (a new one from seed, "
     "optimizer state reset)", SET},
    {"schedule", "seed", NULL, P_INT, O(sched_seed), -1, 2147483647, NULL, "-1",
     "seed of the fresh network at each opening (-1 = [train] seed)", SET},

    // Presence-aware learning (src/cli/presence.h): window and headless alike.
    {"presence", "mode", NULL, P_CHOICE, O(presence_mode), 0, 0, "off|slow|pause", "off",
     "when the picture has been still for after_s (an empty room): slow (lr x slow_factor) "
     "or pause learning until something moves (off = always learn)", SET},
    {"presence", "threshold", NULL, P_FLOAT, O(presence_threshold), 0, 1, NULL, "0.01",
     "still below this motion: the mean difference of a 32x18 grey thumbnail from a quarter "
     "second before (0..1); moving above 1.5 times it", SET},
    {"presence", "after_s", NULL, P_FLOAT, O(presence_after_s), 0, 86400, NULL, "60",
     "seconds of stillness before learning slows or pauses", SET},
    {"presence", "slow_factor", NULL, P_FLOAT, O(presence_slow_factor), 0, 1, NULL, "0.1",
     "lr multiplier while the room is empty (mode slow)", SET},

    // Worlds (src/cli/world_train.h): theme training with --train-world, and the
    // folder the world action loads from.
    {"world", "dir", NULL, P_STR, O(world_dir), 0, 0, NULL, "weights",
     "folder of worlds (*.safetensors): the world action N loads the Nth by name into a slot and "
     "cross-fades to it", SET},
    {"world", "slot", NULL, P_INT, O(world_slot), 1, 8, NULL, "8",
     "the snapshot slot the world action loads a world into (it overwrites that slot)", SET},
    {"world", "batch", NULL, P_INT, O(world_batch), 1, 16, NULL, "4",
     "--train-world: frames per step (random crops of the data)", SET},
    {"world", "steps", NULL, P_LONG, O(world_steps), 1, 1e9, NULL, "2000",
     "--train-world: steps in all", SET},
    {"world", "optimizer", NULL, P_CHOICE, O(world_optimizer), 0, 0, "adam|sgd", "adam",
     "--train-world: the optimizer ([train] momentum, clip, weight_decay and adam_* apply)", SET},
    {"world", "lr", NULL, P_FLOAT, O(world_lr), 0, 10, NULL, "0.001",
     "--train-world: peak learning rate (after a warm-up of 2% of the steps)", SET},
    {"world", "schedule", NULL, P_CHOICE, O(world_schedule), 0, 0, "cosine|step|constant", "cosine",
     "--train-world: learning-rate schedule: cosine down to 0, step (x0.1 at 60% and 85% of the "
     "steps) or constant", SET},
    {"world", "scale_min", NULL, P_FLOAT, O(world_scale_min), 0.05, 1, NULL, "0.5",
     "--train-world: the smallest random crop, as a fraction of the largest the image allows", SET},
    {"world", "holdout", NULL, P_FLOAT, O(world_holdout), 0, 0.9, NULL, "0",
     "--train-world: fraction of the frames, the last ones, held back and tested on at the end", SET},
    {"world", "max_frames", NULL, P_INT, O(world_max_frames), 1, 100000, NULL, "1000",
     "--train-world: frames read from the data at most (a folder or video is read once)", SET},
    {"world", "checkpoint_every", NULL, P_LONG, O(world_checkpoint_every), 0, 1e9, NULL, "500",
     "--train-world: steps between checkpoints written to --save (0 = only at the end)", SET},
    {"world", "preview_every", NULL, P_LONG, O(world_preview_every), 0, 1e9, NULL, "250",
     "--train-world: steps between preview images (SAVE-preview.ppm: input | target | output; 0 = off)", SET},

    {NULL, "headless", "headless", P_FLAG, O(headless), 0, 1, NULL, "0",
     "no window: train on the source and exit after --frames", SET},
    {NULL, "check", "check", P_FLAG, O(check), 0, 1, NULL, "0",
     "print what this machine offers (backend, cameras, MIDI, audio, display, disk, folders, "
     "source) and exit: 0 if the configured setup can run, 2 with the reasons", SET},
    {NULL, "frames", "frames", P_LONG, O(frames), 0, 1e12, NULL, "0",
     "stop after N frames (0 = run until quit; headless needs N > 0 or --duration)", SET},
    {NULL, "duration", "duration", P_FLOAT, O(duration), 0, 1e9, NULL, "0",
     "stop after X seconds (0 = no limit; headless: of the run's clock, frames / fps)", SET},
    {NULL, "record", "record", P_STR, O(record), 0, 0, NULL, "",
     "record a take from the start into this folder (made if missing): video.mkv, input.mkv, "
     "events, weights; with --frames or --duration for an unattended take", SET},
    {NULL, "screenshot", "screenshot", P_STR, O(screenshot), 0, 0, NULL, "",
     "write the window's content to this PNG at exit", SET},
    {NULL, "replay", "replay", P_STR, O(replay), 0, 0, NULL, "",
     "re-run the take in this folder offline (its input frames, weights and events) and render "
     "it to --output FILE.mkv", SET},
    {NULL, "output", "output", P_STR, O(output), 0, 0, NULL, "",
     "send the picture out: v4l2:/dev/videoN (a v4l2loopback virtual camera), or with --replay "
     "the video file to render", SET},
    {NULL, "train_world", "train-world", P_STR, O(train_world), 0, 0, NULL, "",
     "train a world on this image folder or video file with [world]'s settings, write it to "
     "--save and exit", SET},
    // clang-format on
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

const Param *params_table(size_t *n) {
    *n = N_PARAMS;
    return PARAMS;
}

const Param *param_live(int id) {
    CHECK(id >= 0 && id < PARAM_COUNT, "live parameter %d", id);
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].live == id) return &PARAMS[i];
    CHECK(0, "live parameter %d has no row in the table", id);
    return NULL;
}

int param_by_name(const char *key) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].live >= 0 && strcmp(PARAMS[i].key, key) == 0) return PARAMS[i].live;
    return -1;
}

int param_is_int(int id) {
    ParamType t = param_live(id)->type;
    return t == P_INT || t == P_LONG || t == P_FLAG || t == P_CHOICE;
}

int param_choice_count(const Param *p) {
    if (p->type != P_CHOICE) return 0;
    int n = 1;
    for (const char *c = p->choices; *c; c++) n += *c == '|';
    return n;
}

const char *param_choice_name(const Param *p, int i, char *buf, size_t n) {
    const char *c = p->type == P_CHOICE ? p->choices : "";
    for (int k = 0; k < i && c; k++) {
        c = strchr(c, '|');
        if (c) c++;
    }
    if (!c || !*c || i < 0) return NULL;
    size_t len = strcspn(c, "|");
    snprintf(buf, n, "%.*s", (int)len, c);
    return buf;
}

int param_choice_index(const Param *p, const char *text) {
    char buf[64];
    for (int i = 0; param_choice_name(p, i, buf, sizeof buf); i++)
        if (strcmp(buf, text) == 0) return i;
    return -1;
}

void param_live_range(int id, double *min, double *max) {
    const Param *r = param_live(id);
    *min = r->type == P_CHOICE ? 0 : r->min;
    *max = r->type == P_CHOICE ? param_choice_count(r) - 1 : r->max;
}

int params_max_batch(void) { return 1 + (int)param_live(PARAM_MEMORY)->max; }

const Param *param_find_ini(const char *section, const char *key) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].section && strcmp(PARAMS[i].section, section) == 0 &&
            strcmp(PARAMS[i].key, key) == 0)
            return &PARAMS[i];
    return NULL;
}

const Param *param_find_flag(const char *name) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (PARAMS[i].flag && strcmp(PARAMS[i].flag, name) == 0) return &PARAMS[i];
    // "section.key" reaches every INI setting, flag or not.
    const char *dot = strchr(name, '.');
    if (dot && dot - name < 64) {
        char sec[64];
        memcpy(sec, name, (size_t)(dot - name));
        sec[dot - name] = 0;
        return param_find_ini(sec, dot + 1);
    }
    return NULL;
}

// A number with nothing but spaces after it; 0, or -1.
static int parse_number(const char *v, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    while (*end && isspace((unsigned char)*end)) end++;
    if (end == v || *end || errno || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

int param_parse(Settings *s, const Param *p, const char *v, TbErr *err) {
    char *base = (char *)s + p->off;
    double d;
    switch (p->type) {
    case P_INT:
    case P_LONG:
    case P_FLAG:
    case P_FLOAT:
        if (parse_number(v, &d) || (p->type != P_FLOAT && d != floor(d)))
            return tb_fail(err, "%s: \"%s\" is not a %s", p->key, v,
                           p->type == P_FLOAT ? "number" : "whole number");
        if (d < p->min || d > p->max)
            return tb_fail(err, "%s = %s is out of range (%g to %g)", p->key, v, p->min, p->max);
        if (p->type == P_FLOAT) *(float *)base = (float)d;
        else if (p->type == P_LONG) *(long *)base = (long)d;
        else *(int *)base = (int)d;
        return 0;
    case P_STR:
        if (strlen(v) >= CFG_STR)
            return tb_fail(err, "%s: value longer than %d characters", p->key, CFG_STR - 1);
        if (p->valid && p->valid(v, err)) return -1;
        strcpy(base, v);
        return 0;
    case P_CHOICE: {
        size_t n = strlen(v);
        for (const char *c = p->choices; *c;) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, v, n) == 0) {
                strcpy(base, v);
                return 0;
            }
            c += len + (bar ? 1 : 0);
        }
        return tb_fail(err, "%s: \"%s\" is not one of %s", p->key, v, p->choices);
    }
    }
    return tb_fail(err, "%s: unknown type", p->key);
}
