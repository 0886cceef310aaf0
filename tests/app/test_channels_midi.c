// test_channels_midi.c: why it exists: a MIDI mapping row may name a [channels]
// channel (ch=N, README "Channels"): its fader, encoder and buttons must play
// that channel alone, as events with .ch = N, while rows without ch= stay on
// channel 0 with their soft takeover. Raw messages through the app's own layer
// (midi_dev), no sequencer needed.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "midi_dev.h"
#include "test.h"

static int load(const char *text, MidiMap *m) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-chmidi-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    TbErr err = {{0}};
    int rc = midi_map_load(path, m, &err);
    unlink(path);
    EXPECT(rc == 0, "%s", err.msg);
    return rc == 0;
}

TEST_IMPL(rows_play_their_channel) {
    static MidiMap m;
    if (!load("[map]\nlr = cc 1 0 ch=1\nmomentum = cc 1 1\nclip = rel2c 1 16 ch=2\nreset = button 1 42 ch=3\n", &m))
        return;
    EXPECT(m.b[0].ch == 1 && m.b[1].ch == 0 && m.b[2].ch == 2 && m.b[3].ch == 3, "ch= read");
    char line[160];
    midi_binding_format(&m.b[0], line, sizeof line);
    EXPECT(strstr(line, " ch=1") != NULL, "written back: %s", line);
    Settings s;
    settings_default(&s);
    LiveParams start;
    live_params_from_settings(&start, &s);
    ControlQueue q;
    control_queue_init(&q);
    static MidiDev d;
    midi_dev_init(&d, &m, &start, &q, NULL, NULL);
    // A fader at the top: channel 1's lr, at once (no pickup).
    midi_dev_input(&d, &(MidiMsg){MM_CC, 0, 0, 127}, 0.0, NULL);
    midi_dev_input(&d, &(MidiMsg){MM_CC, 0, 16, 1}, 0.1, NULL);   // one tick up
    midi_dev_input(&d, &(MidiMsg){MM_CC, 0, 42, 127}, 0.2, NULL);  // press
    ControlEvent e[8];
    int n = 0;
    while (n < 8 && control_pop(&q, &e[n])) n++;
    EXPECT(n == 3, "%d events", n);
    if (n == 3) {
        EXPECT(e[0].cmd == CMD_SET && e[0].param == PARAM_LR && e[0].ch == 1 && e[0].value == 10, "fader: ch %d value %g",
               e[0].ch, (double)e[0].value);
        EXPECT(e[1].cmd == CMD_NUDGE && e[1].param == PARAM_CLIP && e[1].ch == 2 && e[1].value == 1, "encoder: ch %d",
               e[1].ch);
        EXPECT(e[2].cmd == CMD_RESET && e[2].ch == 3, "button: cmd %d ch %d", e[2].cmd, e[2].ch);
    }
    EXPECT(d.known.v[PARAM_LR] == start.v[PARAM_LR], "channel 0's lr as known stays");
    // A row without ch= is channel 0's, with its takeover: far from the value,
    // the first move does not jump.
    midi_dev_input(&d, &(MidiMsg){MM_CC, 0, 1, 0}, 0.3, NULL);
    midi_dev_input(&d, &(MidiMsg){MM_CC, 0, 1, 126}, 0.4, NULL);
    n = 0;
    while (n < 8 && control_pop(&q, &e[n])) n++;
    for (int i = 0; i < n; i++) EXPECT(e[i].ch == 0, "momentum on channel %d", e[i].ch);
    control_queue_destroy(&q);
}

TEST_IMPL(bad_channel_is_an_error) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-chmidi-bad-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("[map]\nlr = cc 1 0 ch=4\n", f);
    fclose(f);
    MidiMap *m = tb_malloc(sizeof *m);
    TbErr err = {{0}};
    EXPECT(midi_map_load(path, m, &err) == -1 && strstr(err.msg, ":2:") && strstr(err.msg, "ch \"4\" is not 0 to 3"),
           "%s", err.msg);
    free(m);
    unlink(path);
}

TEST_MAIN(TEST_ENTRY(rows_play_their_channel), TEST_ENTRY(bad_channel_is_an_error))
