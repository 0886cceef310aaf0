// display.h: the big screen. One GLFW window (OpenGL 3.3 core) showing the
// camera frame, the reconstruction and their difference in one of three
// layouts, with a text HUD, a help overlay and a transient status line (and,
// with [channels] layout = windows, a window per monitor for the channels).
//
// All calls are made from the thread that opened the display (it owns the GL
// context). Images are RGB8 interleaved with row 0 at the top.
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Display Display;

typedef enum {
    DISPLAY_MIRROR = 0,    // reconstruction only, as large as the window allows
    DISPLAY_SIDE = 1,      // camera | reconstruction
    DISPLAY_TRIPTYCH = 2,  // camera | reconstruction | error; with an input transform
                           // camera | network input | reconstruction
    DISPLAY_ATLAS = 3,     // the layer atlas (atlas.h): one pane of the picture set by
                           // display_set_atlas, at its own aspect
    DISPLAY_LAYOUT_COUNT
} DisplayLayout;

typedef struct {
    int width, height;  // windowed size in screen coordinates (0: 1280x720)
    int fullscreen;     // start fullscreen on `monitor`
    int monitor;        // index into glfwGetMonitors(); out of range: primary
    int vsync;          // 1: swap interval 1, 0: swap as fast as possible
    int hidden;         // invisible window (tests, benchmarks)
} DisplayOpts;

// One key event: GLFW key code, scancode, GLFW_PRESS or GLFW_REPEAT, GLFW_MOD_*.
typedef struct {
    int key, scancode, action, mods;
} DisplayKey;

// Opens the window. NULL with a one-line reason in err when there is no
// display or no usable OpenGL 3.3 (never exits). One display per process.
Display *display_open(const DisplayOpts *o, TbErr *err);
void display_close(Display *d);

// Images. The input is the camera frame at its own size (the texture follows
// size changes). The reconstruction is at the training size; its size also
// sets the training aspect unless display_set_train_size says otherwise.
void display_set_input(Display *d, const uint8_t *rgb, int w, int h);
void display_set_recon(Display *d, const uint8_t *rgb, int w, int h);
// What the network is given (the transformed frame, at the training size), or
// NULL when no input transform is in force: the triptych then shows the error.
void display_set_net_input(Display *d, const uint8_t *rgb, int w, int h);
// The atlas picture (any size; its aspect sets the atlas pane's). Magnified it
// is drawn with nearest sampling (every tile and gap stays sharp), shrunk
// bilinear.
void display_set_atlas(Display *d, const uint8_t *rgb, int w, int h);

// [channels]: n networks (1..DISPLAY_CHANNELS). With n > 1 the window shows
// camera | channel 0 | channel 1 | ... in a row, whatever the layout (channel 0
// is display_set_recon's picture); display_set_channel gives channel i >= 1's.
#define DISPLAY_CHANNELS 4
void display_set_channels(Display *d, int n);
void display_set_channel(Display *d, int i, const uint8_t *rgb, int w, int h);
// [channels] layout = windows (on = 1): channel i >= 1 in a borderless
// fullscreen window of its own, one per monitor other than channel 0's (the one
// DisplayOpts.monitor names), sharing the main window's GL objects; channels
// beyond the monitors stay panes in the main window (said once in the log),
// monitors beyond the channels are left alone. An unplugged monitor's window
// closes and its channel goes back to a pane; a monitor plugged in takes the
// first channel without a window. Keys work from every window, closing any of
// them closes the display. Returns the number of channel windows open. Call
// after display_set_channels.
int display_set_channel_windows(Display *d, int on);
// Aspect the trainer crops the camera frame to (same rounding as frame_fit):
// the camera pane shows exactly the region the network sees.
void display_set_train_size(Display *d, int w, int h);

// GPU path: an RGBA8 pixel-unpack buffer of w*h*4 bytes (rows top first) for
// the reconstruction. Returns its GL buffer name, to register once with
// cudaGraphicsGLRegisterBuffer; a different size makes a new buffer (new
// name: register again). display_recon_from_pbo copies it into the texture
// on the GPU. Returns 0 if the buffer could not be made (logged).
unsigned display_recon_pbo(Display *d, int w, int h);
void display_recon_from_pbo(Display *d);

// GPU path of the atlas: a pixel-unpack buffer of at least `bytes` (made again,
// with a new name, only when more is asked) for RGBA8 pictures of any size,
// rows tight; display_atlas_from_pbo puts its first w x h picture on the atlas
// texture, on the GPU (as display_set_atlas does from the host).
unsigned display_atlas_pbo(Display *d, size_t bytes);
void display_atlas_from_pbo(Display *d, int w, int h);

// Looks.
void display_set_layout(Display *d, DisplayLayout layout);
DisplayLayout display_layout(const Display *d);
void display_set_flip(Display *d, int on);    // mirror every pane left-right
// Catmull-Rom upscaling vs bilinear; default: on, off on a software renderer.
void display_set_bicubic(Display *d, int on);
void display_set_error_gain(Display *d, float gain);  // error pane: |in-rec|*gain (default 4)
const char *display_layout_name(DisplayLayout layout);  // "mirror", "side", "triptych", "atlas"
int display_layout_parse(const char *name);             // -1 if unknown

// Overlays. Lines are copied (up to 64 of 159 characters); non-ASCII is
// shown as '?', dashes as '-'.
void display_set_hud(Display *d, const char *const *lines, int n);
void display_show_hud(Display *d, int on);  // also shows the pane labels
// Help lines: "key<TAB>description" (or 2+ spaces between them) line up in
// two columns; a line without a separator is drawn as a heading.
void display_set_help(Display *d, const char *const *lines, int n);
void display_show_help(Display *d, int on);
// A prominent message for `seconds` (fading out at the end); NULL clears it.
void display_status(Display *d, const char *msg, double seconds);

// Window.
void display_set_fullscreen(Display *d, int on);
int display_fullscreen(const Display *d);
int display_should_close(Display *d);
void display_set_should_close(Display *d, int on);
void display_size(const Display *d, int *w, int *h);  // framebuffer pixels

// Renders the current state and swaps, then polls window events.
void display_draw(Display *d);
void display_poll_events(Display *d);  // events only (when not drawing)
double display_fps(const Display *d);  // measured swaps per second

// Keys: presses and repeats land in a small queue (oldest dropped when full).
// Returns 1 and fills *out, or 0 when the queue is empty.
int display_poll_key(Display *d, DisplayKey *out);
void display_inject_key(Display *d, int key, int mods);

// Renders the current state again into the back buffer and reads it back
// (no swap): RGB8, rows top first, into rgb (cap bytes); sets *w, *h. 0 or -1.
int display_read_pixels(Display *d, uint8_t *rgb, size_t cap, int *w, int *h, TbErr *err);
int display_screenshot(Display *d, const char *path_png, TbErr *err);

// Where things are, in framebuffer pixels from the top-left (for tests and
// pointer input): pane i of the current layout, and the HUD panel (0 if hidden).
int display_pane_rect(const Display *d, int i, int rect[4]);  // x, y, w, h; 0 if no pane i
int display_hud_rect(const Display *d, int rect[4]);

#ifdef __cplusplus
}
#endif
