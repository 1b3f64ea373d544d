#include "agent/transform/event_view.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "agent/transform/json_edit.h"

namespace logship::transform {

namespace {
bool path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '@' || c == '$';
}
void append_pointer_token(std::string& ptr, std::string_view key) {
  ptr.push_back('/');
  for (char c : key) {
    if (c == '~')
      ptr += "~0";
    else if (c == '/')
      ptr += "~1";
    else
      ptr.push_back(c);
  }
}
}  // namespace

size_t parse_field_path(std::string_view s, FieldPath& out, std::string& error) {
  out = FieldPath{};
  if (s.empty() || s[0] != '.') {
    error = "a field path starts with `.` (`.a.b`, `.a[0]`)";
    return 0;
  }
  size_t i = 0;
  bool first = true;
  while (i < s.size()) {
    if (s[i] == '.') {
      size_t start = i + 1;
      if (start < s.size() && s[start] == '"') {
        size_t j = start + 1;
        std::string key;
        while (j < s.size() && s[j] != '"') {
          if (s[j] == '\\' && j + 1 < s.size()) ++j;
          key.push_back(s[j++]);
        }
        if (j >= s.size()) {
          error = "unterminated quoted key in field path";
          return 0;
        }
        out.steps.push_back({key, 0, false});
        i = j + 1;
      } else {
        size_t j = start;
        while (j < s.size() && path_char(s[j])) ++j;
        if (j == start) {
          if (first && (j >= s.size() || s[j] != '[')) {
            i = j;  // `.` alone: the whole event
            first = false;
            break;
          }
          if (!first || j >= s.size() || s[j] != '[') {
            error = "empty key in field path; expected `.name`";
            return 0;
          }
          i = j;
        } else {
          out.steps.push_back({std::string(s.substr(start, j - start)), 0, false});
          i = j;
        }
      }
      first = false;
    } else if (s[i] == '[' && !first) {
      size_t j = i + 1;
      size_t v = 0;
      size_t digits = 0;
      while (j < s.size() && s[j] >= '0' && s[j] <= '9' && digits < 9) {
        v = v * 10 + static_cast<size_t>(s[j] - '0');
        ++j;
        ++digits;
      }
      if (digits == 0 || j >= s.size() || s[j] != ']') {
        error = "invalid array index in field path; expected `[<number>]`";
        return 0;
      }
      out.steps.push_back({std::string(), v, true});
      i = j + 1;
    } else {
      break;
    }
  }
  for (const auto& st : out.steps) {
    if (st.is_index)
      append_pointer_token(out.pointer, std::to_string(st.index));
    else
      append_pointer_token(out.pointer, st.key);
  }
  out.text = std::string(s.substr(0, i));
  return i;
}

std::string Value::render() const {
  switch (kind) {
    case Kind::kString:
      return s;
    case Kind::kOther:
      return s;
    case Kind::kBool:
      return b ? "true" : "false";
    case Kind::kNumber:
      if (std::isfinite(n) && n == std::floor(n) && std::fabs(n) < 9.007199254740992e15)
        return fmt::format("{}", static_cast<int64_t>(n));
      return fmt::format("{}", n);
    case Kind::kNull:
    case Kind::kAbsent:
      return std::string();
  }
  return std::string();
}

bool EventView::maybe_json() const {
  if (event_.flags & Event::kJsonValue) return true;
  std::string_view t = message();
  for (char c : t) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

bool EventView::parse() {
  if (state_ == State::kParsed) return true;
  if (state_ == State::kNotJson) return false;
  state_ = State::kNotJson;
  if (!maybe_json()) return false;
  std::string_view t = message();
  auto& buf = scratch_.padded;
  buf.resize(t.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buf.data(), t.data(), t.size());
  if (scratch_.parser.iterate(buf.data(), t.size(), buf.size()).get(doc_)) return false;
  state_ = State::kParsed;
  return true;
}

Value EventView::field(const FieldPath& path) {
  for (const auto& [ptr, v] : cache_)
    if (ptr == &path) return v;
  Value v = lookup(path);
  if (cache_.size() < 16) cache_.emplace_back(&path, v);
  return v;
}

Value EventView::lookup(const FieldPath& path) {
  if (!parse()) return Value::absent();
  // After a failed lookup simdjson's document is not usable again (a second at_pointer on it
  // crashed): the next lookup iterates the text again.
  auto failed = [this] {
    state_ = State::kUnparsed;
    return Value::absent();
  };
  simdjson::ondemand::value v;
  Value out;
  if (path.pointer.empty()) {
    // The whole event: only a scalar document has a simple value.
    simdjson::ondemand::json_type t;
    if (doc_.rewind(), doc_.type().get(t)) return failed();
    switch (t) {
      case simdjson::ondemand::json_type::string: {
        std::string_view s;
        if (doc_.get_string().get(s)) return failed();
        return Value::string(s);
      }
      case simdjson::ondemand::json_type::number: {
        double d;
        if (doc_.get_double().get(d)) return failed();
        return Value::number(d);
      }
      case simdjson::ondemand::json_type::boolean: {
        bool b;
        if (doc_.get_bool().get(b)) return failed();
        return Value::boolean(b);
      }
      case simdjson::ondemand::json_type::null:
        out.kind = Value::Kind::kNull;
        return out;
      default:
        out.kind = Value::Kind::kOther;
        out.s = std::string(message());
        return out;
    }
  }
  if (doc_.at_pointer(path.pointer).get(v)) return failed();
  simdjson::ondemand::json_type t;
  if (v.type().get(t)) return failed();
  switch (t) {
    case simdjson::ondemand::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s)) return failed();
      return Value::string(s);
    }
    case simdjson::ondemand::json_type::number: {
      double d;
      if (v.get_double().get(d)) return failed();
      return Value::number(d);
    }
    case simdjson::ondemand::json_type::boolean: {
      bool b;
      if (v.get_bool().get(b)) return failed();
      return Value::boolean(b);
    }
    case simdjson::ondemand::json_type::null:
      out.kind = Value::Kind::kNull;
      return out;
    case simdjson::ondemand::json_type::object:
    case simdjson::ondemand::json_type::array: {
      out.kind = Value::Kind::kOther;
      Span sp;
      if (json_find(message(), path, sp))
        out.s = std::string(message().substr(sp.begin, sp.end - sp.begin));
      return out;
    }
  }
  return out;
}

}  // namespace logship::transform
