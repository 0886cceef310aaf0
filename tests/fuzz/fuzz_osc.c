// fuzz_osc.c: the OSC surface on arbitrary packets: liblo's parsing of
// messages and bundles, then tabula's dispatch of every address, type and value
// (set, nudge, names, get, actions). The packets go over loopback to a real
// surface thread, as a controller's would; a batch is waited for now and then
// so the thread keeps up with the fuzzer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz_file.h"
#include "osc.h"

static Osc *osc;
static ControlQueue q;
static int fd;
static struct sockaddr_in to;
static long sent;

static void start(void) {
    static Settings s;
    settings_default(&s);
    control_queue_init(&q);
    TbErr err;
    for (int port = 19000 + getpid() % 500; !osc && port < 21000; port += 7) {
        s.osc_port = port;
        osc = osc_start(&s, &q, &err);
    }
    if (!osc) abort();
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)osc_port(osc));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!osc) start();
    if (size == 0 || size > 8192) return 0;
    if (sendto(fd, data, size, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)size) sent++;
    ControlEvent e;
    while (control_pop(&q, &e)) {
    }
    if (sent % 64 == 0) {  // let the thread catch up (a bundle counts its messages)
        OscStats st;
        for (int i = 0; i < 200; i++) {
            osc_stats(osc, &st);
            if (st.received >= sent) break;
            usleep(500);
        }
    }
    return 0;
}
