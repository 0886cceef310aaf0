// display_windows.c: [channels] layout = windows, for a gallery with a screen
// per network: channel i >= 1 fills a monitor of its own with a borderless
// fullscreen window, channel 0 (with the HUD, help and status line) stays in
// the main window. The windows share the main window's context objects
// (textures, programs), so every picture is uploaded once; each has its own
// vertex array (those are not shared). Monitors come and go while the show
// runs (GLFW's monitor callback): a lost monitor's channel goes back to a pane
// in the main window, a new monitor takes the first channel without a window.
// The main window follows them too, with or without channel windows: in
// fullscreen it goes back to its monitor when that returns.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "compose.h"
#include "display_int.h"

// GLFW's monitor callback has no user pointer (one display per process).
static Display *g_display;

// Runs inside glfwPollEvents. A disconnected monitor's handle dies when this
// returns, so the windows forget it now; the windows themselves are closed and
// opened after the events (display_poll_events), not from inside GLFW.
static void on_monitor(GLFWmonitor *m, int event) {
    Display *d = g_display;
    tb_log("display: monitor '%s' %s", glfwGetMonitorName(m),
           event == GLFW_CONNECTED ? "connected" : "disconnected");
    if (!d) return;
    d->mon_changed = 1;
    if (event != GLFW_DISCONNECTED) return;
    for (int i = 1; i < DISPLAY_CHANNELS; i++)
        if (d->cw[i].mon == m) d->cw[i].mon = NULL;
}

// Channel 0's monitor: the main window's when it is fullscreen, else the one
// [display] monitor names (where fullscreen would go).
static GLFWmonitor *main_monitor(const Display *d) {
    GLFWmonitor *m = glfwGetWindowMonitor(d->win);
    return m ? m : display_pick_monitor(d->monitor);
}

static int monitor_taken(const Display *d, GLFWmonitor *main, GLFWmonitor *m) {
    if (m == main) return 1;
    for (int i = 1; i < DISPLAY_CHANNELS; i++)
        if (d->cw[i].win && d->cw[i].mon == m) return 1;
    return 0;
}

// Channel i's window on monitor m: undecorated, at the monitor's place and
// size (its current mode), on top. Not a GLFW fullscreen window: GLFW would
// then set the monitor's mode (XRRSetCrtcConfig), and a monitor switched off
// in the middle of that is an X error, which ends the process. 0, or -1
// (logged: the channel stays a pane).
static int open_window(Display *d, int i, GLFWmonitor *m) {
    const GLFWvidmode *mode = glfwGetVideoMode(m);
    if (!mode) return -1;
    int x, y;
    glfwGetMonitorPos(m, &x, &y);
    glfwDefaultWindowHints();
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    glfwWindowHint(GLFW_DECORATED, GLFW_FALSE);
    glfwWindowHint(GLFW_FLOATING, GLFW_TRUE);  // above a desktop's panels
    glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);  // shown once in place
    glfwWindowHint(GLFW_FOCUS_ON_SHOW, GLFW_FALSE);
    char title[32];
    snprintf(title, sizeof title, "tabula ch %d", i);
    GLFWwindow *w = glfwCreateWindow(mode->width, mode->height, title, NULL, d->win);
    if (!w) {
        tb_warn("display: no window for channel %d on '%s': it stays a pane in the main window", i,
                glfwGetMonitorName(m));
        return -1;
    }
    glfwSetWindowPos(w, x, y);
    glfwShowWindow(w);
    glfwSetWindowUserPointer(w, d);
    glfwSetKeyCallback(w, display_on_key);  // keys from any window
    glfwSetInputMode(w, GLFW_CURSOR, GLFW_CURSOR_HIDDEN);
    ChanWindow *c = &d->cw[i];
    c->win = w;
    c->mon = m;
    glfwMakeContextCurrent(w);
    glfwSwapInterval(0);  // only the main window's swap waits for the vertical blank
    glGenVertexArrays(1, &c->vao);
    glfwMakeContextCurrent(d->win);
    tb_log("display: channel %d in a fullscreen window on '%s' (%dx%d at %d,%d)", i, glfwGetMonitorName(m),
           mode->width, mode->height, x, y);
    return 0;
}

static void close_window(Display *d, int i) {
    ChanWindow *c = &d->cw[i];
    if (!c->win) return;
    glfwMakeContextCurrent(c->win);
    glDeleteVertexArrays(1, &c->vao);
    glfwMakeContextCurrent(d->win);
    glfwDestroyWindow(c->win);
    *c = (ChanWindow){0};
}

// Once, at the first placement: which channels stay panes, and why.
static void say_panes(Display *d, int monitors) {
    char list[64] = "";
    int n = 0;
    for (int i = 1; i < d->nch; i++)
        if (!d->cw[i].win) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%d", n++ ? ", " : "", i);
        }
    d->said_panes = 1;
    if (n)
        tb_log("display: %d channels, %d monitor%s: channel%s %s shown as %s in the main window", d->nch,
               monitors, monitors == 1 ? "" : "s", n > 1 ? "s" : "", list, n > 1 ? "panes" : "a pane");
}

// Channel 0's fullscreen monitor is gone: GLFW made the main window a window
// (without a window manager, off every screen). Channel 0 (the HUD, the help)
// goes fullscreen again on [display] monitor, taking it from a channel window
// if need be: that channel is a pane until a monitor is free.
static void main_lost(Display *d) {
    GLFWmonitor *m = display_pick_monitor(d->monitor);
    tb_warn("display: the main window's monitor is gone: %s moves to '%s'", d->nch > 1 ? "channel 0" : "the show",
            m ? glfwGetMonitorName(m) : "no monitor (a window)");
    for (int i = 1; i < DISPLAY_CHANNELS; i++)
        if (d->cw[i].win && d->cw[i].mon == m) close_window(d, i);
    int x = d->win_x, y = d->win_y, w = d->win_w, h = d->win_h;  // F11's way back, as it was
    d->fullscreen = 0;
    display_set_fullscreen(d, 1);  // stays a window when there is no monitor at all
    d->want_full = 1;              // and goes fullscreen when one comes
    d->win_x = x, d->win_y = y, d->win_w = w, d->win_h = h;
}

// Closes the windows of lost monitors (and of channels no longer shown), then
// gives each channel without a window the next free monitor.
void display_windows_place(Display *d) {
    d->mon_changed = 0;
    for (int i = 1; i < DISPLAY_CHANNELS; i++) {
        ChanWindow *c = &d->cw[i];
        if (!c->win || (c->mon && d->windows && i < d->nch)) continue;
        if (!c->mon) tb_warn("display: channel %d's monitor is gone: it is a pane in the main window again", i);
        close_window(d, i);
    }
    if (d->want_full && !glfwGetWindowMonitor(d->win)) main_lost(d);
    if (!d->windows) {  // one screen: [display] monitor back after a fallback to another
        int n = 0;
        glfwGetMonitors(&n);
        GLFWmonitor *on = glfwGetWindowMonitor(d->win);
        if (d->want_full && on && d->monitor < n && on != display_pick_monitor(d->monitor)) {
            tb_log("display: monitor %d is back: the main window goes to it", d->monitor);
            d->fullscreen = 0;
            display_set_fullscreen(d, 1);
        }
        return;
    }
    int count = 0, m = 0;
    GLFWmonitor **mons = glfwGetMonitors(&count);
    GLFWmonitor *main = main_monitor(d);
    for (int i = 1; i < d->nch; i++) {
        if (d->cw[i].win) continue;
        while (m < count && monitor_taken(d, main, mons[m])) m++;
        if (m == count) break;
        open_window(d, i, mons[m++]);  // one that fails leaves its monitor out until the next change
    }
    if (!d->said_panes) say_panes(d, count);
}

int display_set_channel_windows(Display *d, int on) {
    d->windows = on != 0;
    // Fullscreen on one screen, focus on another: the main window must stay up too.
    if (d->windows) glfwSetWindowAttrib(d->win, GLFW_AUTO_ICONIFY, GLFW_FALSE);
    display_windows_place(d);
    int n = 0;
    for (int i = 1; i < DISPLAY_CHANNELS; i++) n += d->cw[i].win != NULL;
    return n;
}

// Channel i's reconstruction as large as its monitor allows, at the training
// aspect, centred on black (the mirror layout's geometry), then the swap.
static void draw_window(Display *d, int i) {
    ChanWindow *c = &d->cw[i];
    int fw, fh, tw, th, rect[3][4];
    glfwGetFramebufferSize(c->win, &fw, &fh);
    if (fw <= 0 || fh <= 0) return;
    glfwMakeContextCurrent(c->win);
    glViewport(0, 0, fw, fh);
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    display_train_size(d, &tw, &th);
    compose_panes(COMPOSE_MIRROR, tw, th, fw, fh, rect);
    glViewport(rect[0][0], fh - rect[0][1] - rect[0][3], rect[0][2], rect[0][3]);
    glActiveTexture(GL_TEXTURE1);  // texture units are each context's own
    glBindTexture(GL_TEXTURE_2D, d->tex_ch[i]);
    glActiveTexture(GL_TEXTURE0);
    const PaneProg *p = &d->pane[PANE_RECON][d->bicubic];
    glUseProgram(p->prog);
    glUniform1f(p->u_flip, (float)d->flip);
    glBindVertexArray(c->vao);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    glBindVertexArray(0);
    gl_ok("channel window");
    glfwSwapBuffers(c->win);
}

void display_windows_draw(Display *d) {
    int any = 0;
    for (int i = 1; i < d->nch; i++) {
        if (!d->cw[i].win) continue;
        if (!any) glFlush();  // this frame's uploads, before another context reads them
        any = 1;
        draw_window(d, i);
    }
    if (any) glfwMakeContextCurrent(d->win);
}

int display_windows_should_close(Display *d) {
    for (int i = 1; i < DISPLAY_CHANNELS; i++)
        if (d->cw[i].win && glfwWindowShouldClose(d->cw[i].win)) return 1;
    return 0;
}

// From display_open: the main window, too, follows the monitors (kiosk mode
// survives its monitor switched off at night and on again).
void display_windows_watch(Display *d) {
    g_display = d;
    glfwSetMonitorCallback(on_monitor);
}

void display_windows_close(Display *d) {
    d->windows = 0;
    d->want_full = 0;  // closing: no move to a monitor first
    display_windows_place(d);  // closes them all
    if (g_display == d) {
        glfwSetMonitorCallback(NULL);
        g_display = NULL;
    }
}
