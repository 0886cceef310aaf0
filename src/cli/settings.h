// settings.h: every setting of tabula in one plain struct, read from an INI file
// (config/default.ini documents each one) and overridden from the command line.
// The parameter table (params.c) gives each setting its section, key, type,
// range, default, flag, help and live step, so the file, the flags, --help,
// the live controls and the checks cannot drift apart.
#pragma once
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CFG_STR 256
#define SETTINGS_MAX_PARAMS 192  // rows in the parameter table, at most

// [channels]: up to TB_CHANNELS networks on the same frames (channels.h).
// Channel 0 is the main network ([train]); [ch1].. hold the others' overrides.
#define TB_CHANNELS 4
#define CH_KEYS 16  // overrides per [chN] section, at most
typedef struct {
    int n;                   // overrides of [train] keys, in the order given
    char key[CH_KEYS][32];
    char val[CH_KEYS][64];   // checked with the table's row when read
    char kind[16];           // net (its own network) | history (channel 0 some minutes ago)
    float minutes;           // history: how far back it shows
    float refresh_s;         // history: seconds between snapshots of channel 0
    int device;              // CUDA device index; -1 = channel 0's (the default)
} ChannelSpec;

typedef struct {
    // [model]
    char channels[CFG_STR];  // encoder channels, e.g. "32,64,128,256"
    int kernel, stride, pad;
    float slope;
    // [train]
    int width, height;
    char backend[16];    // auto | cpu | cuda
    int deterministic;   // 1: only deterministic cuDNN algorithms (the CPU always is)
    char optimizer[16];  // sgd | adam
    char loss[16];       // mse | l1
    float lr, momentum, clip, weight_decay;
    float adam_beta1, adam_beta2, adam_eps;
    int steps_per_frame;  // K
    int memory;           // R replayed frames per step
    int ring;             // replay ring length (frames)
    int pause;            // 1 = learning paused (a live parameter; the start value)
    float input_smoothing, output_smoothing;  // 0 = off, up to 0.99
    int freeze;           // 1 = train on and show the last frame
    char transform[16];   // none | grey | edges: what the network is given (ops.h)
    int blur;             // blur the network's input by this factor (1 = off)
    float jitter;         // training inputs: brightness +-J, contrast x(1+-J) (0 = off)
    int seed;
    int stats_every;      // read the loss back every N frames (each read waits for the GPU)
    float rollback_lr_factor;  // lr *= this after the watchdog rolls back (1 = keep)
    // [modulation]
    float fade_time;      // seconds of a slot cross-fade (0 = at once)
    char scenes[CFG_STR]; // folder of scene files (*.ini)
    char lfo_param[32];   // none | a numeric live parameter (LFO_TARGETS)
    char lfo_shape[16];   // sine | triangle | random
    float lfo_rate;       // Hz
    float lfo_depth;      // swing either side, fraction of the parameter's range
    // [bottleneck] (the encoder's last activation; README "Dreaming and the bottleneck")
    int bn_keep;          // channels kept (0 = all)
    float bn_noise;       // std of the added Gaussian noise (0 = none)
    int bn_freeze;        // 1 = latent freeze: the decoder sees a held code, only it learns
    // [dream] (the feedback dream: the input is the camera blended with the last output)
    float feedback;       // 0 = camera only .. 1 = pure feedback
    float zoom, rotate;   // per pass: factor (1 = none), degrees clockwise
    float shift_x, shift_y;  // per pass: pixels right, down
    float tau;            // seconds the blend in force takes to follow feedback (0 = at once)
    // [source]
    char source[CFG_STR];  // "" = camera if present, else the bundled clip
    int camera_width, camera_height, camera_fps;
    float fps;             // pace files and folders at this rate (0 = their own)
    int exposure_lock;     // 1: hold the exposure auto settled on (no brightness chasing)
    int white_balance_lock;
    // [osc]
    int osc_port;                  // UDP port to listen on (0 = OSC off)
    char osc_address[CFG_STR];     // address to listen on (127.0.0.1: this machine only)
    char osc_status_to[CFG_STR];   // "host:port" to send /tabula/status to ("" = nobody)
    float osc_status_rate;         // status messages per second
    // [display]
    char layout[16];  // mirror | side | triptych | atlas
    int flip, fullscreen, monitor, vsync, hud;
    int window_width, window_height;
    // [journey] (journey.h)
    char journey_mode[16];  // linear | slerp | curve
    float journey_seconds;  // per segment
    // [midi]
    int midi_enable;
    char midi_devices[CFG_STR];  // comma-separated parts of controller names ("" = every hardware input)
    char midi_maps[CFG_STR];     // folder of mapping files ("" = the shipped config/midi)
    // [health]
    float health_every_s;      // seconds between health lines (0 = off)
    char health_log_level[8];  // debug | info | warn | error
    int health_http_port;      // TCP port of GET /health on 127.0.0.1 (0 = off)
    // [files]
    char load[CFG_STR], save[CFG_STR], save_init[CFG_STR], metrics[CFG_STR], events[CFG_STR];
    char snapshot_dir[CFG_STR];
    // [autosave]
    char autosave_dir[CFG_STR];
    float autosave_minutes;  // between autosaves (0 = off; fractions for tests)
    int autosave_keep;       // files kept (the oldest beyond are deleted)
    int autosave_resume;     // 1 = start from the newest good autosave (without --load)
    // [record] (app/record.h): takes started live go to record_dir/YYYYmmdd-HHMMSS/
    char record_dir[CFG_STR];
    char record_size[CFG_STR];  // "WxH" of video.mkv
    float record_fps;           // 0 = the run's clock (headless: --fps or 30; live: 30)
    char record_codec[16];      // h264 | ffv1
    int record_crf;
    char record_preset[16];     // x264 preset
    char record_layout[16];     // display | mirror | side | triptych
    int record_min_free_mb;     // a take ends when the disk has less free
    // [output] (app/vcam.h): the virtual camera (--output v4l2:/dev/videoN)
    char output_layout[16];     // display | mirror | side | triptych
    char output_size[CFG_STR];  // "WxH", "" = [record] size
    float output_fps;           // the rate announced to the camera's readers
    char record_audio_device[CFG_STR];  // part of an input device's name; "" = default, "none"
    // [schedule] (schedule.h): opening hours of the live app
    char sched_hours[CFG_STR];  // "10:00-18:00,20:00-02:00" ("" = the whole day)
    char sched_days[CFG_STR];   // "mon-fri,sun" ("" = every day)
    char sched_rebirth[16];     // continue | fresh (a new network at each opening)
    int sched_seed;             // the fresh network's seed (-1 = [train] seed)
    // [presence] (presence.h): slow or pause learning in an empty room
    char presence_mode[16];     // off | slow | pause
    float presence_threshold;   // still below this mean thumbnail difference (0..1)
    float presence_after_s;     // seconds of stillness before it acts
    float presence_slow_factor; // lr multiplier in slow mode
    // [world] (world_train.h): theme training, and the worlds the world action loads
    char world_dir[CFG_STR];    // folder of worlds (*.safetensors), world N = the Nth by name
    int world_slot;             // the slot the world action loads into
    int world_batch;            // frames per step
    long world_steps;           // steps in all
    char world_optimizer[16];   // adam | sgd
    float world_lr;             // peak learning rate
    char world_schedule[16];    // cosine | step | constant
    float world_scale_min;      // smallest random crop, as a fraction of the largest
    float world_holdout;        // fraction of the frames (the last ones) held back to test on
    int world_max_frames;       // frames read from the data at most
    long world_checkpoint_every;  // steps between checkpoints to --save (0 = only at the end)
    long world_preview_every;     // steps between preview images (0 = off)
    // [channels] (channels.h)
    int ch_count;       // networks on the same frames, 1 to TB_CHANNELS
    float ch_coupling;  // live: each net pulled toward the channels' mean by this per frame
    char ch_layout[16]; // panes | windows
    ChannelSpec chan[TB_CHANNELS];  // [ch1]..[ch3]: chan[0] is unused (channel 0 = [train])
    // run
    int headless;
    int check;  // --check: report what the machine offers and exit
    long frames;  // 0 = run until quit
    float duration;  // seconds of the run's clock to run (0 = no limit)
    char record[CFG_STR];  // --record DIR: a take into DIR from the start ("" = none)
    char screenshot[CFG_STR];
    char replay[CFG_STR];  // --replay TAKE: re-run a take offline ("" = none)
    char output[CFG_STR];  // --output v4l2:/dev/videoN, or the file --replay renders
    char train_world[CFG_STR];  // --train-world DATA: train a world on a folder or video and exit
    // Where each value came from, by its row in the parameter table: "show.ini:12"
    // or "--width"; "" = the default. Errors found only when settings meet
    // (a size the network cannot take) name it (settings_set_at).
    char set_at[SETTINGS_MAX_PARAMS][64];
} Settings;

// Defaults (the same values config/default.ini documents).
void settings_default(Settings *s);
// Read an INI file over s. Unknown section/key, bad value, value out of range,
// unreadable file: -1 with "FILE:LINE: problem" in err.
int settings_load_file(Settings *s, const char *path, TbErr *err);
// Set one setting by "section.key" or by its command-line flag name (without --).
int settings_set(Settings *s, const char *name, const char *value, TbErr *err);
// Parse the command line: --config FILE is read first, then the flags in order.
// Returns 0 ok, 1 if --help was printed, -1 on error (err filled).
int settings_parse_args(Settings *s, int argc, char **argv, TbErr *err);
// Print --help (generated from the table).
void settings_print_help(FILE *f);
// Where [section] key was set ("show.ini:12", "--width"), "" if it has its default.
const char *settings_set_at(const Settings *s, const char *section, const char *key);
// A [chN] key (N = 1..TB_CHANNELS-1): kind, minutes, refresh_s, or a [train]
// key other than width and height, checked with its row. 0, or -1 with err.
int settings_channel_set(Settings *s, int ch, const char *key, const char *value, TbErr *err);
// Write every setting in INI form with its documentation (keeps default.ini honest).
void settings_write_ini(const Settings *s, FILE *f);

#ifdef __cplusplus
}
#endif
