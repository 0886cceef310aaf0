// schedule.c: opening hours (schedule.h).
#define _DEFAULT_SOURCE
#include "schedule.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

// "H:MM" or "HH:MM" at *p: minutes from midnight (24:00 = 1440 only when
// allow_end), *p moved past it; -1 if it is not a time.
static int parse_clock(const char **p, int allow_end) {
    const char *s = *p;
    int h = 0, digits = 0;
    while (isdigit((unsigned char)*s) && digits < 2) h = h * 10 + (*s++ - '0'), digits++;
    if (!digits || *s++ != ':') return -1;
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])) return -1;
    int m = (s[0] - '0') * 10 + (s[1] - '0');
    s += 2;
    if (m > 59 || h > 24 || (h == 24 && (m || !allow_end))) return -1;
    *p = s;
    return h * 60 + m;
}

int schedule_parse_hours(Schedule *s, const char *hours, TbErr *err) {
    s->n = 0;
    const char *p = skip_space(hours);
    if (!*p) {  // the whole day
        s->r[0] = (ScheduleRange){0, 1440};
        s->n = 1;
        return 0;
    }
    for (;;) {
        p = skip_space(p);
        int a = parse_clock(&p, 0);
        p = skip_space(p);
        int b = a >= 0 && *p == '-' ? (p = skip_space(p + 1), parse_clock(&p, 1)) : -1;
        p = skip_space(p);
        if (a < 0 || b < 0 || (*p && *p != ','))
            return tb_fail(err, "hours: \"%s\" is not a list of HH:MM-HH:MM ranges (e.g. 10:00-18:00, "
                                "or 20:00-02:00 past midnight)", hours);
        if (a == b)
            return tb_fail(err, "hours: \"%s\": a range that starts where it ends (for the whole day, "
                                "leave hours empty)", hours);
        if (s->n == SCHEDULE_MAX_RANGES)
            return tb_fail(err, "hours: \"%s\": more than %d ranges", hours, SCHEDULE_MAX_RANGES);
        s->r[s->n++] = (ScheduleRange){a, b};
        if (!*p) return 0;
        p++;  // ','
    }
}

static const char *const DAYS[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// A day's name at *p (three letters, any case): its tm_wday, *p moved past; -1 if none.
static int parse_day(const char **p) {
    for (int d = 0; d < 7; d++)
        if (strncasecmp(*p, DAYS[d], 3) == 0 && !isalpha((unsigned char)(*p)[3])) {
            *p += 3;
            return d;
        }
    return -1;
}

int schedule_parse_days(Schedule *s, const char *days, TbErr *err) {
    const char *p = skip_space(days);
    if (!*p) {
        s->days = 0x7f;
        return 0;
    }
    s->days = 0;
    for (;;) {
        p = skip_space(p);
        int a = parse_day(&p);
        p = skip_space(p);
        int b = a >= 0 && *p == '-' ? (p = skip_space(p + 1), parse_day(&p)) : a;
        p = skip_space(p);
        if (a < 0 || b < 0 || (*p && *p != ','))
            return tb_fail(err, "days: \"%s\" is not a list of days or day ranges (mon tue wed thu fri "
                                "sat sun, e.g. mon-fri,sun)", days);
        for (int d = a;; d = (d + 1) % 7) {  // "fri-mon" wraps over the weekend
            s->days |= (unsigned char)(1u << d);
            if (d == b) break;
        }
        if (!*p) return 0;
        p++;
    }
}

int schedule_parse(Schedule *s, const char *hours, const char *days, TbErr *err) {
    memset(s, 0, sizeof *s);
    return schedule_parse_hours(s, hours, err) || schedule_parse_days(s, days, err) ? -1 : 0;
}

int schedule_always(const Schedule *s) {
    if (s->days != 0x7f) return 0;
    for (int i = 0; i < s->n; i++)
        if (s->r[i].start == 0 && s->r[i].end == 1440) return 1;
    return 0;
}

int schedule_open(const Schedule *s, time_t t) {
    struct tm tm;
    localtime_r(&t, &tm);
    int m = tm.tm_hour * 60 + tm.tm_min, d = tm.tm_wday, yesterday = (d + 6) % 7;
    int today_on = (s->days >> d) & 1, yesterday_on = (s->days >> yesterday) & 1;
    for (int i = 0; i < s->n; i++) {
        const ScheduleRange *r = &s->r[i];
        if (r->start < r->end) {
            if (today_on && m >= r->start && m < r->end) return 1;
        } else if ((today_on && m >= r->start) || (yesterday_on && m < r->end)) {
            return 1;  // past midnight: from its start today, or the rest of yesterday's
        }
    }
    return 0;
}

time_t schedule_next_change(const Schedule *s, time_t t) {
    if (schedule_always(s)) return -1;
    // Ranges are whole minutes of local time, so the state changes only at a
    // minute's start; a week and a day of minutes covers every pattern (and
    // daylight saving, which localtime_r knows).
    int now = schedule_open(s, t);
    time_t c = t - (t % 60) + 60;
    for (int i = 0; i < 8 * 24 * 60; i++, c += 60)
        if (schedule_open(s, c) != now) return c;
    return -1;
}
