// app.h: the live mirror: capture thread -> training thread -> display.
#pragma once
#include "settings.h"

// Runs until quit (or s->frames trained frames). Returns an exit code.
int app_run(const Settings *s);
