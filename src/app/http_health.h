// http_health.h: GET /health on 127.0.0.1:[health] http_port, for monitoring
// tools (Uptime Kuma, Prometheus's blackbox exporter, curl in a cron job). The
// body is the newest published HealthSample as JSON (health.h); the status code
// is 200 while the status is "ok" and 503 otherwise (degraded, stalled, or
// "starting" before the first sample), so a monitor that looks only at the
// code alerts. Anything but /health is 404. libmicrohttpd serves it on a
// thread of its own; the handler only copies the published sample, so it
// never waits on the live loop and the live loop never waits on it.
#pragma once
#include "settings.h"

typedef struct HttpHealth HttpHealth;

// Off (http_port 0): NULL with err->msg empty. A port that cannot be had:
// NULL with err saying why (the caller logs it; tabula runs on without it).
HttpHealth *http_health_start(const Settings *s, TbErr *err);
// The port it listens on.
int http_health_port(const HttpHealth *h);
void http_health_stop(HttpHealth *h);  // NULL: nothing
