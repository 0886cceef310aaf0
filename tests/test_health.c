// test_health.c: why it exists: a technician greps the journal for the health
// line and a monitor parses /health, so both must say exactly what the sample
// holds (and the same thing); the status must turn degraded when the show is
// in trouble; log lines must carry a time and level, or the journal's
// priority, and never show below the level asked for.
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "health.h"
#include "test.h"

// A window run on CUDA, camera fine.
static HealthSample window_sample(void) {
    HealthSample s = {.step = 108000, .frame = 215820, .loss = 0.01771, .steps_per_s = 30.1, .draws = 216000,
                      .camera = HEALTH_CAMERA_OK, .dropped_frames = 12, .dropped_events = 0, .rollbacks = 0,
                      .gpu_used_mb = 2310.4, .gpu_total_mb = 81559, .uptime_s = 3600, .fps = 59.94,
                      .rss_mb = 155.2, .mem_available_mb = 3021.43, .status = HEALTH_OK};
    return s;
}

// A headless run on the CPU: no fps, camera or GPU.
static HealthSample headless_sample(void) {
    HealthSample s = {.step = 300, .frame = 300, .loss = 0.5, .steps_per_s = 20, .draws = -1,
                      .camera = HEALTH_CAMERA_NONE, .dropped_frames = 0, .dropped_events = 2, .rollbacks = 1,
                      .gpu_used_mb = -1, .gpu_total_mb = -1, .uptime_s = 15.04, .fps = -1,
                      .rss_mb = 60, .mem_available_mb = 1000, .status = HEALTH_DEGRADED};
    return s;
}

TEST_IMPL(line_of_a_window_run) {
    HealthSample s = window_sample();
    char line[1024];
    health_format_line(&s, line, sizeof line);
    const char *want = "health ok: uptime 3600.0 s, fps 59.9, steps/s 30.1, loss 0.01771, steps 108000, "
                       "frames 215820, rss 155.2 MB, mem available 3021.4 MB, gpu 2310.4/81559.0 MB, "
                       "camera ok, dropped frames 12, dropped events 0, rollbacks 0";
    EXPECT(strcmp(line, want) == 0, "\n got %s\nwant %s", line, want);
}

TEST_IMPL(line_leaves_out_what_a_run_lacks) {
    HealthSample s = headless_sample();
    char line[1024];
    health_format_line(&s, line, sizeof line);
    const char *want = "health degraded: uptime 15.0 s, steps/s 20.0, loss 0.5, steps 300, frames 300, "
                       "rss 60.0 MB, mem available 1000.0 MB, dropped frames 0, dropped events 2, rollbacks 1";
    EXPECT(strcmp(line, want) == 0, "\n got %s\nwant %s", line, want);
    s.camera = HEALTH_CAMERA_LOST;
    snprintf(s.camera_msg, sizeof s.camera_msg, "camera lost: /dev/video0: No such device");
    health_format_line(&s, line, sizeof line);
    EXPECT(strstr(line, ", camera lost (camera lost: /dev/video0: No such device), dropped frames") != NULL,
           "%s", line);
}

TEST_IMPL(json_of_a_window_run) {
    HealthSample s = window_sample();
    char json[2048];
    health_format_json(&s, json, sizeof json);
    const char *want = "{\"status\":\"ok\",\"uptime_s\":3600.0,\"fps\":59.9,\"steps_per_s\":30.1,\"loss\":0.01771,"
                       "\"step\":108000,\"frame\":215820,\"rss_mb\":155.2,\"mem_available_mb\":3021.4,"
                       "\"gpu_mem_used_mb\":2310.4,\"gpu_mem_total_mb\":81559.0,\"camera\":\"ok\","
                       "\"camera_msg\":null,\"dropped_frames\":12,\"dropped_events\":0,\"rollbacks\":0}";
    EXPECT(strcmp(json, want) == 0, "\n got %s\nwant %s", json, want);
}

TEST_IMPL(json_nulls_and_escapes) {
    HealthSample s = headless_sample();
    s.loss = NAN;  // JSON has no NaN
    s.camera = HEALTH_CAMERA_LOST;
    snprintf(s.camera_msg, sizeof s.camera_msg, "file:\"a\\b\".y4m:\tgone");
    char json[2048];
    health_format_json(&s, json, sizeof json);
    const char *want = "{\"status\":\"degraded\",\"uptime_s\":15.0,\"fps\":null,\"steps_per_s\":20.0,\"loss\":null,"
                       "\"step\":300,\"frame\":300,\"rss_mb\":60.0,\"mem_available_mb\":1000.0,"
                       "\"gpu_mem_used_mb\":null,\"gpu_mem_total_mb\":null,\"camera\":\"lost\","
                       "\"camera_msg\":\"file:\\\"a\\\\b\\\".y4m:\\u0009gone\",\"dropped_frames\":0,"
                       "\"dropped_events\":2,\"rollbacks\":1}";
    EXPECT(strcmp(json, want) == 0, "\n got %s\nwant %s", json, want);
    // A buffer too small: cut, still a C string.
    char small[40];
    health_format_json(&s, small, sizeof small);
    EXPECT(strlen(small) == sizeof small - 1 && strncmp(small, want, sizeof small - 1) == 0, "%s", small);
}

// The fields JSON and OSC walk: the run's own numbers are marked (OSC sends
// those from the RunView at its own rate), unknown ones are null.
TEST_IMPL(fields_mark_the_run_view_and_unknowns) {
    HealthSample s = headless_sample();
    HealthField f[HEALTH_FIELDS];
    int n = health_fields(&s, f);
    int rv = 0, nulls = 0;
    for (int i = 0; i < n; i++) rv += f[i].in_run_view, nulls += f[i].kind == HF_NULL;
    EXPECT(n == HEALTH_FIELDS && rv == 4, "%d fields, %d in the run view", n, rv);
    EXPECT(nulls == 5, "%d unknown (fps, two GPU, camera, camera_msg)", nulls);
}

// Status: degraded while the camera is lost and for a minute after a
// rollback; the rates come from the counters.
TEST_IMPL(update_derives_rates_and_status) {
    Health h;
    health_init(&h, 60, 100.0);
    HealthSample s = {.step = 0, .draws = 0, .camera = HEALTH_CAMERA_OK};
    health_update(&h, 101.0, &s);
    EXPECT(s.status == HEALTH_OK && s.uptime_s == 1.0 && s.fps == 0, "status %d uptime %g fps %g", s.status,
           s.uptime_s, s.fps);
    EXPECT(s.rss_mb > 0 && s.mem_available_mb > 0, "rss %g MB, available %g MB", s.rss_mb, s.mem_available_mb);
    s.draws = 60;
    health_update(&h, 102.0, &s);
    EXPECT_NEAR(s.fps, 60, 1e-9, "fps over the last second");
    s.rollbacks = 1;
    health_update(&h, 103.0, &s);
    EXPECT(s.status == HEALTH_DEGRADED, "a rollback: status %d", s.status);
    health_update(&h, 103.0 + HEALTH_ROLLBACK_S - 1, &s);
    EXPECT(s.status == HEALTH_DEGRADED, "59 s after the rollback: status %d", s.status);
    health_update(&h, 103.0 + HEALTH_ROLLBACK_S + 1, &s);
    EXPECT(s.status == HEALTH_OK, "61 s after: status %d", s.status);
    s.camera = HEALTH_CAMERA_LOST;
    health_update(&h, 200, &s);
    EXPECT(s.status == HEALTH_DEGRADED, "camera lost: status %d", s.status);
    HealthSample none = {.draws = -1};
    health_update(&h, 201, &none);
    EXPECT(none.fps < 0, "no window: fps %g", none.fps);
}

// Reports at most a second apart, a whole number per line.
TEST_IMPL(schedule_of_reports_and_lines) {
    Health h;
    health_init(&h, 60, 0);
    EXPECT(h.period == 1.0 && h.per_line == 60, "60 s: period %g, %ld per line", h.period, h.per_line);
    health_init(&h, 2.5, 0);
    EXPECT_NEAR(h.period * (double)h.per_line, 2.5, 1e-12, "2.5 s lines");
    EXPECT(h.period <= 1.0, "period %g", h.period);
    health_init(&h, 0.5, 0);
    EXPECT(h.period == 0.5 && h.per_line == 1, "0.5 s: period %g, %ld per line", h.period, h.per_line);
    health_init(&h, 0, 10);
    EXPECT(h.period == HEALTH_PUBLISH_S && !health_due(&h, 10.5) && health_due(&h, 11), "off: still published");
}

// The published copy: none before the first, stalled once old.
TEST_IMPL(published_sample_turns_stalled) {
    HealthSample s = window_sample(), got;
    health_publish(NULL);
    EXPECT(!health_latest(&got, 0), "a sample before any was published");
    s.t = 50;
    health_publish(&s);
    EXPECT(health_latest(&got, 51) && got.status == HEALTH_OK && got.step == s.step, "status %d", got.status);
    EXPECT(health_latest(&got, 50 + HEALTH_STALE_S + 1) && got.status == HEALTH_STALLED, "status %d", got.status);
    health_publish(NULL);
}

// ---------------------------------------------------------------- log lines

TEST_IMPL(log_prefix_plain_and_journal) {
    setenv("TZ", "UTC", 1);
    tzset();
    int64_t ms = (int64_t)1795937401 * 1000 + 123;  // 2026-11-29T07:30:01.123Z
    char p[128];
    tb_log_prefix(p, sizeof p, TB_LOG_WARN, 0, ms);
    EXPECT(strcmp(p, "2026-11-29T07:30:01.123 tabula: warn: ") == 0, "%s", p);
    tb_log_prefix(p, sizeof p, TB_LOG_INFO, 0, ms + 5);
    EXPECT(strcmp(p, "2026-11-29T07:30:01.128 tabula: ") == 0, "%s", p);
    const char *want[] = {"<7>tabula: debug: ", "<6>tabula: ", "<4>tabula: warn: ", "<3>tabula: error: "};
    for (int l = TB_LOG_DEBUG; l <= TB_LOG_ERROR; l++) {
        tb_log_prefix(p, sizeof p, l, 1, ms);
        EXPECT(strcmp(p, want[l]) == 0, "level %d: %s", l, p);
    }
}

// JOURNAL_STREAM names a stream by device and inode: fd 2 is the journal
// only if it is that very stream.
TEST_IMPL(journal_stream_must_match_the_fd) {
    char path[] = "/tmp/tabula-journal-XXXXXX";
    int fd = mkstemp(path);
    EXPECT(fd >= 0, "mkstemp");
    if (fd < 0) return;
    struct stat st;
    fstat(fd, &st);
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    EXPECT(tb_log_is_journal(fd) == 1, "the stream JOURNAL_STREAM=%s names", v);
    int other = open("/dev/null", O_WRONLY);
    EXPECT(tb_log_is_journal(other) == 0, "another stream");
    setenv("JOURNAL_STREAM", "12:x", 1);
    EXPECT(tb_log_is_journal(fd) == 0, "a malformed JOURNAL_STREAM");
    unsetenv("JOURNAL_STREAM");
    EXPECT(tb_log_is_journal(fd) == 0, "no JOURNAL_STREAM");
    close(other);
    close(fd);
    unlink(path);
}

// Lines below the level are dropped; each is whole, with its level word.
TEST_IMPL(log_level_filters_lines) {
    EXPECT(tb_log_level_parse("debug") == TB_LOG_DEBUG && tb_log_level_parse("error") == TB_LOG_ERROR &&
               tb_log_level_parse("loud") == -1,
           "level names");
    char path[] = "/tmp/tabula-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    dup2(fd, 2);
    tb_log_set_level(TB_LOG_WARN);
    tb_debug("one %d", 1);
    tb_log("two");
    tb_warn("three %s", "3");
    tb_error("four");
    tb_log_set_level(TB_LOG_DEBUG);
    tb_debug("five");
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tb_log("%s", big);  // longer than the stack buffer: still one line
    tb_log_set_level(TB_LOG_INFO);
    dup2(saved, 2);
    close(saved);
    char text[8192] = "";
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    EXPECT(!strstr(text, "one") && !strstr(text, "two"), "below warn shown:\n%s", text);
    EXPECT(strstr(text, " tabula: warn: three 3\n") && strstr(text, " tabula: error: four\n") &&
               strstr(text, " tabula: debug: five\n"),
           "lines:\n%s", text);
    char want[3100];
    snprintf(want, sizeof want, " tabula: %s\n", big);
    EXPECT(strstr(text, want) != NULL, "the long line is not whole");
    int lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    EXPECT(lines == 4, "%d lines", lines);
}

TEST_MAIN(TEST_ENTRY(line_of_a_window_run), TEST_ENTRY(line_leaves_out_what_a_run_lacks),
          TEST_ENTRY(json_of_a_window_run), TEST_ENTRY(json_nulls_and_escapes),
          TEST_ENTRY(fields_mark_the_run_view_and_unknowns), TEST_ENTRY(update_derives_rates_and_status),
          TEST_ENTRY(schedule_of_reports_and_lines), TEST_ENTRY(published_sample_turns_stalled),
          TEST_ENTRY(log_prefix_plain_and_journal), TEST_ENTRY(journal_stream_must_match_the_fd),
          TEST_ENTRY(log_level_filters_lines))
