// parse.h: the small text parsers every layer shares (one of each): "WxH"
// sizes and comma-separated integer lists. Both reject trailing garbage.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// "WxH" (or "WXH") with min <= W, H <= max and nothing after. Returns 0 with
// *w, *h set, or -1 (outputs untouched).
int tb_parse_size(const char *s, int min, int max, int *w, int *h);

// Up to `cap` integers in [min, max] separated by commas (spaces after a comma
// allowed). Parsing stops at the first character that is neither a digit nor a
// separator; *end (if non-NULL) points there. Returns the count (>= 1), or -1
// if the list is empty, a value is out of range, or there are more than cap.
int tb_parse_int_list(const char *s, int *out, int cap, long min, long max, const char **end);

#ifdef __cplusplus
}
#endif
