#include "agent/transform/json_edit.h"

#include <cstdint>
#include <vector>

#include "agent/core/json_escape.h"

namespace logship::transform {

namespace {

constexpr int kMaxDepth = 256;

struct Scanner {
  std::string_view s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool string() {  // at '"'
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        ++i;
        return true;
      }
      if (c == '\\') {
        if (i + 1 >= s.size()) return false;
        i += 2;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      ++i;
    }
    return false;
  }
  bool scalar() {  // number, true, false, null
    size_t st = i;
    while (i < s.size()) {
      char c = s[i];
      if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' ||
          c == 'E')
        ++i;
      else
        break;
    }
    return i > st;
  }
  bool value(int depth, const std::function<void(Span, bool)>* fn) {
    if (depth > kMaxDepth) return false;
    ws();
    if (i >= s.size()) return false;
    char c = s[i];
    if (c == '{') {
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') {
        ++i;
        return true;
      }
      for (;;) {
        ws();
        if (!string()) return false;
        ws();
        if (i >= s.size() || s[i] != ':') return false;
        ++i;
        if (!value(depth + 1, fn)) return false;
        ws();
        if (i >= s.size()) return false;
        if (s[i] == ',') {
          ++i;
          continue;
        }
        if (s[i] == '}') {
          ++i;
          return true;
        }
        return false;
      }
    }
    if (c == '[') {
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') {
        ++i;
        return true;
      }
      for (;;) {
        if (!value(depth + 1, fn)) return false;
        ws();
        if (i >= s.size()) return false;
        if (s[i] == ',') {
          ++i;
          continue;
        }
        if (s[i] == ']') {
          ++i;
          return true;
        }
        return false;
      }
    }
    if (c == '"') {
      size_t st = i;
      if (!string()) return false;
      if (fn) (*fn)(Span{st, i}, true);
      return true;
    }
    size_t st = i;
    if (!scalar()) return false;
    if (fn && ((s[st] >= '0' && s[st] <= '9') || s[st] == '-')) (*fn)(Span{st, i}, false);
    return true;
  }
};

bool key_equals(std::string_view token, std::string_view key) {
  std::string_view inner = token.substr(1, token.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == key;
  std::string dec;
  return json_decode_string(token, dec) && dec == key;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool hex4(std::string_view s, size_t i, uint32_t& v) {
  if (i + 4 > s.size()) return false;
  v = 0;
  for (size_t k = 0; k < 4; ++k) {
    char c = s[i + k];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= static_cast<uint32_t>(c - 'A' + 10);
    else
      return false;
  }
  return true;
}

// Finds the step's value inside the container starting at sc.i. For an object member also the
// member's erase span.
bool find_step(Scanner& sc, const FieldPath::Step& step, Span& value, Span* member) {
  sc.ws();
  if (sc.i >= sc.s.size()) return false;
  if (!step.is_index) {
    if (sc.s[sc.i] != '{') return false;
    ++sc.i;
    sc.ws();
    if (sc.i < sc.s.size() && sc.s[sc.i] == '}') return false;
    size_t prev_value_end = 0;  // end of the previous member's value (0 = first member)
    for (;;) {
      sc.ws();
      size_t kst = sc.i;
      if (!sc.string()) return false;
      std::string_view key = sc.s.substr(kst, sc.i - kst);
      sc.ws();
      if (sc.i >= sc.s.size() || sc.s[sc.i] != ':') return false;
      ++sc.i;
      sc.ws();
      size_t vst = sc.i;
      if (!sc.value(0, nullptr)) return false;
      size_t vend = sc.i;
      sc.ws();
      bool more = sc.i < sc.s.size() && sc.s[sc.i] == ',';
      if (key_equals(key, step.key)) {
        value = {vst, vend};
        if (member) {
          if (prev_value_end > 0)
            *member = {prev_value_end, vend};  // `, "k": v` after the previous member
          else if (more) {
            size_t j = sc.i + 1;
            while (j < sc.s.size() &&
                   (sc.s[j] == ' ' || sc.s[j] == '\t' || sc.s[j] == '\n' || sc.s[j] == '\r'))
              ++j;
            *member = {kst, j};  // `"k": v, ` before the next member
          } else {
            *member = {kst, vend};
          }
        }
        return true;
      }
      if (sc.i >= sc.s.size()) return false;
      if (sc.s[sc.i] == ',') {
        ++sc.i;
        prev_value_end = vend;
        continue;
      }
      return false;  // '}' (not found) or malformed
    }
  }
  if (sc.s[sc.i] != '[') return false;
  ++sc.i;
  sc.ws();
  if (sc.i < sc.s.size() && sc.s[sc.i] == ']') return false;
  for (size_t k = 0;; ++k) {
    sc.ws();
    size_t vst = sc.i;
    if (!sc.value(0, nullptr)) return false;
    if (k == step.index) {
      value = {vst, sc.i};
      return true;
    }
    sc.ws();
    if (sc.i >= sc.s.size() || sc.s[sc.i] != ',') return false;
    ++sc.i;
  }
}

}  // namespace

bool json_decode_string(std::string_view t, std::string& out) {
  out.clear();
  if (t.size() < 2 || t.front() != '"' || t.back() != '"') return false;
  for (size_t i = 1; i + 1 < t.size(); ++i) {
    char c = t[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= t.size()) return false;
    char e = t[++i];
    switch (e) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '/':
        out.push_back('/');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp;
        if (!hex4(t, i + 1, cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < t.size() && t[i + 1] == '\\' &&
            t[i + 2] == 'u') {
          uint32_t lo;
          if (hex4(t, i + 3, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

bool json_find(std::string_view doc, const FieldPath& path, Span& value, Span* member) {
  Scanner sc{doc, 0};
  if (path.steps.empty()) {
    sc.ws();
    size_t st = sc.i;
    if (!sc.value(0, nullptr)) return false;
    value = {st, sc.i};
    return true;
  }
  Span v{}, m{};
  for (size_t k = 0; k < path.steps.size(); ++k) {
    bool last = k + 1 == path.steps.size();
    if (!find_step(sc, path.steps[k], v, last ? &m : nullptr)) return false;
    sc.i = v.begin;
  }
  value = v;
  if (member) *member = path.steps.back().is_index ? v : m;
  return true;
}

bool json_remove(std::string_view doc, const FieldPath& path, std::string& out) {
  if (path.steps.empty() || path.steps.back().is_index) return false;
  Span v, m;
  if (!json_find(doc, path, v, &m)) return false;
  out.assign(doc.substr(0, m.begin));
  out.append(doc.substr(m.end));
  return true;
}

bool json_set(std::string_view doc, const FieldPath& path, std::string_view json_value,
              std::string& out) {
  if (path.steps.empty()) return false;
  Span v;
  if (json_find(doc, path, v)) {
    out.assign(doc.substr(0, v.begin));
    out.append(json_value);
    out.append(doc.substr(v.end));
    return true;
  }
  // Find the deepest existing object on the path, then insert the rest as nested members.
  size_t have = 0;
  Span container{};
  {
    Scanner sc{doc, 0};
    sc.ws();
    if (sc.i >= doc.size() || doc[sc.i] != '{') return false;
    size_t st = sc.i;
    if (!sc.value(0, nullptr)) return false;
    container = {st, sc.i};
  }
  for (size_t k = 0; k + 1 < path.steps.size(); ++k) {
    if (path.steps[k].is_index) return false;
    FieldPath prefix;
    prefix.steps.assign(path.steps.begin(), path.steps.begin() + static_cast<long>(k) + 1);
    Span pv;
    if (!json_find(doc, prefix, pv)) break;
    if (doc[pv.begin] != '{') return false;
    container = pv;
    have = k + 1;
  }
  for (size_t k = have; k < path.steps.size(); ++k)
    if (path.steps[k].is_index) return false;
  std::string member;
  json_quote_append(member, path.steps[have].key);
  member += ':';
  std::string tail;
  for (size_t k = have + 1; k < path.steps.size(); ++k) {
    member += '{';
    json_quote_append(member, path.steps[k].key);
    member += ':';
    tail += '}';
  }
  member.append(json_value);
  member += tail;
  // Insert before the container's closing brace.
  size_t close = container.end - 1;
  size_t j = container.begin + 1;
  while (j < close && (doc[j] == ' ' || doc[j] == '\t' || doc[j] == '\n' || doc[j] == '\r')) ++j;
  bool empty = j == close;
  out.assign(doc.substr(0, close));
  if (!empty) out += ',';
  out += member;
  out.append(doc.substr(close));
  return true;
}

bool json_for_each_scalar(std::string_view doc, const std::function<void(Span, bool)>& fn) {
  Scanner sc{doc, 0};
  if (!sc.value(0, &fn)) return false;
  sc.ws();
  return sc.i == doc.size();
}

}  // namespace logship::transform
