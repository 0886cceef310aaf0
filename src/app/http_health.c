// http_health.c: the /health endpoint (see http_health.h). The listening
// socket is bound here, to 127.0.0.1 only, so a taken port is one clear
// message; libmicrohttpd gets it ready-made and serves it from its own thread.
#define _DEFAULT_SOURCE
#include "http_health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"

struct HttpHealth {
    struct MHD_Daemon *d;
    int port;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **req) {
    (void)cls, (void)version, (void)upload;
    // Called once with the headers, then with any body: answer on the first
    // call only when there is no body to take.
    if (*req == NULL) {
        static int first;
        *req = &first;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;  // a body is not wanted: drop it
        return MHD_YES;
    }
    unsigned code;
    char body[2048];
    if (strcmp(url, "/health") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        snprintf(body, sizeof body, "{\"error\":\"not found: GET /health\"}");
    } else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        snprintf(body, sizeof body, "{\"error\":\"only GET\"}");
    } else {
        HealthSample s;
        if (health_latest(&s, tb_now())) {
            health_format_json(&s, body, sizeof body);
            code = s.status == HEALTH_OK ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
        } else {
            snprintf(body, sizeof body, "{\"status\":\"starting\"}");
            code = MHD_HTTP_SERVICE_UNAVAILABLE;
        }
    }
    tb_debug("http: %s %.100s: %u", method, url, code);
    return answer(c, code, body);
}

// libmicrohttpd's own complaints (a client that hung up): debug lines only.
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    tb_logv(TB_LOG_DEBUG, fmt, ap);
}

HttpHealth *http_health_start(const Settings *s, TbErr *err) {
    err->msg[0] = 0;
    if (s->health_http_port <= 0) return NULL;  // off
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tb_fail(err, "health: http: socket: %s", strerror(errno));
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a restart within TIME_WAIT
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->health_http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        tb_fail(err, "health: cannot serve /health on 127.0.0.1:%d: %s%s", s->health_http_port, strerror(e),
                e == EADDRINUSE ? " (another program has it: set [health] http_port)" : "");
        close(fd);
        return NULL;
    }
    HttpHealth *h = tb_calloc(1, sizeof *h);
    h->port = s->health_http_port;
    // Few connections, short timeouts: it answers a monitor or two.
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO, 0, NULL, NULL,
                            on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
    if (!h->d) {
        // It may have closed fd already: leave it (a rare failure, once).
        tb_fail(err, "health: cannot start the HTTP server on 127.0.0.1:%d", h->port);
        free(h);
        return NULL;
    }
    tb_log("health: GET http://127.0.0.1:%d/health", h->port);
    return h;
}

int http_health_port(const HttpHealth *h) { return h->port; }

void http_health_stop(HttpHealth *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);  // joins its thread, closes the listening socket
    free(h);
}
