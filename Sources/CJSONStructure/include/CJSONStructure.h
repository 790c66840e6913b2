#ifndef CJSONSTRUCTURE_H
#define CJSONSTRUCTURE_H

#include <stddef.h>
#include <stdint.h>

/// `chatbridge_json_object_end`'s answer when the bytes from `start` on hold no end.
static const ptrdiff_t CHATBRIDGE_JSON_NO_END = -1;
/// `chatbridge_json_object_end`'s answer when a backslash stands outside every string
/// (never in JSON): the blocks cannot tell whether it hides the quote after it, so the
/// caller follows the bytes one by one instead.
static const ptrdiff_t CHATBRIDGE_JSON_UNDECIDED = -2;

/// `chatbridge_json_object_end` makes its masks with vector instructions on x86-64 (SSE2)
/// and ARM64 (NEON), a byte at a time elsewhere: slower there than a loop over each byte,
/// which is why `ChatPageScanner.objectEnd` calls it only on those two (`#if arch`).

/// Where the value that starts at `start` ends, found by following only its strings and
/// brackets: one past the first `}` or `]` outside strings that brings the bracket depth
/// (counted from 0 at `start`) to 0 or below; `CHATBRIDGE_JSON_NO_END` when there is none.
///
/// A quote outside a string opens one; inside, a backslash hides the byte after it and
/// an unhidden quote closes it. Nothing is validated: the answer is the one a loop over
/// each byte gives (`ChatPageScanner.objectEndByteByByte` in Swift), for any bytes.
///
/// The bytes are read in blocks of 64 from `start`: a mask per block of its quotes,
/// backslashes and brackets (SSE2 on x86-64, NEON on ARM64, a byte at a time elsewhere),
/// the escaped bytes from the parity of each run of backslashes, the bytes inside strings
/// by a prefix XOR of the remaining quotes, then only the brackets outside strings are
/// visited. A
/// block that would pass `count` is copied into a local one first: nothing at or after
/// `bytes + count` is read.
ptrdiff_t chatbridge_json_object_end(const uint8_t *_Nonnull bytes, size_t count, size_t start);

/// `chatbridge_json_object_end` with the masks built a byte at a time, as on processors
/// without a vector path: the same answers, for tests on every machine.
ptrdiff_t chatbridge_json_object_end_portable(const uint8_t *_Nonnull bytes, size_t count, size_t start);

#endif
