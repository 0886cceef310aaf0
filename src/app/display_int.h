// display_int.h: the display's state, shared by display.c (the main window)
// and display_windows.c ([channels] layout = windows: a window per monitor).
// Not for other callers: display.h is the interface.
#pragma once
#include <GL/glew.h>
#include <GLFW/glfw3.h>

#include "display.h"
#include "hud.h"

enum { KEY_RING = 64, TEXT_LINES = 64, TEXT_LEN = 160 };  // 64: every key's help line
enum { PANE_CAMERA = 0, PANE_RECON = 1, PANE_ERROR = 2, PANE_NET = 3, PANE_ATLAS = 4, PANE_KINDS };

typedef struct {
    char line[TEXT_LINES][TEXT_LEN];
    int n;
} TextBlock;

// A channel's own window (layout = windows).
typedef struct {
    GLFWwindow *win;   // NULL: no window (the channel is a pane in the main window)
    GLFWmonitor *mon;  // the monitor it fills; NULL once that monitor is gone
    GLuint vao;        // vertex arrays are not shared between contexts: one each
} ChanWindow;

// One program per pane kind and filter (see display_frag.glsl).
typedef struct {
    GLuint prog;
    GLint u_crop, u_flip, u_gain;
} PaneProg;

struct Display {
    GLFWwindow *win;
    int vsync, monitor, fullscreen;
    int win_x, win_y, win_w, win_h;  // windowed geometry to restore after fullscreen
    GLint max_tex;

    PaneProg pane[PANE_KINDS][2];  // [PANE_*][bicubic]
    GLuint vao, tex_in, tex_rec, tex_net, tex_atlas, pbo;
    int atlas_w, atlas_h;  // 0: nothing uploaded yet
    int in_w, in_h;    // 0: nothing uploaded yet
    int net_w, net_h, net_on;  // what the network is given (net_on: a transform is in force)
    int rec_w, rec_h;  // size of the reconstruction texture
    int pbo_w, pbo_h;
    GLuint atlas_pbo;  // the atlas's pixel buffer on the GPU path (0: none)
    size_t atlas_pbo_bytes;
    int train_w, train_h;  // 0: follow the reconstruction's size

    // [channels] panes (nch > 1): camera | channel 0 | 1 | ... in a row;
    // channel 0 is tex_rec, the others tex_ch[i].
    int nch;
    GLuint tex_ch[DISPLAY_CHANNELS];
    int ch_w[DISPLAY_CHANNELS], ch_h[DISPLAY_CHANNELS];
    // layout = windows: channel i >= 1 in a fullscreen window of its own
    // (cw[i].win; NULL: a pane in the main window, as above). cw[0] is unused.
    int windows;       // asked for (display_set_channel_windows)
    int mon_changed;   // a monitor came or went: place the windows again
    int want_full;     // fullscreen asked for: back on when its monitor returns
    int said_panes;    // the "more channels than monitors" line was logged
    ChanWindow cw[DISPLAY_CHANNELS];

    DisplayLayout layout;
    int flip, bicubic;
    float gain;

    Hud hud;
    TextBlock hud_lines, help;
    int show_hud, show_help;
    char status[2 * TEXT_LEN];
    double status_until;

    DisplayKey keys[KEY_RING];
    int key_head, key_count;

    double fps, fps_t0, last_t;
    int fps_frames;
};

// display.c, for display_windows.c.
void display_on_key(GLFWwindow *w, int key, int scancode, int action, int mods);
void display_train_size(const Display *d, int *w, int *h);
GLFWmonitor *display_pick_monitor(int index);
// The channel windows (display_windows.c): drawn and swapped (no vsync wait)
// before the main window's swap; placed again after the events when a monitor
// came or went; closed before the main window.
void display_windows_draw(Display *d);
void display_windows_place(Display *d);
void display_windows_close(Display *d);
void display_windows_watch(Display *d);
int display_windows_should_close(Display *d);
