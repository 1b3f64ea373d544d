// `redact`: personal data found by the built-in detectors (detectors.h) or user RE2 patterns is
// masked, replaced by a keyed pseudonym (HMAC-SHA256), or its field or event dropped, before
// the event leaves the host.
//
// Scope: a rule without `fields` scans the whole event: the text of a plain event, or every
// string value (decoded from its JSON escapes) and number of a JSON event, whose result is
// re-encoded so the event stays valid JSON (a number that is wholly a match becomes a string).
// A rule with `fields` scans only those JSON fields (all the scalars inside an object or array
// field). Rules apply in order, each to the output of the one before.
#include <openssl/hmac.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <re2/re2.h>

#include "agent/config/config.h"
#include "agent/core/json_escape.h"
#include "agent/core/secret.h"
#include "agent/observe/metrics.h"
#include "agent/pipeline/registry.h"
#include "agent/transform/batch_builder.h"
#include "agent/transform/json_edit.h"
#include "plugins/transforms/redact/detectors.h"

namespace logship {
namespace {

using transform::Span;

enum class Action : uint8_t { kMask, kHash, kDropField, kDropEvent };

struct HashConfig {
  std::shared_ptr<Secret> key;
  std::string prefix;
  size_t length = 16;
};

struct Rule {
  std::vector<redact::Detector> builtins;
  std::vector<std::unique_ptr<RE2>> regexes;
  std::vector<transform::FieldPath> fields;
  Action action = Action::kMask;
  std::string mask_with = "[REDACTED]";
  size_t keep_last = 0;
  // Counters: one per built-in detector of the rule, then one for its regexes.
  std::vector<Counter*> builtin_counters;
  Counter* regex_counter = nullptr;
};

struct Found {
  size_t begin, end;
  Counter* counter;
};

size_t last_chars_start(std::string_view s, size_t n) {
  // The start of the last `n` UTF-8 characters of `s`.
  size_t i = s.size();
  while (n > 0 && i > 0) {
    --i;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    --n;
  }
  return i;
}

class RedactTransform final : public Transform {
 public:
  RedactTransform(std::vector<Rule> rules, HashConfig hash, const ComponentContext& ctx)
      : rules_(std::move(rules)),
        hash_(std::move(hash)),
        metrics_(ctx.id, ctx.type, "transform"),
        redacted_(metrics_.dropped("redacted")) {}

  void apply(const BatchPtr& in, std::vector<BatchPtr>& out) override {
    const EventBatch& b = *in;
    if (hash_.key) key_ = hash_.key->value();  // re-read on SIGHUP
    std::unique_ptr<transform::BatchBuilder> bb;
    size_t dropped = 0;
    std::string text;
    for (size_t i = 0; i < b.size(); ++i) {
      const Event& e = b.events()[i];
      std::string_view original = b.text(e);
      text.assign(original);
      bool drop = false, changed = false;
      // JSON by its flag or its first character; one that does not parse is scanned as text.
      bool json = looks_json(e, original);
      for (const Rule& r : rules_) {
        if (apply_rule(r, json, text, drop)) changed = true;
        if (drop) break;
      }
      if (drop) {
        ++dropped;
        if (!bb) start(bb, b, i);
        continue;
      }
      if (changed && !bb) start(bb, b, i);
      if (bb) {
        std::string_view tv = text;
        bb->add(e, changed ? &tv : nullptr);
      }
    }
    redacted_.inc(dropped);
    if (!bb) {
      out[0] = in;
      return;
    }
    if (bb->batch().empty()) return;
    out[0] = bb->finish();
  }

 private:
  // The builder, with the events before `upto` copied unchanged.
  static void start(std::unique_ptr<transform::BatchBuilder>& bb, const EventBatch& b,
                    size_t upto) {
    bb = std::make_unique<transform::BatchBuilder>(b);
    for (size_t k = 0; k < upto; ++k) bb->add(b.events()[k]);
  }
  static bool looks_json(const Event& e, std::string_view t) {
    if (e.flags & Event::kJsonValue) return true;
    for (char c : t) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
      return c == '{' || c == '[';
    }
    return false;
  }

  // Matches of the rule in `s`: sorted, without overlaps (the earlier, then the longer wins).
  void find(const Rule& r, std::string_view s, std::vector<Found>& found) {
    found.clear();
    for (size_t d = 0; d < r.builtins.size(); ++d) {
      matches_.clear();
      redact::find_matches(r.builtins[d], s, matches_);
      for (const auto& m : matches_) found.push_back({m.begin, m.end, r.builtin_counters[d]});
    }
    for (const auto& re : r.regexes) {
      re2::StringPiece input(s.data(), s.size());
      size_t pos = 0;
      re2::StringPiece m;
      while (pos <= s.size() && re->Match(input, pos, s.size(), RE2::UNANCHORED, &m, 1)) {
        size_t b = static_cast<size_t>(m.data() - s.data());
        size_t e = b + m.size();
        if (e > b) found.push_back({b, e, r.regex_counter});
        pos = e > b ? e : b + 1;
      }
    }
    if (found.size() > 1) {
      std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
      });
      size_t w = 0;
      for (size_t k = 0; k < found.size(); ++k)
        if (w == 0 || found[k].begin >= found[w - 1].end) found[w++] = found[k];
      found.resize(w);
    }
  }

  std::string replacement(const Rule& r, std::string_view match) {
    if (r.action == Action::kHash) {
      unsigned char mac[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(match.data()), match.size(), mac, &len);
      static const char* kHex = "0123456789abcdef";
      std::string out = hash_.prefix;
      for (size_t k = 0; k < hash_.length; ++k) {
        unsigned char byte = mac[k / 2];
        out.push_back(kHex[k % 2 == 0 ? byte >> 4 : byte & 15]);
      }
      return out;
    }
    std::string out = r.mask_with;
    if (r.keep_last > 0) out.append(match.substr(last_chars_start(match, r.keep_last)));
    return out;
  }

  // Applies `r` to the plain string `s` in place (mask, hash), or only detects (drop actions).
  // Returns the number of matches.
  size_t on_string(const Rule& r, std::string& s, bool whole_token_only = false) {
    find(r, s, found_);
    if (whole_token_only) {
      auto it = std::remove_if(found_.begin(), found_.end(),
                               [&](const Found& f) { return f.begin != 0 || f.end != s.size(); });
      found_.erase(it, found_.end());
    }
    for (const auto& f : found_) f.counter->inc();
    if (found_.empty() || r.action == Action::kDropEvent || r.action == Action::kDropField)
      return found_.size();
    std::string out;
    size_t at = 0;
    for (const auto& f : found_) {
      out.append(s, at, f.begin - at);
      out += replacement(r, std::string_view(s).substr(f.begin, f.end - f.begin));
      at = f.end;
    }
    out.append(s, at, std::string::npos);
    s.swap(out);
    return found_.size();
  }

  // Rewrites every string and number of the JSON value `doc` with `r`. Returns the matches.
  // Sets `invalid` (and returns 0) when `doc` is not JSON.
  size_t on_json(const Rule& r, std::string_view doc, std::string& out, bool& invalid) {
    if (r.regexes.empty() && doc.find('\\') == std::string_view::npos)
      return on_raw_json(r, doc, out, invalid);
    spans_.clear();
    if (!transform::json_for_each_scalar(doc, [&](Span sp, bool is_string) {
          spans_.push_back({sp.begin, sp.end, is_string});
        })) {
      invalid = true;
      return 0;
    }
    size_t n = 0;
    out.clear();
    size_t at = 0;
    std::string dec;
    for (const auto& sp : spans_) {
      std::string_view tok = doc.substr(sp.begin, sp.end - sp.begin);
      const bool is_string = sp.is_string;
      if (is_string) {
        if (!transform::json_decode_string(tok, dec)) continue;
      } else {
        dec.assign(tok);
      }
      size_t k = on_string(r, dec, !is_string);
      if (k == 0) continue;
      n += k;
      if (r.action == Action::kDropEvent || r.action == Action::kDropField) continue;
      out.append(doc.substr(at, sp.begin - at));
      json_quote_append(out, dec);
      at = sp.end;
    }
    out.append(doc.substr(at));
    return n;
  }

  // on_json() for a document without escapes and a rule without user patterns (the common
  // case, as fast as the detectors): its strings read as they are decoded, and no built-in
  // detector matches across a `"`, so the detectors scan the raw text once; a match counts when
  // it lies inside a string value or is a whole number, never in a key.
  size_t on_raw_json(const Rule& r, std::string_view doc, std::string& out, bool& invalid) {
    find(r, doc, found_);
    if (found_.empty()) return 0;
    spans_.clear();
    if (!transform::json_for_each_scalar(doc, [&](Span sp, bool is_string) {
          spans_.push_back({sp.begin, sp.end, is_string});
        })) {
      invalid = true;
      return 0;
    }
    size_t ti = 0, w = 0;
    accepted_.clear();
    for (const auto& f : found_) {
      while (ti < spans_.size() && spans_[ti].end <= f.begin) ++ti;
      if (ti == spans_.size()) break;
      const Token& t = spans_[ti];
      bool ok = t.is_string ? (f.begin > t.begin && f.end < t.end)
                            : (f.begin == t.begin && f.end == t.end);
      if (!ok) continue;
      f.counter->inc();
      found_[w++] = f;
      accepted_.push_back(ti);
    }
    found_.resize(w);
    if (w == 0 || r.action == Action::kDropEvent || r.action == Action::kDropField) return w;
    out.clear();
    size_t at = 0;
    for (size_t k = 0; k < w; ++k) {
      const Found& f = found_[k];
      const Token& t = spans_[accepted_[k]];
      std::string rep = replacement(r, doc.substr(f.begin, f.end - f.begin));
      if (t.is_string) {
        out.append(doc.substr(at, f.begin - at));
        json_escape_append(out, rep);
        at = f.end;
      } else {
        out.append(doc.substr(at, t.begin - at));
        json_quote_append(out, rep);
        at = t.end;
      }
    }
    out.append(doc.substr(at));
    return w;
  }

  // Applies one rule to the event text. Returns whether the text changed; sets `drop`.
  bool apply_rule(const Rule& r, bool& json, std::string& text, bool& drop) {
    if (r.fields.empty()) {
      size_t n = 0;
      if (json) {
        bool invalid = false;
        n = on_json(r, text, scratch_, invalid);
        if (invalid)
          json = false;  // scanned as text below (and by the next rules)
        else if (n > 0 && r.action != Action::kDropEvent)
          text.swap(scratch_);
      }
      if (!json) n = on_string(r, text);
      if (n > 0 && r.action == Action::kDropEvent) drop = true;
      return n > 0 && r.action != Action::kDropEvent;
    }
    if (!json) return false;  // a field of a plain event is absent
    bool changed = false;
    for (const auto& path : r.fields) {
      Span v;
      if (!transform::json_find(text, path, v)) continue;
      std::string_view value = std::string_view(text).substr(v.begin, v.end - v.begin);
      bool invalid = false;
      size_t n = on_json(r, value, scratch_, invalid);
      if (invalid) {
        json = false;  // the event is not JSON after all: its fields are absent
        return changed;
      }
      if (n == 0) continue;
      if (r.action == Action::kDropEvent) {
        drop = true;
        return changed;
      }
      if (r.action == Action::kDropField) {
        std::string removed;
        if (transform::json_remove(text, path, removed)) {
          text.swap(removed);
          changed = true;
        }
        continue;
      }
      text.replace(v.begin, v.end - v.begin, scratch_);
      changed = true;
    }
    return changed;
  }

  std::vector<Rule> rules_;
  HashConfig hash_;
  ComponentMetrics metrics_;
  Counter& redacted_;
  std::string key_;
  std::vector<redact::Match> matches_;
  std::vector<Found> found_;
  struct Token {
    size_t begin, end;
    bool is_string;
  };
  std::vector<Token> spans_;
  std::vector<size_t> accepted_;
  std::string scratch_;
};

}  // namespace

void register_transforms_redact(Registry& r) {
  r.add_transform(
      "redact", [](ConfigNode& cfg, const ComponentContext& ctx) -> std::unique_ptr<Transform> {
        std::vector<Rule> rules;
        bool hashes = false;
        std::string first_hash_at;  // file:line:col of the first `action: hash`
        static constexpr const char* kNeedsKey =
            ": this rule hashes, so hash.key_file is required (the HMAC-SHA256 key of the "
            "pseudonyms)";
        YAML::Node list = cfg.raw()["rules"];
        cfg.touch("rules");
        auto file = std::make_shared<const std::string>(cfg.file());
        // An error at a list item's position (collected with the others while the load collects).
        auto report_at = [&](const std::string& msg) {
          if (cfg.errors() && cfg.errors()->collecting())
            cfg.errors()->add(msg);
          else
            throw ConfigError(msg);
        };
        if (!list.IsDefined() || list.IsNull()) {
          cfg.error("rules",
                    "rules is required: a list of {match, fields, action, mask_with, keep_last}");
        } else if (!list.IsSequence() || list.size() == 0) {
          cfg.error(
              "rules",
              "rules must be a non-empty list of {match, fields, action, mask_with, keep_last}");
        } else {
          for (size_t i = 0; i < list.size(); ++i) {
            std::string path = fmt::format("{}.rules[{}]", cfg.path(), i);
            if (!list[i].IsMap()) {
              ConfigNode(list[i], file, path, cfg.errors())
                  .fail("", "a rule must be a mapping with match and action");
            }
            ConfigNode rn(list[i], file, path, cfg.errors());
            Rule rule;
            std::string action =
                rn.choice("action", "mask", {"mask", "hash", "drop_field", "drop_event"});
            rule.action = action == "hash"         ? Action::kHash
                          : action == "drop_field" ? Action::kDropField
                          : action == "drop_event" ? Action::kDropEvent
                                                   : Action::kMask;
            if (rule.action == Action::kHash && !hashes) first_hash_at = rn.where("action");
            hashes = hashes || rule.action == Action::kHash;
            rule.mask_with = rn.str("mask_with", "[REDACTED]");
            rule.keep_last = static_cast<size_t>(rn.integer("keep_last", 0, 0, 1024));
            if (rn.has("fields")) {
              for (const auto& f : rn.list("fields")) {
                transform::FieldPath p;
                std::string err;
                size_t n = transform::parse_field_path(f, p, err);
                if (n == 0 || n != f.size() || p.steps.empty())
                  rn.error("fields",
                           fmt::format("invalid field path \"{}\"; expected `.a.b` or `.a[0]`", f));
                else
                  rule.fields.push_back(std::move(p));
              }
            }
            if (rule.action == Action::kDropField && rule.fields.empty() && !rn.has_error("fields"))
              rn.error("action",
                       "action drop_field needs `fields`: the JSON fields to drop when they match");
            Labels base{{"component_id", ctx.id}, {"rule", std::to_string(i)}, {"action", action}};
            auto counter = [&](const std::string& detector) {
              Labels l = base;
              l.emplace_back("detector", detector);
              return &metrics().counter("logship_redactions_total",
                                        "Matches redacted, by rule, detector and action", l);
            };
            YAML::Node match = list[i]["match"];
            rn.touch("match");
            if (!match.IsDefined() || match.IsNull()) {
              rn.error("match",
                       "match is required: built-in detector names and/or {regex: \"RE2\"}");
            } else {
              std::vector<YAML::Node> items;
              if (match.IsSequence())
                for (const auto& m : match) items.push_back(m);
              else
                items.push_back(match);
              for (const auto& m : items) {
                if (m.IsScalar()) {
                  auto d = redact::detector_from_name(m.Scalar());
                  if (!d) {
                    std::vector<std::string> names;
                    for (size_t k = 0; k < redact::kDetectorCount; ++k)
                      names.push_back(redact::detector_name(static_cast<redact::Detector>(k)));
                    report_at(rn.where_node(m) +
                              fmt::format(": unknown detector \"{}\"; expected one of: {}, or "
                                          "{{regex: \"RE2\"}}",
                                          m.Scalar(), fmt::join(names, ", ")));
                    continue;
                  }
                  rule.builtins.push_back(*d);
                  rule.builtin_counters.push_back(counter(m.Scalar()));
                } else if (m.IsMap() && m["regex"].IsDefined() && m["regex"].IsScalar() &&
                           m.size() == 1) {
                  RE2::Options o;
                  o.set_log_errors(false);
                  o.set_max_mem(8 << 20);
                  auto re = std::make_unique<RE2>(m["regex"].Scalar(), o);
                  if (!re->ok()) {
                    report_at(rn.where_node(m["regex"]) +
                              fmt::format(": invalid RE2 pattern: {}", re->error()));
                    continue;
                  }
                  rule.regexes.push_back(std::move(re));
                  rule.regex_counter = counter("regex");
                } else {
                  report_at(rn.where_node(m) +
                            ": a match item is a detector name or {regex: \"RE2\"}");
                }
              }
            }
            rn.finish();
            rules.push_back(std::move(rule));
          }
        }
        HashConfig hash;
        if (hashes && (!cfg.has("hash") || !cfg.raw()["hash"].IsMap() ||
                       (!cfg.raw()["hash"]["key_file"].IsDefined() &&
                        !cfg.raw()["hash"]["key"].IsDefined()))) {
          report_at(first_hash_at + kNeedsKey);
          if (auto h = cfg.map("hash")) h->touch("key");
        }
        if (auto h = cfg.map("hash")) {
          hash.key = h->secret("key", false);
          hash.prefix = h->str("prefix", "");
          hash.length = static_cast<size_t>(h->integer("length", 16, 8, 64));
          h->finish();
        }
        cfg.throw_if_errors();
        if (hashes && !hash.key) throw ConfigError(first_hash_at + kNeedsKey);
        return std::make_unique<RedactTransform>(std::move(rules), std::move(hash), ctx);
      });
}

}  // namespace logship
