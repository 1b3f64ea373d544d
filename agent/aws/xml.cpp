#include "agent/aws/xml.h"

#include <cstdint>

namespace logship::aws {
namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// Position just after `<tag` when followed by '>', '/', or whitespace; npos when not found.
struct Found {
  size_t open = std::string_view::npos;   ///< index of '<'
  size_t inner = std::string_view::npos;  ///< first byte of the content
  size_t end = std::string_view::npos;    ///< one past the content
  size_t after = std::string_view::npos;  ///< one past the closing tag
};

Found find_element(std::string_view doc, std::string_view tag, size_t from) {
  // Built with reserve + append: `"<" + std::string(tag)` trips GCC 12's -Wrestrict false
  // positive at -O3 (GCC bug 105329).
  std::string open;
  open.reserve(tag.size() + 1);
  open.push_back('<');
  open.append(tag);
  while (from < doc.size()) {
    size_t p = doc.find(open, from);
    if (p == std::string_view::npos) return {};
    size_t q = p + open.size();
    if (q >= doc.size()) return {};
    char c = doc[q];
    if (c != '>' && c != '/' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      from = q;
      continue;
    }
    size_t gt = doc.find('>', q);
    if (gt == std::string_view::npos) return {};
    Found f;
    f.open = p;
    if (doc[gt - 1] == '/') {  // <Tag/>
      f.inner = f.end = gt + 1;
      f.after = gt + 1;
      return f;
    }
    f.inner = gt + 1;
    std::string close = "</" + std::string(tag) + ">";
    size_t e = doc.find(close, f.inner);
    if (e == std::string_view::npos) return {};
    f.end = e;
    f.after = e + close.size();
    return f;
  }
  return {};
}

}  // namespace

std::string xml_unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") {
      out += '&';
    } else if (ent == "lt") {
      out += '<';
    } else if (ent == "gt") {
      out += '>';
    } else if (ent == "quot") {
      out += '"';
    } else if (ent == "apos") {
      out += '\'';
    } else if (ent.size() > 1 && ent[0] == '#') {
      uint32_t cp = 0;
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      bool ok = ent.size() > (hex ? 2u : 1u);
      for (size_t k = hex ? 2 : 1; k < ent.size() && ok; ++k) {
        char c = ent[k];
        int d = (c >= '0' && c <= '9')          ? c - '0'
                : (hex && c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (hex && c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                : -1;
        if (d < 0 || cp > 0x10FFFF) ok = false;
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      if (!ok || cp > 0x10FFFF) {
        out.append(s.substr(i, semi - i + 1));
      } else {
        append_utf8(out, cp);
      }
    } else {
      out.append(s.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

std::optional<std::string_view> xml_element(std::string_view doc, std::string_view tag,
                                            size_t from) {
  Found f = find_element(doc, tag, from);
  if (f.open == std::string_view::npos) return std::nullopt;
  return doc.substr(f.inner, f.end - f.inner);
}

std::optional<std::string> xml_text(std::string_view doc, std::string_view tag) {
  auto e = xml_element(doc, tag);
  if (!e) return std::nullopt;
  return xml_unescape(*e);
}

std::vector<std::string_view> xml_elements(std::string_view doc, std::string_view tag) {
  std::vector<std::string_view> out;
  size_t from = 0;
  for (;;) {
    Found f = find_element(doc, tag, from);
    if (f.open == std::string_view::npos) break;
    out.push_back(doc.substr(f.inner, f.end - f.inner));
    from = f.after;
  }
  return out;
}

}  // namespace logship::aws
