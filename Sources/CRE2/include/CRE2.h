// A C interface to RE2 (https://github.com/google/re2), the linear-time regular
// expression engine that defines CEL's `matches`. Only what CEL needs: compile a
// pattern, search a text, free. Texts and patterns are UTF-8 with explicit lengths
// (they may contain NUL).
#ifndef CHATBRIDGE_CRE2_H
#define CHATBRIDGE_CRE2_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A compiled RE2 pattern. Matching is thread-safe; freeing is not (free it once, last).
typedef struct cre2_regex cre2_regex;

/// Why a pattern was refused: RE2's error code (`RE2::ErrorCode`), its reason without the
/// quoted part ("missing )"), and where the part of the pattern it names starts and how
/// long it is, in bytes (`argument_offset` is -1 when RE2 names none).
typedef struct cre2_error {
    int code;
    char reason[128];
    long argument_offset;
    long argument_length;
} cre2_error;

/// Compiles `pattern` (`length` bytes of UTF-8) with RE2's default options (a program of
/// more than `CRE2_LARGE_PROGRAM_SIZE` instructions gets a memory budget of 32 MiB instead
/// of 8), errors not logged. Returns NULL and fills `error` when RE2 refuses the pattern,
/// or when its program is larger than `CRE2_MAX_PROGRAM_SIZE` (code `ErrorPatternTooLarge`).
cre2_regex *cre2_compile(const char *pattern, size_t length, cre2_error *error);

/// The most instructions a compiled pattern may have. A search costs up to its program
/// size per byte of text; within this size and a budget of 32 MiB, RE2's DFA keeps the
/// states of typical large patterns (`(?i)[\pL\pN]{0,30}`, 40,235 instructions) and
/// searches 10 MB in milliseconds, where 8 MiB took 0.5 s per MB.
#define CRE2_MAX_PROGRAM_SIZE 50000

/// From this many instructions a program gets the larger memory budget.
#define CRE2_LARGE_PROGRAM_SIZE 10000

/// The number of instructions of the compiled pattern (`RE2::ProgramSize`).
int cre2_program_size(const cre2_regex *regex);

/// Whether the pattern matches anywhere in `text` (RE2::PartialMatch).
int cre2_partial_match(const cre2_regex *regex, const char *text, size_t length);

/// Frees a pattern from `cre2_compile`.
void cre2_free(cre2_regex *regex);

#ifdef __cplusplus
}
#endif

#endif
