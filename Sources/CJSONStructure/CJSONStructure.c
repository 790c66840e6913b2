#include "CJSONStructure.h"

#include <string.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/// One bit per byte of a 64-byte block, bit i for byte i.
typedef struct {
    uint64_t quotes;
    uint64_t backslashes;
    /// `{` and `[`.
    uint64_t opens;
    /// `}` and `]`.
    uint64_t closes;
} block_masks;

/// Masks a byte at a time.
static inline block_masks portable_masks(const uint8_t *block) {
    block_masks masks = {0, 0, 0, 0};
    for (unsigned i = 0; i < 64; i++) {
        uint64_t bit = (uint64_t)1 << i;
        // `[` (0x5B) and `{` (0x7B) differ only in bit 5; so do `]` (0x5D) and `}` (0x7D).
        uint8_t folded = block[i] | 0x20;
        masks.quotes |= block[i] == '"' ? bit : 0;
        masks.backslashes |= block[i] == '\\' ? bit : 0;
        masks.opens |= folded == '{' ? bit : 0;
        masks.closes |= folded == '}' ? bit : 0;
    }
    return masks;
}

#if defined(__x86_64__)
/// Masks sixteen bytes at a time with SSE2 (every x86-64 processor has it).
static inline block_masks sse2_masks(const uint8_t *block) {
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i open = _mm_set1_epi8('{');
    const __m128i close = _mm_set1_epi8('}');
    const __m128i fold = _mm_set1_epi8(0x20);
    block_masks masks = {0, 0, 0, 0};
    for (unsigned part = 0; part < 4; part++) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(block + 16 * part));
        __m128i folded = _mm_or_si128(bytes, fold);
        unsigned shift = 16 * part;
        masks.quotes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, quote)) << shift;
        masks.backslashes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, backslash)) << shift;
        masks.opens |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, open)) << shift;
        masks.closes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, close)) << shift;
    }
    return masks;
}
#endif

#if defined(__aarch64__)
/// One bit per byte of four comparisons (each byte 0xFF or 0): NEON has no movemask, so
/// each byte keeps its own bit of eight and three pairwise additions gather them.
static inline uint64_t neon_bits(uint8x16_t first, uint8x16_t second, uint8x16_t third, uint8x16_t fourth) {
    const uint8x16_t weights = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t sum01 = vpaddq_u8(vandq_u8(first, weights), vandq_u8(second, weights));
    uint8x16_t sum23 = vpaddq_u8(vandq_u8(third, weights), vandq_u8(fourth, weights));
    uint8x16_t sum = vpaddq_u8(sum01, sum23);
    sum = vpaddq_u8(sum, sum);
    return vgetq_lane_u64(vreinterpretq_u64_u8(sum), 0);
}

/// Masks sixteen bytes at a time with NEON (every ARM64 processor has it).
static inline block_masks neon_masks(const uint8_t *block) {
    uint8x16_t bytes[4], folded[4];
    for (unsigned part = 0; part < 4; part++) {
        bytes[part] = vld1q_u8(block + 16 * part);
        folded[part] = vorrq_u8(bytes[part], vdupq_n_u8(0x20));
    }
#define CHATBRIDGE_NEON_MASK(of, byte) neon_bits( \
        vceqq_u8(of[0], vdupq_n_u8(byte)), vceqq_u8(of[1], vdupq_n_u8(byte)), \
        vceqq_u8(of[2], vdupq_n_u8(byte)), vceqq_u8(of[3], vdupq_n_u8(byte)))
    block_masks masks = {
        CHATBRIDGE_NEON_MASK(bytes, '"'), CHATBRIDGE_NEON_MASK(bytes, '\\'),
        CHATBRIDGE_NEON_MASK(folded, '{'), CHATBRIDGE_NEON_MASK(folded, '}'),
    };
#undef CHATBRIDGE_NEON_MASK
    return masks;
}
#endif

/// The bytes of a block that a backslash hides: the byte after a run of backslashes is
/// hidden when the run is odd, and inside a run every second one is. `carry` is 1 when
/// the previous block's last backslash hides this block's first byte, and becomes the
/// same for the next block. (simdjson's branchless escape finder.)
static inline uint64_t escaped_bytes(uint64_t backslashes, uint64_t *carry) {
    if (backslashes == 0) {
        uint64_t escaped = *carry;
        *carry = 0;
        return escaped;
    }
    const uint64_t even_bits = 0x5555555555555555ULL;
    // A backslash hidden by the previous block's is no escape itself.
    backslashes &= ~*carry;
    uint64_t follows_backslash = backslashes << 1 | *carry;
    // Adding a bit at the start of each run that starts on an odd byte carries through
    // that run, clearing it: what remains are the runs that start on an even byte.
    uint64_t odd_starts = backslashes & ~even_bits & ~follows_backslash;
    uint64_t even_started_runs;
    *carry = __builtin_add_overflow(odd_starts, backslashes, &even_started_runs);
    // After a run that starts on an even byte the odd bytes are hidden, after one that
    // starts on an odd byte the even ones.
    uint64_t invert = even_started_runs << 1;
    return (even_bits ^ invert) & follows_backslash;
}

/// Bit i is the XOR of bits 0...i: from each opening quote to the byte before its
/// closing quote.
static inline uint64_t prefix_xor(uint64_t bits) {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    return bits;
}

/// The walk over blocks, with the masks made by `masks_of` (inlined: a constant).
static inline __attribute__((always_inline)) ptrdiff_t object_end(
    const uint8_t *bytes, size_t count, size_t start, block_masks (*masks_of)(const uint8_t *)
) {
    // All ones when the previous block ended inside a string.
    uint64_t inside_string = 0;
    uint64_t escape_carry = 0;
    ptrdiff_t depth = 0;
    uint8_t padded[64];
    for (size_t position = start; position < count; position += 64) {
        const uint8_t *block = bytes + position;
        if (count - position < 64) {
            // Spaces: neither quotes, backslashes nor brackets.
            memset(padded, ' ', sizeof padded);
            memcpy(padded, block, count - position);
            block = padded;
        }
        block_masks masks = masks_of(block);
        uint64_t quotes = masks.quotes & ~escaped_bytes(masks.backslashes, &escape_carry);
        uint64_t in_string = prefix_xor(quotes) ^ inside_string;
        inside_string = (uint64_t)((int64_t)in_string >> 63);
        // Outside strings a backslash hides nothing, but the escape masks above assumed it
        // does: the first such backslash is where they could start to be wrong.
        if (masks.backslashes & ~in_string) return CHATBRIDGE_JSON_UNDECIDED;
        uint64_t brackets = (masks.opens | masks.closes) & ~in_string;
        while (brackets != 0) {
            unsigned bit = (unsigned)__builtin_ctzll(brackets);
            if (masks.opens >> bit & 1) {
                depth += 1;
            } else if (--depth <= 0) {
                return (ptrdiff_t)(position + bit + 1);
            }
            brackets &= brackets - 1;
        }
    }
    return CHATBRIDGE_JSON_NO_END;
}

ptrdiff_t chatbridge_json_object_end_portable(const uint8_t *bytes, size_t count, size_t start) {
    return object_end(bytes, count, start, portable_masks);
}

ptrdiff_t chatbridge_json_object_end(const uint8_t *bytes, size_t count, size_t start) {
#if defined(__x86_64__)
    return object_end(bytes, count, start, sse2_masks);
#elif defined(__aarch64__)
    return object_end(bytes, count, start, neon_masks);
#else
    return object_end(bytes, count, start, portable_masks);
#endif
}
