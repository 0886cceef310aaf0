// ini.h: the one INI reader of tabula (settings, scenes, MIDI mappings). Lines
// are "[section]", "key = value" or comments ("#" or ";" at the start, or
// after a space following a value); a value may be "quoted". The reader calls
// back for each section header and each key; the callbacks judge names and
// values. Every error comes back as "FILE:LINE: problem".
#pragma once
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

// A section header: 0 to go on, or -1 with the problem in err (no FILE:LINE).
typedef int (*IniSectionFn)(void *user, const char *section, TbErr *err);
// A key and its value in section ("" before any header): 0, or -1 with err.
typedef int (*IniKeyFn)(void *user, const char *section, const char *key, const char *value,
                        int line, TbErr *err);

// Read path through the callbacks (on_section may be NULL). 0, or -1 with err:
// the file cannot be read, a line is too long, a header or a line is not
// INI, or a callback's problem, each prefixed with FILE:LINE.
int ini_parse(const char *path, IniSectionFn on_section, IniKeyFn on_key, void *user, TbErr *err);

// Whitespace off both ends, in place.
char *tb_trim(char *s);

#ifdef __cplusplus
}
#endif
