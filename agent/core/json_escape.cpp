#include "agent/core/json_escape.h"

#include <array>
#include <cstring>

#include <emmintrin.h>

namespace logship {
namespace {

// 0: copy as is (printable ASCII except `"` and `\`); 1: needs an escape; 2: non-ASCII.
constexpr std::array<uint8_t, 256> make_class() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = c < 0x20 ? 1 : (c >= 0x80 ? 2 : 0);
  t['"'] = 1;
  t['\\'] = 1;
  return t;
}
constexpr std::array<uint8_t, 256> kClass = make_class();

constexpr char kHex[] = "0123456789abcdef";
constexpr char kReplacement[] = "\xEF\xBF\xBD";

/// Writes the escape of `c` (at most 6 bytes) at `w`; returns the new end.
inline char* write_escape(char* w, unsigned char c) {
  w[0] = '\\';
  switch (c) {
    case '"': w[1] = '"'; return w + 2;
    case '\\': w[1] = '\\'; return w + 2;
    case '\n': w[1] = 'n'; return w + 2;
    case '\r': w[1] = 'r'; return w + 2;
    case '\t': w[1] = 't'; return w + 2;
    case '\b': w[1] = 'b'; return w + 2;
    case '\f': w[1] = 'f'; return w + 2;
    default:
      w[1] = 'u';
      w[2] = '0';
      w[3] = '0';
      w[4] = kHex[c >> 4];
      w[5] = kHex[c & 15];
      return w + 6;
  }
}

/// Length of the valid UTF-8 sequence at p (2–4), or 0; then `bad` is the length of the maximal
/// invalid subpart to replace (>= 1). Ranges from Unicode Table 3-7.
inline size_t utf8_sequence(const unsigned char* p, const unsigned char* end, size_t& bad) {
  unsigned char c = p[0];
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0;  // overlong
    else if (c == 0xED)
      hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90;  // overlong
    else if (c == 0xF4)
      hi = 0x8F;  // > U+10FFFF
  } else {
    bad = 1;  // continuation byte, C0/C1 overlong leads, F5..FF
    return 0;
  }
  for (size_t i = 1; i <= need; ++i) {
    if (p + i >= end) {
      bad = i;
      return 0;
    }
    unsigned char b = p[i];
    unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      bad = i;
      return 0;
    }
  }
  return need + 1;
}

}  // namespace

size_t json_escape_append(std::string& out, std::string_view in) {
  // Hot path (measured: 28% of the CPU of file -> HEC before this version). Bytes are staged in
  // a stack buffer and appended to `out` in 4 KiB pieces; plain runs are found 16 bytes at a time
  // with SSE2: one signed compare `< 0x20` flags both control bytes and every byte >= 0x80
  // (negative as int8), two equality compares flag `"` and `\`.
  constexpr size_t kStage = 4096;
  char buf[kStage + 64];  // a block of 16 may expand to 32 bytes, plus one 16-byte store
  char* w = buf;
  char* const wend = buf + kStage;
  size_t replaced = 0;
  auto* p = reinterpret_cast<const unsigned char*>(in.data());
  auto* end = p + in.size();
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i kq = _mm_set1_epi8('"');
  const __m128i kb = _mm_set1_epi8('\\');
  while (p < end) {
    if (w >= wend) {
      out.append(buf, static_cast<size_t>(w - buf));
      w = buf;
    }
    while (end - p >= 16 && w < wend) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      unsigned ctrl = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmplt_epi8(v, k20)));
      unsigned qb = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, kq), _mm_cmpeq_epi8(v, kb))));
      if ((ctrl | qb) == 0) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(w), v);  // room: kStage + 64
        p += 16;
        w += 16;
        continue;
      }
      if (ctrl == 0 && end - p >= 32) {
        // Only `"` and `\` in this block (frequent: JSON text inside a JSON string): escape
        // each in one pass over the bit mask. Each step copies 16 bytes from the current
        // position and keeps those before the next special byte (reads stay below p + 32).
        unsigned pos = 0;
        while (qb) {
          unsigned n = static_cast<unsigned>(__builtin_ctz(qb));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(w),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + pos)));
          w += n - pos;
          w[0] = '\\';
          w[1] = static_cast<char>(p[n]);
          w += 2;
          pos = n + 1;
          qb &= qb - 1;
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(w),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + pos)));
        w += 16 - pos;
        p += 16;
        continue;
      }
      // A control byte or non-ASCII: copy up to the first special byte, then the scalar path.
      _mm_storeu_si128(reinterpret_cast<__m128i*>(w), v);
      unsigned n = static_cast<unsigned>(__builtin_ctz(ctrl | qb));
      p += n;
      w += n;
      break;
    }
    if (w >= wend || p >= end) continue;
    unsigned char c = *p;
    switch (kClass[c]) {
      case 0:
        *w++ = static_cast<char>(c);  // the tail of fewer than 16 bytes
        ++p;
        break;
      case 1:
        w = write_escape(w, c);
        ++p;
        break;
      default: {
        size_t bad = 0;
        size_t n = utf8_sequence(p, end, bad);
        if (n) {
          std::memcpy(w, p, n);
          w += n;
          p += n;
        } else {
          std::memcpy(w, kReplacement, 3);
          w += 3;
          ++replaced;
          p += bad;
        }
      }
    }
  }
  out.append(buf, static_cast<size_t>(w - buf));
  return replaced;
}

}  // namespace logship
