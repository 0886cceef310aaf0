// schedule.h: opening hours ([schedule] hours and days). Outside them the live
// app shows a black screen and trains nothing; at opening it wakes (and, with
// [schedule] rebirth = fresh, starts a new network: run_opening in run.h).
//
// hours: "10:00-18:00", several ranges comma separated ("10:00-13:00,14:00-18:00");
// a range that ends before it starts runs past midnight ("20:00-02:00"); 24:00
// ends a range at midnight; empty = the whole day. days: "mon-fri,sun" (a range
// may wrap: "fri-mon"); empty = every day. A range past midnight belongs to the
// day it starts on: "fri" with "20:00-02:00" is open Friday 20:00 to Saturday
// 02:00. Local time (localtime_r: TZ and daylight saving as the system has them).
//
// Time is an argument, so tests drive it with chosen times.
#pragma once
#include <time.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCHEDULE_MAX_RANGES 8

typedef struct {
    int start, end;  // minutes from midnight: 0..1439, end 1..1440; end < start: past midnight
} ScheduleRange;

typedef struct {
    ScheduleRange r[SCHEDULE_MAX_RANGES];
    int n;              // at least 1 (empty hours: 00:00-24:00)
    unsigned char days; // bit d for tm_wday d (0 = Sunday); 0x7f = every day
} Schedule;

// Each part alone (the parameter table checks them as they are read): 0, or -1
// with what is wrong in err.
int schedule_parse_hours(Schedule *s, const char *hours, TbErr *err);
int schedule_parse_days(Schedule *s, const char *days, TbErr *err);
// Both: 0, or -1 with err.
int schedule_parse(Schedule *s, const char *hours, const char *days, TbErr *err);
// 1 if open every minute of every day (nothing to do).
int schedule_always(const Schedule *s);
// 1 if open at t.
int schedule_open(const Schedule *s, time_t t);
// The first minute after t at which schedule_open differs from its value at t
// (opening while closed, closing while open); -1 if it never changes.
time_t schedule_next_change(const Schedule *s, time_t t);

#ifdef __cplusplus
}
#endif
