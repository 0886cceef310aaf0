// test_schedule.c: why it exists: a gallery sets its opening hours once and
// leaves for weeks. A range read wrong, a night range that closes at the wrong
// midnight, or a weekend that counts as a weekday would show a black screen to
// visitors or train all night on an empty room; a typo in the file must stop
// the start with the file and line, not be read as "always open".
#define _DEFAULT_SOURCE
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "schedule.h"
#include "settings.h"
#include "test.h"

// Local time y-m-d h:m in the zone the case set (TZ).
static time_t at(int y, int mo, int d, int h, int mi) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                    .tm_isdst = -1};
    return mktime(&tm);
}

static void zone(const char *tz) {
    setenv("TZ", tz, 1);
    tzset();
}

static Schedule parsed(const char *hours, const char *days) {
    Schedule s;
    TbErr err = {{0}};
    EXPECT(schedule_parse(&s, hours, days, &err) == 0, "\"%s\" / \"%s\": %s", hours, days, err.msg);
    return s;
}

TEST_IMPL(hours_parse_ranges) {
    Schedule s = parsed("10:00-18:00", "");
    EXPECT(s.n == 1 && s.r[0].start == 600 && s.r[0].end == 1080, "%d ranges, %d-%d", s.n, s.r[0].start, s.r[0].end);
    s = parsed(" 9:30-13:00, 14:00 - 24:00 ", "");
    EXPECT(s.n == 2 && s.r[0].start == 570 && s.r[0].end == 780 && s.r[1].start == 840 && s.r[1].end == 1440,
           "two ranges: %d: %d-%d, %d-%d", s.n, s.r[0].start, s.r[0].end, s.r[1].start, s.r[1].end);
    s = parsed("20:00-02:00", "");
    EXPECT(s.n == 1 && s.r[0].start == 1200 && s.r[0].end == 120, "past midnight: %d-%d", s.r[0].start, s.r[0].end);
    s = parsed("", "");
    EXPECT(s.n == 1 && s.r[0].start == 0 && s.r[0].end == 1440 && s.days == 0x7f && schedule_always(&s),
           "empty: the whole day, every day");
    s = parsed("00:00-24:00", "mon-fri");
    EXPECT(!schedule_always(&s), "weekdays only is not always");
}

TEST_IMPL(hours_bad_strings_are_errors) {
    static const char *const bad[] = {
        "25:00-18:00", "10:00", "10-18", "10:00-10:00", "10:60-11:00", "24:00-02:00", "10:00-24:30",
        "10:00-18:00,", "10:00-18:00;12:00-13:00", "10:00-18:00 x", "1:2-3:4", "123:00-13:00",
        "1:00-2:00,3:00-4:00,5:00-6:00,7:00-8:00,9:00-10:00,11:00-12:00,13:00-14:00,15:00-16:00,17:00-18:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Schedule s;
        TbErr err = {{0}};
        EXPECT(schedule_parse_hours(&s, bad[i], &err) == -1, "\"%s\" accepted", bad[i]);
        EXPECT(strncmp(err.msg, "hours: ", 7) == 0 && strstr(err.msg, bad[i]), "\"%s\": %s", bad[i], err.msg);
    }
}

TEST_IMPL(days_parse_lists_and_wrapping_ranges) {
    Schedule s = parsed("", "mon-fri,sun");
    EXPECT(s.days == 0x3f, "mon-fri,sun: %#x", s.days);  // bit 0 = Sunday
    s = parsed("", "fri-mon");
    EXPECT(s.days == (1 | 2 | 32 | 64), "fri-mon wraps: %#x", s.days);
    s = parsed("", " Sat , SUN ");
    EXPECT(s.days == (1 | 64), "case and spaces: %#x", s.days);
    s = parsed("", "wed-wed");
    EXPECT(s.days == 8, "one day: %#x", s.days);
    static const char *const bad[] = {"monday", "mon-", "xyz", "mon,,tue", "mon-fri,", "-fri", "mo"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TbErr err = {{0}};
        EXPECT(schedule_parse_days(&s, bad[i], &err) == -1, "\"%s\" accepted", bad[i]);
        EXPECT(strncmp(err.msg, "days: ", 6) == 0, "\"%s\": %s", bad[i], err.msg);
    }
}

// 2024-01-01 is a Monday.
TEST_IMPL(open_at_chosen_times) {
    zone("UTC");
    Schedule s = parsed("10:00-18:00", "mon-fri");
    EXPECT(!schedule_open(&s, at(2024, 1, 1, 9, 59)), "Mon 09:59 closed");
    EXPECT(schedule_open(&s, at(2024, 1, 1, 10, 0)), "Mon 10:00 open");
    EXPECT(schedule_open(&s, at(2024, 1, 1, 17, 59)), "Mon 17:59 open");
    EXPECT(!schedule_open(&s, at(2024, 1, 1, 18, 0)), "Mon 18:00 closed");
    EXPECT(schedule_open(&s, at(2024, 1, 5, 12, 0)), "Fri noon open");
    EXPECT(!schedule_open(&s, at(2024, 1, 6, 12, 0)), "Sat noon closed");
    EXPECT(!schedule_open(&s, at(2024, 1, 7, 12, 0)), "Sun noon closed");
    s = parsed("10:00-13:00,14:00-18:00", "");
    EXPECT(!schedule_open(&s, at(2024, 1, 6, 13, 30)), "lunch closed");
    EXPECT(schedule_open(&s, at(2024, 1, 6, 14, 0)), "after lunch open, Saturday too");
    s = parsed("", "");
    EXPECT(schedule_open(&s, at(2024, 1, 6, 3, 0)), "no hours: always open");
}

// A range past midnight belongs to the day it starts on.
TEST_IMPL(past_midnight_range_belongs_to_its_start_day) {
    zone("UTC");
    Schedule s = parsed("20:00-02:00", "fri");
    EXPECT(!schedule_open(&s, at(2024, 1, 5, 19, 59)), "Fri 19:59 closed");
    EXPECT(schedule_open(&s, at(2024, 1, 5, 20, 0)), "Fri 20:00 open");
    EXPECT(schedule_open(&s, at(2024, 1, 5, 23, 59)), "Fri 23:59 open");
    EXPECT(schedule_open(&s, at(2024, 1, 6, 0, 0)), "Sat 00:00 open (Friday's night)");
    EXPECT(schedule_open(&s, at(2024, 1, 6, 1, 59)), "Sat 01:59 open");
    EXPECT(!schedule_open(&s, at(2024, 1, 6, 2, 0)), "Sat 02:00 closed");
    EXPECT(!schedule_open(&s, at(2024, 1, 6, 20, 0)), "Sat 20:00 closed (not an open day)");
    EXPECT(!schedule_open(&s, at(2024, 1, 5, 1, 0)), "Fri 01:00 closed (Thursday is not open)");
}

TEST_IMPL(next_change_is_the_next_opening_or_closing) {
    zone("UTC");
    Schedule s = parsed("10:00-18:00", "mon-fri");
    time_t t = at(2024, 1, 5, 18, 30);  // Friday evening
    EXPECT(schedule_next_change(&s, t) == at(2024, 1, 8, 10, 0), "Fri 18:30: opens Mon 10:00, got %+ld s",
           (long)(schedule_next_change(&s, t) - at(2024, 1, 8, 10, 0)));
    t = at(2024, 1, 1, 12, 34) + 56;
    EXPECT(schedule_next_change(&s, t) == at(2024, 1, 1, 18, 0), "Mon 12:34:56: closes 18:00, got %+ld s",
           (long)(schedule_next_change(&s, t) - at(2024, 1, 1, 18, 0)));
    t = at(2024, 1, 1, 9, 59) + 59;
    EXPECT(schedule_next_change(&s, t) == at(2024, 1, 1, 10, 0), "a second before opening");
    s = parsed("20:00-02:00", "");
    EXPECT(schedule_next_change(&s, at(2024, 1, 2, 23, 0)) == at(2024, 1, 3, 2, 0), "closes after midnight");
    s = parsed("", "");
    EXPECT(schedule_next_change(&s, t) == -1, "always open: never");
}

// Central Europe (a POSIX rule, no tzdata needed): on Sunday 2024-03-31 the
// clocks go from 02:00 to 03:00, so Saturday 20:00 to Sunday 10:00 is 13 hours.
TEST_IMPL(next_change_across_daylight_saving) {
    zone("CET-1CEST,M3.5.0,M10.5.0/3");
    Schedule s = parsed("10:00-18:00", "");
    time_t sat = at(2024, 3, 30, 20, 0), next = schedule_next_change(&s, sat);
    EXPECT(next - sat == 13 * 3600, "Sat 20:00 to Sun 10:00: %ld s, want %d", (long)(next - sat), 13 * 3600);
    struct tm tm;
    localtime_r(&next, &tm);
    EXPECT(tm.tm_hour == 10 && tm.tm_min == 0 && tm.tm_mday == 31, "opens at %02d:%02d on the %d", tm.tm_hour,
           tm.tm_min, tm.tm_mday);
    zone("UTC");
}

// A bad value in a file names the file and line; a bad flag names the flag.
TEST_IMPL(bad_settings_name_file_and_line) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-sched-%d.ini", (int)getpid());
    static const char *const files[][2] = {
        {"[schedule]\nhours = 9-5\n", ":2: hours: \"9-5\""},
        {"[schedule]\nhours = 10:00-18:00\ndays = weekdays\n", ":3: days: \"weekdays\""},
        {"[schedule]\nrebirth = reborn\n", ":2: rebirth"},
        {"[presence]\nmode = nap\n", ":2: mode"},
        {"[presence]\n\nthreshold = 2\n", ":3: threshold"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(files[i][0], f);
        fclose(f);
        Settings s;
        settings_default(&s);
        TbErr err = {{0}};
        EXPECT(settings_load_file(&s, path, &err) == -1, "accepted:\n%s", files[i][0]);
        EXPECT(strstr(err.msg, path) && strstr(err.msg, files[i][1]), "\"%s\" lacks \"%s\"", err.msg, files[i][1]);
    }
    unlink(path);
    Settings s;
    settings_default(&s);
    TbErr err = {{0}};
    EXPECT(settings_set(&s, "schedule.days", "funday", &err) == -1 && strstr(err.msg, "funday"), "%s", err.msg);
    EXPECT(settings_set(&s, "schedule.hours", "20:00-02:00,10:00-12:00", &err) == 0 &&
               strcmp(s.sched_hours, "20:00-02:00,10:00-12:00") == 0, "%s", err.msg);
}

TEST_MAIN(TEST_ENTRY(hours_parse_ranges), TEST_ENTRY(hours_bad_strings_are_errors),
          TEST_ENTRY(days_parse_lists_and_wrapping_ranges), TEST_ENTRY(open_at_chosen_times),
          TEST_ENTRY(past_midnight_range_belongs_to_its_start_day),
          TEST_ENTRY(next_change_is_the_next_opening_or_closing), TEST_ENTRY(next_change_across_daylight_saving),
          TEST_ENTRY(bad_settings_name_file_and_line))
