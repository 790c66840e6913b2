// The C interface of include/CRE2.h over RE2's C++ API.
#include "CRE2.h"

#include <re2/re2.h>

#include <cstring>
#include <string>
#include <new>

struct cre2_regex {
    re2::RE2 re;
    cre2_regex(const re2::StringPiece &pattern, const re2::RE2::Options &options) : re(pattern, options) {}
};

static void copy_truncated(char *destination, size_t capacity, const std::string &source) {
    size_t count = source.size() < capacity - 1 ? source.size() : capacity - 1;
    std::memcpy(destination, source.data(), count);
    destination[count] = '\0';
}

cre2_regex *cre2_compile(const char *pattern, size_t length, cre2_error *error) {
    re2::RE2::Options options;
    options.set_log_errors(false);
    cre2_regex *regex = new (std::nothrow) cre2_regex(re2::StringPiece(pattern, length), options);
    // RE2's default budget of 8 MiB leaves its DFA too few states for a large program,
    // which then falls back to the NFA: seconds per megabyte of text instead of
    // milliseconds. Only such a program gets 32 MiB (the DFA's cache lives as long as the
    // pattern: every small pattern of a rule set keeps the default).
    if (regex != nullptr && regex->re.ok() && regex->re.ProgramSize() > CRE2_LARGE_PROGRAM_SIZE
        && regex->re.ProgramSize() <= CRE2_MAX_PROGRAM_SIZE) {
        delete regex;
        options.set_max_mem(32 << 20);
        regex = new (std::nothrow) cre2_regex(re2::StringPiece(pattern, length), options);
    }
    if (regex == nullptr) {
        error->code = re2::RE2::ErrorPatternTooLarge;
        copy_truncated(error->reason, sizeof error->reason, "out of memory");
        error->argument_offset = -1;
        error->argument_length = 0;
        return nullptr;
    }
    if (!regex->re.ok()) {
        // RE2 writes "REASON: ARGUMENT"; the argument is a copy of part of the pattern.
        const std::string &message = regex->re.error();
        const std::string &argument = regex->re.error_arg();
        std::string reason = message;
        if (!argument.empty() && message.size() >= argument.size() + 2
            && message.compare(message.size() - argument.size() - 2, std::string::npos, ": " + argument) == 0) {
            reason = message.substr(0, message.size() - argument.size() - 2);
        }
        size_t found = argument.empty() ? std::string::npos : std::string(pattern, length).find(argument);
        error->code = regex->re.error_code();
        copy_truncated(error->reason, sizeof error->reason, reason);
        error->argument_offset = found == std::string::npos ? -1 : static_cast<long>(found);
        error->argument_length = found == std::string::npos ? 0 : static_cast<long>(argument.size());
        delete regex;
        return nullptr;
    }
    if (regex->re.ProgramSize() > CRE2_MAX_PROGRAM_SIZE) {
        error->code = re2::RE2::ErrorPatternTooLarge;
        copy_truncated(error->reason, sizeof error->reason,
                       "pattern too large (" + std::to_string(regex->re.ProgramSize()) + " steps, at most "
                           + std::to_string(CRE2_MAX_PROGRAM_SIZE) + ")");
        error->argument_offset = -1;
        error->argument_length = 0;
        delete regex;
        return nullptr;
    }
    return regex;
}

int cre2_program_size(const cre2_regex *regex) { return regex->re.ProgramSize(); }

int cre2_partial_match(const cre2_regex *regex, const char *text, size_t length) {
    return re2::RE2::PartialMatch(re2::StringPiece(text, length), regex->re) ? 1 : 0;
}

void cre2_free(cre2_regex *regex) { delete regex; }
