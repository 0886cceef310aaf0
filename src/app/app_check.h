// app_check.h: the app's probes for `tabula --check` (check.h's hook).
#pragma once
#include "check.h"

void app_check_probes(const Settings *s, CheckReport *r);
