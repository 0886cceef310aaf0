// app.h: the live mirror: capture thread -> training thread -> display.
#pragma once
#include "controls.h"
#include "settings.h"

// Runs until quit (or s->frames trained frames), taking the events of q (keys
// add theirs). Returns an exit code.
int app_run(const Settings *s, ControlQueue *q);
