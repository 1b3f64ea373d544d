#include "plugins/transforms/redact/detectors.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Hand-written scanners, one pass each, with a cheap prefilter so that text that cannot hold a
// match is skipped at memchr speed (or faster):
//   email                '@' and "%40" (memchr)
//   ipv4                 '.' between two digits (SSE2)
//   ipv6                 ':' after a hex digit or before ':' (SSE2)
//   phone                '+' (memchr)
//   aws_access_key_id    'A' (memchr)
//   jwt                  'J' of "eyJ" (memchr)
//   bearer_token         'b'/'B', 'r'/'R' 5 bytes later, ' ' 6 bytes later (SSE2)
//   credit_card          4 digits not after a digit, then digit or ' '/'-', then digit (SSE2)
//   us_ssn               ddd?dd?dddd not after a digit, ? = ' ' or '-' (SSE2)
//   iban                 2 uppercase letters + 2 digits (SSE2)
//   aws_secret_access_key
//                        "run skipping": a match lies inside a maximal run of [A-Za-z0-9/+]
//                        at least 40 bytes long, so probing the byte 39 ahead and finding it
//                        outside the class skips 40 bytes at once; only runs of length >= 40
//                        are examined.
//
// Common rules (all detectors):
//   * Text is arbitrary bytes and is never read out of bounds. Bytes >= 0x80 (and every byte not
//     named in a rule) are separators: never part of a match, never "word" characters.
//   * JSON escapes are separators: a character that ends a JSON escape (the `n` of `\n`, the
//     `"` of `\"`, the last hex digit of `\u003c`; "escape" = preceded by an odd run of
//     backslashes) does not glue a following match, and never starts one. So `\nbob@x.com`
//     matches `bob@x.com`, and `\u003cbob@x.com\u003e` matches `bob@x.com`. (Applied to the
//     left boundary of every detector whose left boundary is letters; digit-only boundaries are
//     unaffected since escapes end in letters except `\uXXXX`.)
//   * Per detector, matches are found left to right and scanning resumes after a match, so they
//     are ordered and non-overlapping.

namespace logship::redact {
namespace {

constexpr size_t npos = std::string_view::npos;

// ---- byte classes ----
enum : uint16_t {
  kDigit = 1 << 0,
  kUpper = 1 << 1,
  kLower = 1 << 2,
  kHexLetter = 1 << 3,  // a-f A-F
  kLocal = 1 << 4,      // email local-part atext minus / = ? & '  (no dot)
  kHost = 1 << 5,       // [A-Za-z0-9-]
  kB64 = 1 << 6,        // [A-Za-z0-9/+]
  kB64Url = 1 << 7,     // [A-Za-z0-9_-]
  kBearerTok = 1 << 8,  // [A-Za-z0-9._~+/=-]
  kZone = 1 << 9,       // [A-Za-z0-9._~-]
  kV6Word = 1 << 10,    // [A-Za-z0-9_:.]  (may not precede an IPv6 address)
  kB32 = 1 << 11,       // [A-Z2-7]
  kAlpha = kUpper | kLower,
  kAlnum = kDigit | kUpper | kLower,
  kHex = kDigit | kHexLetter,
};

constexpr std::array<uint16_t, 256> make_classes() {
  std::array<uint16_t, 256> t{};
  auto add = [&t](const char* chars, uint16_t bits) {
    for (const char* p = chars; *p; ++p) t[static_cast<unsigned char>(*p)] |= bits;
  };
  for (int c = 0; c < 256; ++c) {
    uint16_t b = 0;
    if (c >= '0' && c <= '9') b |= kDigit;
    if (c >= 'A' && c <= 'Z') b |= kUpper;
    if (c >= 'a' && c <= 'z') b |= kLower;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) b |= kHexLetter;
    if ((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) b |= kB32;
    if (b & (kDigit | kUpper | kLower)) {
      b |= kLocal | kHost | kB64 | kB64Url | kBearerTok | kZone | kV6Word;
    }
    t[c] = b;
  }
  add("!#$%*+^_`{|}~-", kLocal);
  add("-", kHost);
  add("/+", kB64);
  add("_-", kB64Url);
  add("._~+/=-", kBearerTok);
  add("._~-", kZone);
  add("_:.", kV6Word);
  return t;
}
constexpr std::array<uint16_t, 256> kClass = make_classes();

inline bool is(char c, uint16_t mask) {
  return (kClass[static_cast<unsigned char>(c)] & mask) != 0;
}
inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_hex(char c) {
  return is(c, kHex);
}
inline int hex_value(char c) {
  return is_digit(c) ? c - '0' : (static_cast<unsigned char>(c) | 0x20) - 'a' + 10;
}

// ---- prefilters ----
inline size_t find_byte(std::string_view t, size_t pos, char c) {
  if (pos >= t.size()) return npos;
  const void* p = std::memchr(t.data() + pos, c, t.size() - pos);
  return p ? static_cast<size_t>(static_cast<const char*>(p) - t.data()) : npos;
}

#if defined(__SSE2__)
// Lanes of v within [lo, hi] (unsigned).
inline __m128i in_range(__m128i v, char lo, char hi) {
  const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8(lo));
  const __m128i lim = _mm_set1_epi8(static_cast<char>(hi - lo));
  return _mm_cmpeq_epi8(_mm_max_epu8(d, lim), lim);
}
inline __m128i load16(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
#endif

// First p >= pos with scalar(p). The SSE2 path tests kStride positions at once: simd(lo, hi)
// gets the 32 bytes from pos - 1 and returns a mask whose bit i says whether scalar(pos + i)
// holds, for i < kStride (a pattern spanning bytes p - 1 .. p + w - 2 allows kStride = 33 - w).
// Near the ends of the text the bytes are copied into a zeroed buffer: a NUL byte is in none of
// the classes the patterns require, so the mask equals the bounds-checked scalar predicate.
template <unsigned kStride, typename SimdFn, typename ScalarFn>
inline size_t find_pattern(std::string_view t, size_t pos, [[maybe_unused]] SimdFn&& simd,
                           [[maybe_unused]] ScalarFn&& scalar) {
  static_assert(kStride >= 1 && kStride <= 31);
  const size_t n = t.size();
#if defined(__SSE2__)
  constexpr uint32_t kWindow = (1u << kStride) - 1;
  while (pos < n) {
    uint32_t cand;
    if (pos >= 1 && pos + 31 <= n) {
      const char* b = t.data() + pos - 1;
      cand = simd(load16(b), load16(b + 16)) & kWindow;
    } else {
      alignas(16) char buf[32] = {};
      const size_t off = pos == 0 ? 1 : 0;
      const size_t from = pos - 1 + off;
      std::memcpy(buf + off, t.data() + from, std::min(32 - off, n - from));
      cand = simd(load16(buf), load16(buf + 16)) & kWindow;
      if (n - pos < kStride) cand &= (1u << (n - pos)) - 1;
    }
    if (cand) return pos + static_cast<size_t>(__builtin_ctz(cand));
    pos += kStride;
  }
#else
  for (; pos < n; ++pos) {
    if (scalar(pos)) return pos;
  }
#endif
  return npos;
}

#if defined(__SSE2__)
inline uint32_t bits32(__m128i lo, __m128i hi) {
  return static_cast<uint32_t>(_mm_movemask_epi8(lo)) |
         (static_cast<uint32_t>(_mm_movemask_epi8(hi)) << 16);
}
inline uint32_t digit_bits(__m128i lo, __m128i hi) {
  return bits32(in_range(lo, '0', '9'), in_range(hi, '0', '9'));
}
// ' ' or '-'
inline uint32_t sep_bits(__m128i lo, __m128i hi) {
  const __m128i sp = _mm_set1_epi8(' '), da = _mm_set1_epi8('-');
  return bits32(_mm_or_si128(_mm_cmpeq_epi8(lo, sp), _mm_cmpeq_epi8(lo, da)),
                _mm_or_si128(_mm_cmpeq_epi8(hi, sp), _mm_cmpeq_epi8(hi, da)));
}
#endif

// First p >= pos with text[p] == '.' between two digits (the first dot of a dotted quad).
inline size_t find_dot_between_digits(std::string_view t, size_t pos) {
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    const uint32_t d = digit_bits(lo, hi);
    const __m128i dot = _mm_set1_epi8('.');
    const uint32_t m = bits32(_mm_cmpeq_epi8(lo, dot), _mm_cmpeq_epi8(hi, dot));
    return d & (m >> 1) & (d >> 2);
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  auto scalar = [&](size_t p) {
    return p >= 1 && p + 1 < t.size() && t[p] == '.' && is_digit(t[p - 1]) && is_digit(t[p + 1]);
  };
  return find_pattern<30>(t, pos, simd, scalar);
}

// First p >= pos with text[p] == ':' that can be the first ':' of an IPv6 address: preceded by a
// hex digit, or followed by ':'.
inline size_t find_ipv6_colon(std::string_view t, size_t pos) {
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    const __m128i colon = _mm_set1_epi8(':'), m20 = _mm_set1_epi8(0x20);
    const uint32_t c = bits32(_mm_cmpeq_epi8(lo, colon), _mm_cmpeq_epi8(hi, colon));
    auto hex = [&](__m128i v) {
      return _mm_or_si128(in_range(v, '0', '9'), in_range(_mm_or_si128(v, m20), 'a', 'f'));
    };
    const uint32_t h = bits32(hex(lo), hex(hi));
    return (c >> 1) & (h | (c >> 2));
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  auto scalar = [&](size_t p) {
    const size_t n = t.size();
    return t[p] == ':' && ((p > 0 && is_hex(t[p - 1])) || (p + 1 < n && t[p + 1] == ':'));
  };
  return find_pattern<30>(t, pos, simd, scalar);
}

// Calls on_run(rs, re) for every maximal run [rs, re) of bytes of class `mask` with
// re - rs >= min_len, in order. Probes byte i + min_len - 1: if it is outside the class, no such
// run starts in [i, i + min_len - 1] and all of it is skipped. Invariant: text[i - 1] (if any) is
// outside the class, so a run found walking back from the probe starts at or after i.
template <typename F>
inline void for_each_run(std::string_view t, uint16_t mask, size_t min_len, F&& on_run) {
  const size_t n = t.size();
  size_t i = 0;
  while (n >= min_len && i <= n - min_len) {
    size_t j = i + min_len - 1;
    if (!is(t[j], mask)) {
      i = j + 1;
      continue;
    }
    size_t rs = j;
    while (rs > i && is(t[rs - 1], mask)) --rs;
    size_t re = j + 1;
    while (re < n && is(t[re], mask)) ++re;
    if (re - rs >= min_len) on_run(rs, re);
    i = re + 1;
  }
}

// ---- boundaries ----
// True if text[k] is preceded by an odd number of consecutive backslashes.
inline bool escaped(std::string_view t, size_t k) {
  size_t c = 0;
  while (k > c && t[k - 1 - c] == '\\') ++c;
  return (c & 1) != 0;
}

// True if the byte just before `b` ends a JSON escape: the x of `\x`, or the last hex digit of
// `\uXXXX`.
inline bool escape_tail_before(std::string_view t, size_t b) {
  if (b >= 2 && t[b - 2] == '\\' && escaped(t, b - 1)) return true;
  return b >= 6 && t[b - 5] == 'u' && t[b - 6] == '\\' && escaped(t, b - 5) && is_hex(t[b - 4]) &&
         is_hex(t[b - 3]) && is_hex(t[b - 2]) && is_hex(t[b - 1]);
}

// True if the byte before `b` is of class `mask` (and not the end of a JSON escape).
inline bool glued_before(std::string_view t, size_t b, uint16_t mask) {
  return b > 0 && is(t[b - 1], mask) && !escape_tail_before(t, b);
}

// Number of bytes of a JSON escape starting right at `k` whose backslash is at k - 1 (the
// escaped char, or `uXXXX`), 0 if text[k] is not escaped.
inline size_t escape_len_at(std::string_view t, size_t k, size_t limit) {
  if (k == 0 || t[k - 1] != '\\' || !escaped(t, k)) return 0;
  if (t[k] == 'u' && k + 5 <= limit && is_hex(t[k + 1]) && is_hex(t[k + 2]) && is_hex(t[k + 3]) &&
      is_hex(t[k + 4])) {
    return 5;
  }
  return 1;
}

// Strict dotted quad at s: 4 octets 0-255 in decimal, no leading zero (except "0" itself), each
// octet a digit run of 1-3 digits (so never followed by a digit). Sets `end`.
bool parse_ipv4(std::string_view t, size_t s, size_t& end) {
  const size_t n = t.size();
  size_t pos = s;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (pos >= n || t[pos] != '.') return false;
      ++pos;
    }
    size_t ds = pos;
    unsigned v = 0;
    while (pos < n && is_digit(t[pos]) && pos - ds < 4) v = v * 10 + unsigned(t[pos++] - '0');
    size_t len = pos - ds;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && t[ds] == '0')) return false;
  }
  end = pos;
  return true;
}

// ---- email ----
// local part: dot-atom of atext minus / = ? & ' (excluded so that URL query syntax like
//   `?email=bob@x.com` or `/u/bob@x.com` never joins the local part), 1-64 bytes. The match takes
//   the longest valid dot-atom ending right before '@': scanning back from '@' it stops at a
//   non-atext byte, at a leading dot or at a double dot (the dots are separators then). A JSON
//   escape right before it is a separator (`\nbob@` starts at b; `\u003cbob@` too). A
//   percent-escape inside it that decodes to a byte that is not local-part atext (`%3D` for '=',
//   `%20` ...) is a separator as well (`email%3Dbob%40x.com` starts at b). The byte before the
//   local part must not be atext (a local part longer than 64 is rejected, not cut).
// '@' or its percent-encoding "%40" (included in the match: `bob%40example.com`).
// domain: 2+ labels of [A-Za-z0-9-] separated by single dots, each 1-63 bytes, no label starting
//   or ending with '-', total <= 253; the last label (TLD) alphabetic, >= 2 letters. The domain
//   ends at the first byte that cannot continue a hostname (a '.' not followed by a hostname
//   byte, so a sentence's final period is not included).
constexpr size_t kMaxLocal = 64;

bool try_email(std::string_view t, size_t at, size_t at_len, size_t last_end, Match& m) {
  const size_t n = t.size();
  if (at <= last_end) return false;
  // ---- local part [s, at) ----
  const size_t lb = std::max(last_end, at > kMaxLocal + 1 ? at - kMaxLocal - 1 : size_t{0});
  size_t s = at;
  while (s > lb) {
    char c = t[s - 1];
    if (is(c, kLocal)) {
      --s;
    } else if (c == '.' && s < at && s - 1 > lb && is(t[s - 2], kLocal)) {
      --s;
    } else {
      break;
    }
  }
  if (s == at || at - s > kMaxLocal) return false;
  if (s == lb && lb > 0 && is(t[s - 1], kLocal)) return false;  // glued to what precedes
  // A JSON escape right before: its escaped char (or uXXXX) is not part of the local part.
  s += escape_len_at(t, s, at);
  // Percent-escapes of bytes that cannot be in a local part are separators.
  for (size_t q = s; q + 3 <= at; ++q) {
    if (t[q] == '%' && is_hex(t[q + 1]) && is_hex(t[q + 2])) {
      char v = static_cast<char>(hex_value(t[q + 1]) * 16 + hex_value(t[q + 2]));
      if (!is(v, kLocal) && v != '.') s = q + 3;
    }
  }
  while (s < at && t[s] == '.') ++s;
  if (s >= at) return false;
  // ---- domain ----
  const size_t d = at + at_len;
  size_t pos = d;
  int labels = 0;
  size_t tld_start = d;
  for (;;) {
    size_t ls = pos;
    while (pos < n && is(t[pos], kHost)) {
      if (++pos - ls > 63) return false;
    }
    if (pos == ls || t[ls] == '-' || t[pos - 1] == '-') return false;
    if (pos - d > 253) return false;
    ++labels;
    tld_start = ls;
    if (pos + 1 < n && t[pos] == '.' && is(t[pos + 1], kHost)) {
      ++pos;
      continue;
    }
    break;
  }
  if (labels < 2 || pos - tld_start < 2) return false;
  for (size_t k = tld_start; k < pos; ++k) {
    if (!is(t[k], kAlpha)) return false;
  }
  m = {s, pos};
  return true;
}

inline size_t find_pct40(std::string_view t, size_t pos) {
  while ((pos = find_byte(t, pos, '%')) != npos) {
    if (pos + 2 < t.size() && t[pos + 1] == '4' && t[pos + 2] == '0') return pos;
    ++pos;
  }
  return npos;
}

void scan_email(std::string_view t, std::vector<Match>& out) {
  size_t last_end = 0;
  size_t next_at = find_byte(t, 0, '@');
  size_t next_pct = find_pct40(t, 0);
  while (next_at != npos || next_pct != npos) {
    const bool plain = next_at < next_pct;
    const size_t trig = plain ? next_at : next_pct;
    Match m{};
    size_t resume = trig + 1;
    if (try_email(t, trig, plain ? 1 : 3, last_end, m)) {
      out.push_back(m);
      last_end = resume = m.end;
    }
    if (next_at < resume) next_at = find_byte(t, resume, '@');
    if (next_pct < resume) next_pct = find_pct40(t, resume);
  }
}

// ---- ipv4 ----
// Dotted quad (see parse_ipv4). Not preceded by a digit, a letter, or a '.' that follows a digit;
// not followed by a digit, a letter, or a '.' followed by a digit (so nothing of `1.2.3.4.5` and
// `01.2.3.4` matches). Anything else may follow (`:port`, `/prefix`, not included).
void scan_ipv4(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  size_t pos = 0, p;
  while ((p = find_dot_between_digits(t, pos)) != npos) {
    pos = p + 1;
    // p must be the first dot of the quad: the digit run before it (1-3 digits) starts at k.
    size_t k = p - 1;
    while (k > 0 && p - k < 3 && is_digit(t[k - 1])) --k;
    if (k > 0 && is_digit(t[k - 1])) continue;  // 4+ digits: no octet
    if (k >= 2 && t[k - 1] == '.' && is_digit(t[k - 2])) continue;
    if (glued_before(t, k, kAlpha)) continue;
    size_t e = 0;
    if (!parse_ipv4(t, k, e)) continue;
    if (e < n && (is(t[e], kAlpha) || (t[e] == '.' && e + 1 < n && is_digit(t[e + 1])))) continue;
    out.push_back({k, e});
    pos = e;
  }
}

// ---- ipv6 ----
// RFC 4291 text forms: groups of 1-4 hex digits (any case) separated by ':'; either exactly 8
// groups, or at most 7 with exactly one "::" (which may lead, trail or stand alone: `::`, `::1`,
// `fe80::`, `1::`); the last 32 bits may be a dotted quad (counts as 2 groups: `::ffff:192.0.2.1`,
// `64:ff9b::192.0.2.33`). So `12:30:45` (3 groups, no "::") and MAC addresses (6 groups) never
// match, nor `1:2:3:4:5:6:7:8:9` or `1::2::3`. An optional zone id `%` + [A-Za-z0-9._~-]+ is
// included (`fe80::1%eth0`, `fe80::1%25eth0`; trailing dots excluded). Not preceded by
// [A-Za-z0-9_:.]; not followed by [A-Za-z0-9_:] or by '.' + alphanumeric. Brackets are
// separators, so `http://[2001:db8::1]:8080/` matches `2001:db8::1`.
bool parse_ipv6(std::string_view t, size_t s, size_t& end) {
  const size_t n = t.size();
  size_t pos = s;
  int groups = 0;
  bool dbl = false;
  if (pos + 1 < n && t[pos] == ':' && t[pos + 1] == ':') {
    dbl = true;
    pos += 2;
  } else if (t[pos] == ':') {
    return false;
  }
  if (!dbl || (pos < n && is_hex(t[pos]))) {
    for (;;) {
      const size_t hs = pos;
      while (pos < n && pos - hs < 5 && is_hex(t[pos])) ++pos;
      const size_t hl = pos - hs;
      if (hl == 0 || hl > 4) return false;
      if (pos < n && t[pos] == '.' && groups <= 6) {
        size_t v4e = 0;
        if (parse_ipv4(t, hs, v4e)) {
          groups += 2;
          pos = v4e;
          break;
        }
      }
      if (++groups > 8) return false;
      if (pos + 1 < n && t[pos] == ':' && t[pos + 1] == ':') {
        if (dbl) return false;
        dbl = true;
        pos += 2;
        if (pos < n && is_hex(t[pos])) continue;
        break;
      }
      if (pos + 1 < n && t[pos] == ':' && is_hex(t[pos + 1])) {
        ++pos;
        continue;
      }
      break;
    }
  }
  if (dbl ? groups > 7 : groups != 8) return false;
  if (pos + 1 < n && t[pos] == '%' && is(t[pos + 1], kZone)) {
    const size_t zs = pos + 1;
    size_t z = zs;
    while (z < n && is(t[z], kZone)) ++z;
    while (z > zs && t[z - 1] == '.') --z;
    if (z > zs) pos = z;
  }
  if (pos < n) {
    char c = t[pos];
    if (is(c, kAlnum) || c == '_' || c == ':') return false;
    if (c == '.' && pos + 1 < n && is(t[pos + 1], kAlnum)) return false;
  }
  end = pos;
  return true;
}

void scan_ipv6(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  size_t pos = 0;
  size_t last_end = 0;
  size_t p;
  while ((p = find_ipv6_colon(t, pos)) != npos) {
    pos = p + 1;
    // The first ':' of an address is preceded by 0-4 hex digits, themselves not glued.
    size_t q = p;
    while (q > last_end && p - q < 5 && is_hex(t[q - 1])) --q;
    if (p - q > 4 || glued_before(t, q, kV6Word)) continue;
    if (q == p && !(p + 1 < n && t[p + 1] == ':')) continue;
    size_t e = 0;
    if (parse_ipv6(t, q, e)) {
      out.push_back({q, e});
      pos = last_end = e;
    }
  }
}

// ---- credit_card ----
// A card number is 13-19 digits, either contiguous or in groups separated by single spaces or
// single dashes, one separator kind per number (`4111 1111 1111 1111`, `4111-1111-1111-1111`,
// `4111111111111111`, Amex `3782 822463 10005`); grouped numbers: first group 4 digits, the
// others 3-6 (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3 ...); Luhn-valid.
// Where it is looked for: a "run" is a maximal chain of digit groups (maximal digit sequences)
// joined by single ' ' or '-' (separator kinds may mix within a run). A card is a contiguous
// sequence of whole groups of a run: it starts and ends on group boundaries, so it is never glued
// to a digit directly, but its neighbours in the run (joined to it by a separator) may be any
// digits: `2024-01-01 4111111111111111`, `amount 100 4111-1111-1111-1111`, `4111111111111111 2`
// and `12:00:00 4111 1111 1111 1111` all match the card, and a whole run that is itself a card
// matches as a whole. Within a run the matches are the leftmost card, then the longest one
// starting there; the search resumes at the next group, so `4111111111111111 5500005555555559`
// is two cards. A digit sequence longer than 19 (`41111111111111110000`) is one group, so nothing
// in it matches, and a candidate mixing separators (`4111-1111 1111-1111`) is not a card. The
// match spans first to last digit. Work per group is bounded (a card spans at most 6 groups and
// 19 digits), so long runs are scanned in linear time.
// Alphanumeric tokens: digits that belong to a token with letters are not card digits. A "chain"
// is a maximal part of a run whose groups are joined by '-' only. A chain at an end of its run
// that is glued to an ASCII letter (the byte before its first digit or after its last digit is
// [A-Za-z]), or joined by a single '-' to a hex word (a maximal [A-Za-z0-9] word of at least 4
// characters, all [0-9A-Fa-f], so with a letter), is part of such a token (UUIDs, hex ids) and is
// cut off the run; cards are looked for in the rest, i.e. in the groups joined to it by a space.
// So `663b9755-3617-8768-9821-8451b27c4a10` (the chain 9755-3617-8768-9821-8451 is glued to
// letters; its all-digit 3617-8768-9821-8451 is Luhn-valid), `ab4111111111111111`,
// `4111111111111111z`, `4111-1111-1111-1111x` and `deadbeef-4111-1111-1111-1111` match nothing,
// while `v2 4111 1111 1111 1111` (only the chain `2` is cut), `card-4111-1111-1111-1111` and
// `cc-4111-1111-1111-1111` (not hex words) and `x:4111111111111111` (not a letter) match the
// card. Limitation: a UUID whose hex segments next to the card are all digits (e.g.
// `12345678-3617-8768-9821-845112345678`) is digits only, not told apart from a run of numbers.
// Candidate start: 4 digits not preceded by a digit, then a digit or a separator, then a digit
// (every card starts so, grouped or not); groups of the run before it start no card.
inline bool card_candidate(std::string_view t, size_t p) {
  return p + 6 <= t.size() && (p == 0 || !is_digit(t[p - 1])) && is_digit(t[p]) &&
         is_digit(t[p + 1]) && is_digit(t[p + 2]) && is_digit(t[p + 3]) &&
         (is_digit(t[p + 4]) || t[p + 4] == ' ' || t[p + 4] == '-') && is_digit(t[p + 5]);
}

// Luhn sums of a digit string: sum[0] doubles the digits at even indexes (from the left),
// sum[1] those at odd indexes; a string of length len is valid iff sum[len & 1] % 10 == 0 (its
// last digit, index len - 1, is not doubled). Appending a string shifts its indexes by len.
struct Luhn {
  unsigned sum[2] = {0, 0};
  size_t len = 0;
  static Luhn of(std::string_view t, size_t s, size_t e) {
    static constexpr unsigned char kDouble[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
    Luhn l;
    for (size_t i = s; i < e; ++i) {
      const unsigned v = unsigned(t[i] - '0'), odd = (i - s) & 1;
      l.sum[odd] += kDouble[v];
      l.sum[odd ^ 1] += v;
    }
    l.len = e - s;
    return l;
  }
  void append(const Luhn& o) {
    const size_t p = len & 1;
    sum[0] += o.sum[p];
    sum[1] += o.sum[p ^ 1];
    len += o.len;
  }
  bool valid() const { return len >= 13 && len <= 19 && sum[len & 1] % 10 == 0; }
};

// Whether the run starting at s is glued to a letter or joined by '-' to a hex word before it
// (see above); token_glued_after: the same after the run ending at e.
inline bool token_glued_before(std::string_view t, size_t s) {
  if (s > 0 && is(t[s - 1], kAlpha)) return true;
  if (s < 2 || t[s - 1] != '-' || !is(t[s - 2], kHexLetter)) return false;
  size_t q = s - 1;
  while (q > 0 && is_hex(t[q - 1])) --q;
  return s - 1 - q >= 4 && (q == 0 || !is(t[q - 1], kAlnum));
}
inline bool token_glued_after(std::string_view t, size_t e) {
  const size_t n = t.size();
  if (e < n && is(t[e], kAlpha)) return true;
  if (e + 1 >= n || t[e] != '-' || !is(t[e + 1], kHexLetter)) return false;
  size_t r = e + 1;
  while (r < n && is_hex(t[r])) ++r;
  return r - (e + 1) >= 4 && (r == n || !is(t[r], kAlnum));
}

// Finds the cards in the rest of a run, from k (the start of one of its groups) on; returns the
// end of the run. Walks the run with a window of its next kMaxGroups groups (a ring, first group
// at g[h]): a card is looked for at the window's first group, then the window slides past the
// card or by one group.
size_t scan_card_run(std::string_view t, size_t k, std::vector<Match>& out) {
  // A digit group [s, e) of the run, the separator before it (0 for the first one) and its Luhn
  // sums, computed when first needed.
  struct Group {
    size_t s, e;
    char sep;
    bool has_luhn;
    Luhn luhn;
    const Luhn& sums(std::string_view text) {
      if (!has_luhn) luhn = Luhn::of(text, s, e), has_luhn = true;
      return luhn;
    }
  };
  constexpr size_t kMaxGroups = 6;  // a card spans at most 6 groups: 4 + 5 * 3 = 19 digits
  constexpr size_t kRing = 8;       // power of 2 >= kMaxGroups
  const size_t n = t.size();
  Group g[kRing];
  size_t h = 0, ng = 0;
  bool more = true;
  char sep = 0;
  auto at = [&](size_t j) -> Group& { return g[(h + j) & (kRing - 1)]; };
  for (;;) {
    while (more && ng < kMaxGroups) {
      const size_t s = k;
      while (k < n && is_digit(t[k])) ++k;
      Group& gn = at(ng++);
      gn.s = s, gn.e = k, gn.sep = sep, gn.has_luhn = false;
      more = k + 1 < n && (t[k] == ' ' || t[k] == '-') && is_digit(t[k + 1]);
      if (more) sep = t[k++];
    }
    if (ng == 0) return k;
    size_t take = 0;  // groups of the longest card starting at the window's first group
    Group& g0 = at(0);
    const size_t len0 = g0.e - g0.s;
    if (len0 >= 13 && len0 <= 19) {
      if (g0.sums(t).valid()) take = 1;
    } else if (len0 == 4 && ng > 1) {
      // The longest shape-valid sequence g0 .. g[last] (one separator kind, groups of 3-6,
      // <= 19 digits); Luhn only if it reaches 13 digits.
      const char sep1 = at(1).sep;
      size_t last = 0, digits = 4;
      while (last + 1 < ng) {
        const Group& gj = at(last + 1);
        const size_t len = gj.e - gj.s;
        if (gj.sep != sep1 || len < 3 || len > 6 || digits + len > 19) break;
        digits += len;
        ++last;
      }
      if (digits >= 13) {
        Luhn l = g0.sums(t);
        for (size_t j = 1; j <= last; ++j) {
          l.append(at(j).sums(t));
          if (l.valid()) take = j + 1;
        }
      }
    }
    if (take) out.push_back({g0.s, at(take - 1).e});
    const size_t drop = take ? take : 1;
    h += drop;
    ng -= drop;
  }
}

void scan_credit_card(std::string_view t, std::vector<Match>& out) {
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    // bit i: byte at pos - 1 + i; candidate pos + i
    const uint32_t d = digit_bits(lo, hi), r = d | sep_bits(lo, hi);
    return ~d & (d >> 1) & (d >> 2) & (d >> 3) & (d >> 4) & (r >> 5) & (d >> 6);
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  const size_t n = t.size();
  auto is_sep = [](char c) { return c == ' ' || c == '-'; };
  size_t pos = 0, k;
  while ((k = find_pattern<26>(t, pos, simd, [&](size_t p) { return card_candidate(t, p); })) !=
         npos) {
    // The start s of the run around k (its groups before k start no card).
    size_t s = k;
    while (s >= 2 && is_sep(t[s - 1]) && is_digit(t[s - 2])) {
      s -= 2;
      while (s > 0 && is_digit(t[s - 1])) --s;
    }
    if (token_glued_before(t, s)) {  // cut the first chain and the space after it
      while (s < n && (is_digit(t[s]) || (t[s] == '-' && s + 1 < n && is_digit(t[s + 1])))) ++s;
      if (!(s + 1 < n && t[s] == ' ' && is_digit(t[s + 1]))) {
        pos = s;  // the run ends with its first chain
        continue;
      }
      if (k < ++s) k = s;
    }
    const size_t before = out.size();
    const size_t e = scan_card_run(t, k, out);
    pos = e;
    if (token_glued_after(t, e)) {  // rescan without the last chain and the space before it
      out.resize(before);
      size_t c = e;
      while (c > k && t[c - 1] != ' ') --c;
      if (c > k) scan_card_run(t.substr(0, c - 1), k, out);
    }
  }
}

// ---- iban ----
// ISO 13616: country code (2 uppercase letters) + 2 check digits + BBAN of uppercase letters and
// digits; either contiguous or in groups of 4 separated by single spaces (the last group 1-4),
// e.g. `DE89 3704 0044 0532 0130 00`. Length: exact per country for the countries of the SWIFT
// registry listed below, 15-34 for other country codes. mod-97 of the rearranged number (first
// 4 chars moved to the end, letters as 10..35) == 1. Lowercase is not accepted. Not adjacent to
// an alphanumeric.
constexpr std::array<unsigned char, 26 * 26> make_iban_lengths() {
  std::array<unsigned char, 26 * 26> t{};
  struct E {
    char a, b;
    unsigned char len;
  };
  constexpr E kE[] = {
      {'A', 'D', 24}, {'A', 'E', 23}, {'A', 'L', 28}, {'A', 'T', 20}, {'A', 'Z', 28},
      {'B', 'A', 20}, {'B', 'E', 16}, {'B', 'G', 22}, {'B', 'H', 22}, {'B', 'R', 29},
      {'B', 'Y', 28}, {'C', 'H', 21}, {'C', 'R', 22}, {'C', 'Y', 28}, {'C', 'Z', 24},
      {'D', 'E', 22}, {'D', 'K', 18}, {'D', 'O', 28}, {'E', 'E', 20}, {'E', 'G', 29},
      {'E', 'S', 24}, {'F', 'I', 18}, {'F', 'O', 18}, {'F', 'R', 27}, {'G', 'B', 22},
      {'G', 'E', 22}, {'G', 'I', 23}, {'G', 'L', 18}, {'G', 'R', 27}, {'G', 'T', 28},
      {'H', 'R', 21}, {'H', 'U', 28}, {'I', 'E', 22}, {'I', 'L', 23}, {'I', 'Q', 23},
      {'I', 'S', 26}, {'I', 'T', 27}, {'J', 'O', 30}, {'K', 'W', 30}, {'K', 'Z', 20},
      {'L', 'B', 28}, {'L', 'C', 32}, {'L', 'I', 21}, {'L', 'T', 20}, {'L', 'U', 20},
      {'L', 'V', 21}, {'M', 'C', 27}, {'M', 'D', 24}, {'M', 'E', 22}, {'M', 'K', 19},
      {'M', 'R', 27}, {'M', 'T', 31}, {'M', 'U', 30}, {'N', 'L', 18}, {'N', 'O', 15},
      {'P', 'K', 24}, {'P', 'L', 28}, {'P', 'S', 29}, {'P', 'T', 25}, {'Q', 'A', 29},
      {'R', 'O', 24}, {'R', 'S', 22}, {'S', 'A', 24}, {'S', 'C', 31}, {'S', 'E', 24},
      {'S', 'I', 19}, {'S', 'K', 24}, {'S', 'M', 27}, {'S', 'T', 25}, {'S', 'V', 28},
      {'T', 'L', 23}, {'T', 'N', 24}, {'T', 'R', 26}, {'U', 'A', 29}, {'V', 'A', 22},
      {'V', 'G', 24}, {'X', 'K', 20},
  };
  for (const E& e : kE) t[size_t(e.a - 'A') * 26 + size_t(e.b - 'A')] = e.len;
  return t;
}
constexpr std::array<unsigned char, 26 * 26> kIbanLength = make_iban_lengths();

inline bool is_ua(char c) {
  return is(c, kDigit | kUpper);
}

bool try_iban(std::string_view t, size_t k, size_t& end) {
  const size_t n = t.size();
  if (k + 4 > n || !is(t[k], kUpper) || !is(t[k + 1], kUpper) || !is_digit(t[k + 2]) ||
      !is_digit(t[k + 3])) {
    return false;
  }
  if (glued_before(t, k, kAlnum)) return false;
  const size_t known = kIbanLength[size_t(t[k] - 'A') * 26 + size_t(t[k + 1] - 'A')];
  const size_t min_len = known ? known : 15, max_len = known ? known : 34;
  char buf[34];
  std::memcpy(buf, t.data() + k, 4);
  size_t len = 4;
  size_t pos = k + 4;
  if (pos + 1 < n && t[pos] == ' ' && is_ua(t[pos + 1])) {
    // spaced: groups of 4, the last 1-4
    while (len < max_len && pos + 1 < n && t[pos] == ' ' && is_ua(t[pos + 1])) {
      ++pos;
      size_t g = 0;
      while (g < 4 && len < max_len && pos < n && is_ua(t[pos])) {
        buf[len++] = t[pos++];
        ++g;
      }
      if (g < 4) break;
    }
  } else {
    while (len < max_len && pos < n && is_ua(t[pos])) buf[len++] = t[pos++];
  }
  if (len < min_len || (pos < n && is(t[pos], kAlnum))) return false;
  unsigned r = 0;
  for (size_t i = 0; i < len; ++i) {
    char c = buf[(i + 4) % len];
    r = is_digit(c) ? (r * 10 + unsigned(c - '0')) % 97 : (r * 100 + unsigned(c - 'A' + 10)) % 97;
  }
  if (r != 1) return false;
  end = pos;
  return true;
}

void scan_iban(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    const uint32_t d = digit_bits(lo, hi);
    const uint32_t u = bits32(in_range(lo, 'A', 'Z'), in_range(hi, 'A', 'Z'));
    return (u >> 1) & (u >> 2) & (d >> 3) & (d >> 4);
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  auto scalar = [&](size_t p) {
    return p + 4 <= n && is(t[p], kUpper) && is(t[p + 1], kUpper) && is_digit(t[p + 2]) &&
           is_digit(t[p + 3]);
  };
  size_t pos = 0, k;
  while ((k = find_pattern<28>(t, pos, simd, scalar)) != npos) {
    pos = k + 1;
    size_t e = 0;
    if (try_iban(t, k, e)) {
      out.push_back({k, e});
      pos = e;
    }
  }
}

// ---- phone ----
// E.164: '+', then 8-15 digits in total, the first 1-9; digit groups may be separated by a
// single space, dash or dot, and the group after the country code (the first group) may be a
// parenthesised area code of 1-5 digits, optionally preceded by one space and followed by one
// separator (`+1 (415) 555-2671`, `+44 20 7946 0958`, `+4915112345678`). The '+' is not preceded
// by an alphanumeric; the match ends at the last digit, which is not followed by a digit (a
// longer run is rejected, not cut).
bool try_phone(std::string_view t, size_t p, size_t& end) {
  const size_t n = t.size();
  if (glued_before(t, p, kAlnum)) return false;
  size_t pos = p + 1;
  if (pos >= n || !is_digit(t[pos]) || t[pos] == '0') return false;
  size_t digits = 0;
  size_t groups = 0;
  auto is_sep = [](char c) { return c == ' ' || c == '-' || c == '.'; };
  for (;;) {
    while (pos < n && is_digit(t[pos])) {
      if (++digits > 15) return false;
      ++pos;
    }
    ++groups;
    const size_t last = pos;
    if (pos + 1 < n && is_sep(t[pos]) && is_digit(t[pos + 1])) {
      ++pos;
      continue;
    }
    if (groups == 1) {
      size_t r = pos;
      if (r < n && t[r] == ' ') ++r;
      if (r < n && t[r] == '(') {
        size_t a = r + 1, b = a;
        while (b < n && b - a <= 5 && is_digit(t[b])) ++b;
        if (b > a && b - a <= 5 && b < n && t[b] == ')') {
          size_t c = b + 1;
          if (c < n && is_sep(t[c])) ++c;
          if (c < n && is_digit(t[c])) {
            digits += b - a;
            if (digits > 15) return false;
            ++groups;
            pos = c;
            continue;
          }
        }
      }
    }
    pos = last;
    break;
  }
  if (digits < 8) return false;
  end = pos;
  return true;
}

void scan_phone(std::string_view t, std::vector<Match>& out) {
  size_t pos = 0, p;
  while ((p = find_byte(t, pos, '+')) != npos) {
    size_t e = 0;
    if (try_phone(t, p, e)) {
      out.push_back({p, e});
      pos = e;
    } else {
      pos = p + 1;
    }
  }
}

// ---- aws_access_key_id ----
// One of the prefixes AKIA ASIA ABIA ACCA AGPA AIDA AIPA ANPA ANVA APKA AROA ASCA, then 16 chars
// of [A-Z2-7] (20 in all); not adjacent to [A-Za-z0-9].
void scan_aws_access_key_id(std::string_view t, std::vector<Match>& out) {
  static constexpr char kTails[][4] = {"KIA", "SIA", "BIA", "CCA", "GPA", "IDA",
                                       "IPA", "NPA", "NVA", "PKA", "ROA", "SCA"};
  const size_t n = t.size();
  size_t pos = 0, i;
  while ((i = find_byte(t, pos, 'A')) != npos) {
    pos = i + 1;
    if (i + 20 > n) break;
    bool ok = false;
    for (const auto& tail : kTails) {
      if (t[i + 1] == tail[0] && t[i + 2] == tail[1] && t[i + 3] == tail[2]) {
        ok = true;
        break;
      }
    }
    if (!ok) continue;
    for (size_t k = i + 4; k < i + 20 && ok; ++k) ok = is(t[k], kB32);
    if (!ok || (i + 20 < n && is(t[i + 20], kAlnum)) || glued_before(t, i, kAlnum)) continue;
    out.push_back({i, i + 20});
    pos = i + 20;
  }
}

// ---- aws_secret_access_key (heuristic) ----
// Exactly 40 chars of [A-Za-z0-9/+], not adjacent to [A-Za-z0-9/+] and not followed by '='
// (base64 padding: the tail of a longer blob), with at least one digit, one lowercase and one
// uppercase letter, and not made of hex digits only (40-char hex hashes). A '=' before is
// allowed: `aws_secret_access_key=wJalr...` is the usual way it is written.
// Heuristic: any such 40-char token (e.g. some base64 blobs or paths) matches.
void scan_aws_secret_access_key(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  for_each_run(t, kB64, 40, [&](size_t rs, size_t re) {
    rs += escape_len_at(t, rs, re);  // `\nwJalr...`: the n belongs to the escape
    if (re - rs != 40) return;
    if (re < n && t[re] == '=') return;
    uint16_t seen = 0;
    bool all_hex = true;
    for (size_t k = rs; k < re; ++k) {
      seen |= kClass[static_cast<unsigned char>(t[k])];
      all_hex = all_hex && is_hex(t[k]);
    }
    if ((seen & kDigit) && (seen & kLower) && (seen & kUpper) && !all_hex) {
      out.push_back({rs, re});
    }
  });
}

// ---- jwt ----
// Three base64url segments ([A-Za-z0-9_-]) joined by '.': header and payload non-empty and both
// starting with "eyJ" (base64 of `{"`), signature possibly empty (alg none). Not preceded by
// [A-Za-z0-9_.-]; not followed by [A-Za-z0-9_-], nor by '.' + base64url char (a 4th segment).
// (A '.' followed by anything else, e.g. a sentence's final period, may follow.)
void scan_jwt(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  size_t pos = 0, j;
  auto seg = [&](size_t k) {
    while (k < n && is(t[k], kB64Url)) ++k;
    return k;
  };
  while ((j = find_byte(t, pos, 'J')) != npos) {
    pos = j + 1;
    if (j < 2 || t[j - 2] != 'e' || t[j - 1] != 'y') continue;
    const size_t s = j - 2;
    if (glued_before(t, s, kB64Url) || (s > 0 && t[s - 1] == '.')) continue;
    size_t k = seg(j + 1);
    if (k + 3 >= n || t[k] != '.' || t[k + 1] != 'e' || t[k + 2] != 'y' || t[k + 3] != 'J') {
      continue;
    }
    k = seg(k + 4);
    if (k >= n || t[k] != '.') continue;
    k = seg(k + 1);
    if (k + 1 < n && t[k] == '.' && is(t[k + 1], kB64Url)) continue;
    out.push_back({s, k});
    pos = k;
  }
}

// ---- bearer_token ----
// "Bearer" in any case, not preceded by a letter, then one or more spaces, then a token of
// [A-Za-z0-9._~+/=-]{8,} (maximal). The match is the token only.
void scan_bearer_token(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  size_t pos = 0, i;
  // Prefilter: 'b'/'B' with 'r'/'R' 5 bytes later and ' ' 6 bytes later.
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    const __m128i m20 = _mm_set1_epi8(0x20);
    auto eq = [&](char c) {
      const __m128i w = _mm_set1_epi8(c);
      return bits32(_mm_cmpeq_epi8(_mm_or_si128(lo, m20), w),
                    _mm_cmpeq_epi8(_mm_or_si128(hi, m20), w));
    };
    const __m128i sp = _mm_set1_epi8(' ');
    const uint32_t space = bits32(_mm_cmpeq_epi8(lo, sp), _mm_cmpeq_epi8(hi, sp));
    return (eq('b') >> 1) & (eq('r') >> 6) & (space >> 7);
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  auto scalar = [&](size_t p) {
    return p + 7 <= n && (static_cast<unsigned char>(t[p]) | 0x20) == 'b' &&
           (static_cast<unsigned char>(t[p + 5]) | 0x20) == 'r' && t[p + 6] == ' ';
  };
  while ((i = find_pattern<25>(t, pos, simd, scalar)) != npos) {
    pos = i + 1;
    if (i + 7 >= n) break;
    bool ok = true;
    for (size_t k = 1; k < 6 && ok; ++k) {
      ok = (static_cast<unsigned char>(t[i + k]) | 0x20) == static_cast<unsigned char>("bearer"[k]);
    }
    if (!ok || t[i + 6] != ' ' || glued_before(t, i, kAlpha)) continue;
    size_t ts = i + 6;
    while (ts < n && t[ts] == ' ') ++ts;
    size_t te = ts;
    while (te < n && is(t[te], kBearerTok)) ++te;
    if (te - ts < 8) continue;
    out.push_back({ts, te});
    pos = te;
  }
}

// ---- us_ssn ----
// AAA-GG-SSSS (or AAA GG SSSS: one separator kind), area not 000, 666 or 900-999, group not 00,
// serial not 0000. Not preceded/followed by a digit, nor by a '-' (or the number's own
// separator) that is itself preceded/followed by a digit.
void scan_us_ssn(std::string_view t, std::vector<Match>& out) {
  const size_t n = t.size();
  auto d = [&](size_t k) { return unsigned(t[k] - '0'); };
  auto simd = [](auto lo, auto hi) -> uint32_t {
#if defined(__SSE2__)
    const uint32_t g = digit_bits(lo, hi), s = sep_bits(lo, hi);
    return ~g & (g >> 1) & (g >> 2) & (g >> 3) & (s >> 4) & (g >> 5) & (g >> 6) & (s >> 7) &
           (g >> 8) & (g >> 9) & (g >> 10) & (g >> 11);
#else
    (void)lo, (void)hi;
    return 0;
#endif
  };
  // ddd?dd?dddd, ? = one separator kind, not preceded by a digit
  auto scalar = [&](size_t k) {
    if (k + 11 > n || (k > 0 && is_digit(t[k - 1]))) return false;
    const char s = t[k + 3];
    return (s == '-' || s == ' ') && t[k + 6] == s && is_digit(t[k]) && is_digit(t[k + 1]) &&
           is_digit(t[k + 2]) && is_digit(t[k + 4]) && is_digit(t[k + 5]) && is_digit(t[k + 7]) &&
           is_digit(t[k + 8]) && is_digit(t[k + 9]) && is_digit(t[k + 10]);
  };
  size_t pos = 0, k;
  while ((k = find_pattern<21>(t, pos, simd, scalar)) != npos) {
    pos = k + 1;
    if (!scalar(k)) continue;  // the SIMD mask does not compare the two separators
    const char s = t[k + 3];
    const unsigned area = d(k) * 100 + d(k + 1) * 10 + d(k + 2);
    const unsigned group = d(k + 4) * 10 + d(k + 5);
    const unsigned serial = d(k + 7) * 1000 + d(k + 8) * 100 + d(k + 9) * 10 + d(k + 10);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) continue;
    const size_t e = k + 11;
    if (e < n) {
      const char c = t[e];
      if (is_digit(c) || ((c == '-' || c == s) && e + 1 < n && is_digit(t[e + 1]))) continue;
    }
    if (k >= 2) {
      const char c = t[k - 1];
      if ((c == '-' || c == s) && is_digit(t[k - 2])) continue;
    }
    out.push_back({k, e});
    pos = e;
  }
}

static_assert(static_cast<size_t>(Detector::kUsSsn) + 1 == kDetectorCount);
constexpr const char* kNames[kDetectorCount] = {
    "email",
    "ipv4",
    "ipv6",
    "credit_card",
    "iban",
    "phone",
    "aws_access_key_id",
    "aws_secret_access_key",
    "jwt",
    "bearer_token",
    "us_ssn",
};

}  // namespace

std::optional<Detector> detector_from_name(std::string_view name) {
  for (size_t i = 0; i < kDetectorCount; ++i) {
    if (name == kNames[i]) return static_cast<Detector>(i);
  }
  return std::nullopt;
}

const char* detector_name(Detector d) {
  const auto i = static_cast<size_t>(d);
  return i < kDetectorCount ? kNames[i] : "unknown";
}

void find_matches(Detector d, std::string_view text, std::vector<Match>& out) {
  switch (d) {
    case Detector::kEmail:
      return scan_email(text, out);
    case Detector::kIpv4:
      return scan_ipv4(text, out);
    case Detector::kIpv6:
      return scan_ipv6(text, out);
    case Detector::kCreditCard:
      return scan_credit_card(text, out);
    case Detector::kIban:
      return scan_iban(text, out);
    case Detector::kPhone:
      return scan_phone(text, out);
    case Detector::kAwsAccessKeyId:
      return scan_aws_access_key_id(text, out);
    case Detector::kAwsSecretAccessKey:
      return scan_aws_secret_access_key(text, out);
    case Detector::kJwt:
      return scan_jwt(text, out);
    case Detector::kBearerToken:
      return scan_bearer_token(text, out);
    case Detector::kUsSsn:
      return scan_us_ssn(text, out);
  }
}

}  // namespace logship::redact
