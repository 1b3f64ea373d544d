#include "agent/transform/condition.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <re2/re2.h>

namespace logship::transform {

// ---- value references ----

size_t ValueRef::parse(std::string_view s, ValueRef& out, std::string& error) {
  out = ValueRef{};
  if (!s.empty() && s[0] == '.') {
    out.kind = Kind::kField;
    return parse_field_path(s, out.path, error);
  }
  if (!s.empty() && s[0] == '%') {
    size_t j = 1;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    std::string_view name = s.substr(1, j - 1);
    static const std::pair<std::string_view, Kind> kNames[] = {
        {"message", Kind::kMessage},       {"host", Kind::kHost},   {"source", Kind::kSource},
        {"sourcetype", Kind::kSourcetype}, {"index", Kind::kIndex}, {"time", Kind::kTime}};
    for (const auto& [n, k] : kNames) {
      if (n == name) {
        out.kind = k;
        return j;
      }
    }
    error = fmt::format(
        "unknown name %{}; expected %message, %host, %source, %sourcetype, %index or %time", name);
    return 0;
  }
  error = "expected a field path (`.a.b`) or a %-name (`%host`)";
  return 0;
}

Value ValueRef::get(EventView& ev) const {
  switch (kind) {
    case Kind::kField:
      return ev.field(path);
    case Kind::kMessage:
      return Value::string(ev.message());
    case Kind::kHost:
      return Value::string(ev.host());
    case Kind::kSource:
      return Value::string(ev.source());
    case Kind::kSourcetype:
      return Value::string(ev.sourcetype());
    case Kind::kIndex:
      return Value::string(ev.index());
    case Kind::kTime:
      return Value::number(ev.time_seconds());
  }
  return Value::absent();
}

// ---- the expression tree ----

enum class Type : uint8_t { kBool, kString, kNumber, kNull, kDynamic };

const char* type_name(Type t) {
  switch (t) {
    case Type::kBool:
      return "a boolean";
    case Type::kString:
      return "a string";
    case Type::kNumber:
      return "a number";
    case Type::kNull:
      return "null";
    case Type::kDynamic:
      return "a field";
  }
  return "?";
}

struct Condition::Node {
  enum class Op : uint8_t {
    kLiteral,
    kRef,
    kAnd,
    kOr,
    kNot,
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kExists,
    kContains,
    kStartsWith,
    kEndsWith,
    kMatches,
    kLower
  };
  Op op = Op::kLiteral;
  Type type = Type::kDynamic;
  Value literal;
  ValueRef ref;
  std::unique_ptr<RE2> re;
  std::vector<std::unique_ptr<Node>> kids;

  Value value(EventView& ev) const {
    switch (op) {
      case Op::kLiteral:
        return literal;
      case Op::kRef:
        return ref.get(ev);
      case Op::kLower: {
        Value v = kids[0]->value(ev);
        if (v.kind != Value::Kind::kString) return Value::absent();
        for (auto& c : v.s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return v;
      }
      default:
        return Value::boolean(truth(ev));
    }
  }

  static bool equal(const Value& a, const Value& b) {
    if (a.kind == Value::Kind::kAbsent || b.kind == Value::Kind::kAbsent) return false;
    if (a.kind != b.kind) return false;
    switch (a.kind) {
      case Value::Kind::kNull:
        return true;
      case Value::Kind::kBool:
        return a.b == b.b;
      case Value::Kind::kNumber:
        return a.n == b.n;
      case Value::Kind::kString:
      case Value::Kind::kOther:
        return a.s == b.s;
      case Value::Kind::kAbsent:
        return false;
    }
    return false;
  }
  // -1, 0, 1; 2 when the two cannot be ordered.
  static int order(const Value& a, const Value& b) {
    if (a.kind == Value::Kind::kNumber && b.kind == Value::Kind::kNumber) {
      if (std::isnan(a.n) || std::isnan(b.n)) return 2;
      return a.n < b.n ? -1 : (a.n > b.n ? 1 : 0);
    }
    if (a.kind == Value::Kind::kString && b.kind == Value::Kind::kString) {
      int c = a.s.compare(b.s);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    return 2;
  }

  bool truth(EventView& ev) const {
    switch (op) {
      case Op::kLiteral:
        return literal.kind == Value::Kind::kBool && literal.b;
      case Op::kRef: {
        Value v = ref.get(ev);
        return v.kind == Value::Kind::kBool && v.b;
      }
      case Op::kAnd:
        return kids[0]->truth(ev) && kids[1]->truth(ev);
      case Op::kOr:
        return kids[0]->truth(ev) || kids[1]->truth(ev);
      case Op::kNot:
        return !kids[0]->truth(ev);
      case Op::kEq:
        return equal(kids[0]->value(ev), kids[1]->value(ev));
      case Op::kNe: {
        Value a = kids[0]->value(ev), b = kids[1]->value(ev);
        if (a.kind == Value::Kind::kAbsent || b.kind == Value::Kind::kAbsent) return true;
        return !equal(a, b);
      }
      case Op::kLt:
        return order(kids[0]->value(ev), kids[1]->value(ev)) == -1;
      case Op::kLe: {
        int o = order(kids[0]->value(ev), kids[1]->value(ev));
        return o == -1 || o == 0;
      }
      case Op::kGt:
        return order(kids[0]->value(ev), kids[1]->value(ev)) == 1;
      case Op::kGe: {
        int o = order(kids[0]->value(ev), kids[1]->value(ev));
        return o == 1 || o == 0;
      }
      case Op::kExists:
        return kids[0]->value(ev).kind != Value::Kind::kAbsent;
      case Op::kContains:
      case Op::kStartsWith:
      case Op::kEndsWith: {
        Value a = kids[0]->value(ev);
        if (a.kind != Value::Kind::kString) return false;
        Value b = kids[1]->value(ev);
        if (b.kind != Value::Kind::kString) return false;
        std::string_view h = a.s, n = b.s;
        if (op == Op::kContains) return h.find(n) != std::string_view::npos;
        if (op == Op::kStartsWith) return h.substr(0, n.size()) == n;
        return h.size() >= n.size() && h.substr(h.size() - n.size()) == n;
      }
      case Op::kMatches: {
        Value a = kids[0]->value(ev);
        if (a.kind != Value::Kind::kString) return false;
        return RE2::PartialMatch(a.s, *re);
      }
      case Op::kLower:
        return false;
    }
    return false;
  }
};

namespace {

struct Token {
  enum class Kind : uint8_t { kEnd, kLParen, kRParen, kComma, kOp, kString, kNumber, kIdent, kRef };
  Kind kind = Kind::kEnd;
  std::string text;  ///< operator, identifier, decoded string
  double number = 0;
  ValueRef ref;
  size_t pos = 0;
};

using NodePtr = std::unique_ptr<Condition::Node>;
using Op = Condition::Node::Op;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  NodePtr parse(ParseError& err) {
    try {
      next();
      NodePtr n = parse_or();
      if (tok_.kind != Token::Kind::kEnd)
        fail(tok_.pos, fmt::format("unexpected {}", describe(tok_)));
      require_bool(*n, 0, "a condition");
      return n;
    } catch (const ParseError& e) {
      err = e;
      return nullptr;
    }
  }

 private:
  [[noreturn]] void fail(size_t pos, std::string msg) { throw ParseError{std::move(msg), pos}; }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Token::Kind::kEnd:
        return "end of condition";
      case Token::Kind::kString:
        return fmt::format("string \"{}\"", t.text);
      case Token::Kind::kNumber:
        return fmt::format("number {}", t.text);
      default:
        return fmt::format("`{}`", t.text);
    }
  }

  void next() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    tok_ = Token{};
    tok_.pos = i_;
    if (i_ >= s_.size()) return;
    char c = s_[i_];
    if (c == '(' || c == ')' || c == ',') {
      tok_.kind = c == '('   ? Token::Kind::kLParen
                  : c == ')' ? Token::Kind::kRParen
                             : Token::Kind::kComma;
      tok_.text = std::string(1, c);
      ++i_;
      return;
    }
    if (c == '=' || c == '!' || c == '<' || c == '>') {
      std::string op(1, c);
      if (i_ + 1 < s_.size() && s_[i_ + 1] == '=') op.push_back('=');
      if (op == "=" || op == "!")
        fail(i_, fmt::format("unknown operator `{}`; expected ==, !=, <, <=, >, >=", op));
      tok_.kind = Token::Kind::kOp;
      tok_.text = op;
      i_ += op.size();
      return;
    }
    if (c == '"') {
      std::string v;
      size_t j = i_ + 1;
      for (;;) {
        if (j >= s_.size()) fail(i_, "unterminated string; expected a closing `\"`");
        char d = s_[j];
        if (d == '"') break;
        if (d == '\\') {
          if (j + 1 >= s_.size()) fail(j, "unterminated string; expected a closing `\"`");
          char e = s_[j + 1];
          switch (e) {
            case '"':
              v.push_back('"');
              break;
            case '\\':
              v.push_back('\\');
              break;
            case 'n':
              v.push_back('\n');
              break;
            case 't':
              v.push_back('\t');
              break;
            case 'r':
              v.push_back('\r');
              break;
            default:
              fail(j,
                   fmt::format(
                       "unknown escape `\\{}` in string; expected \\\", \\\\, \\n, \\t or \\r", e));
          }
          j += 2;
          continue;
        }
        v.push_back(d);
        ++j;
      }
      tok_.kind = Token::Kind::kString;
      tok_.text = std::move(v);
      i_ = j + 1;
      return;
    }
    if ((c >= '0' && c <= '9') ||
        (c == '-' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9')) {
      size_t j = i_ + 1;
      while (j < s_.size() &&
             (std::isdigit(static_cast<unsigned char>(s_[j])) || s_[j] == '.' || s_[j] == 'e' ||
              s_[j] == 'E' ||
              ((s_[j] == '+' || s_[j] == '-') && (s_[j - 1] == 'e' || s_[j - 1] == 'E'))))
        ++j;
      std::string text(s_.substr(i_, j - i_));
      double d = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
      if (ec != std::errc() || p != text.data() + text.size())
        fail(i_, fmt::format("invalid number {}", text));
      tok_.kind = Token::Kind::kNumber;
      tok_.number = d;
      tok_.text = text;
      i_ = j;
      return;
    }
    if (c == '.' || c == '%') {
      std::string err;
      size_t n = ValueRef::parse(s_.substr(i_), tok_.ref, err);
      if (n == 0) fail(i_, err);
      tok_.kind = Token::Kind::kRef;
      tok_.text = std::string(s_.substr(i_, n));
      i_ += n;
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i_;
      while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_'))
        ++j;
      tok_.kind = Token::Kind::kIdent;
      tok_.text = std::string(s_.substr(i_, j - i_));
      i_ = j;
      return;
    }
    fail(i_, fmt::format("unexpected character `{}`", c));
  }

  bool is_word(std::string_view w) const {
    return tok_.kind == Token::Kind::kIdent && tok_.text == w;
  }

  void require_bool(const Condition::Node& n, size_t pos, std::string_view what) {
    if (n.type == Type::kBool || (n.type == Type::kDynamic && n.op == Op::kRef)) return;
    fail(pos, fmt::format("{} must be true or false, but this is {}", what, type_name(n.type)));
  }

  NodePtr binary(Op op, NodePtr a, NodePtr b) {
    auto n = std::make_unique<Condition::Node>();
    n->op = op;
    n->type = Type::kBool;
    n->kids.push_back(std::move(a));
    n->kids.push_back(std::move(b));
    return n;
  }

  NodePtr parse_or() {
    size_t pos = tok_.pos;
    NodePtr a = parse_and();
    while (is_word("or")) {
      require_bool(*a, pos, "the left side of `or`");
      next();
      pos = tok_.pos;
      NodePtr b = parse_and();
      require_bool(*b, pos, "the right side of `or`");
      a = binary(Op::kOr, std::move(a), std::move(b));
    }
    return a;
  }

  NodePtr parse_and() {
    size_t pos = tok_.pos;
    NodePtr a = parse_not();
    while (is_word("and")) {
      require_bool(*a, pos, "the left side of `and`");
      next();
      pos = tok_.pos;
      NodePtr b = parse_not();
      require_bool(*b, pos, "the right side of `and`");
      a = binary(Op::kAnd, std::move(a), std::move(b));
    }
    return a;
  }

  NodePtr parse_not() {
    if (is_word("not")) {
      next();
      size_t pos = tok_.pos;
      NodePtr a = parse_not();
      require_bool(*a, pos, "the operand of `not`");
      auto n = std::make_unique<Condition::Node>();
      n->op = Op::kNot;
      n->type = Type::kBool;
      n->kids.push_back(std::move(a));
      return n;
    }
    return parse_cmp();
  }

  NodePtr parse_cmp() {
    size_t lpos = tok_.pos;
    NodePtr a = parse_primary();
    if (tok_.kind != Token::Kind::kOp) return a;
    std::string op = tok_.text;
    size_t oppos = tok_.pos;
    next();
    size_t rpos = tok_.pos;
    NodePtr b = parse_primary();
    Type ta = a->type, tb = b->type;
    const bool ordering = op != "==" && op != "!=";
    if (ordering) {
      for (auto [t, pos] : {std::pair{ta, lpos}, std::pair{tb, rpos}})
        if (t == Type::kBool || t == Type::kNull)
          fail(pos, fmt::format("`{}` orders numbers or strings, not {}", op, type_name(t)));
    }
    if (ta != Type::kDynamic && tb != Type::kDynamic && ta != tb)
      fail(oppos, fmt::format("`{}` compares {} with {}; both sides must have the same type", op,
                              type_name(ta), type_name(tb)));
    Op o = op == "=="   ? Op::kEq
           : op == "!=" ? Op::kNe
           : op == "<"  ? Op::kLt
           : op == "<=" ? Op::kLe
           : op == ">"  ? Op::kGt
                        : Op::kGe;
    if (tok_.kind == Token::Kind::kOp)
      fail(tok_.pos, "comparisons do not chain; use `and` (`a < b and b < c`)");
    return binary(o, std::move(a), std::move(b));
  }

  NodePtr parse_primary() {
    auto n = std::make_unique<Condition::Node>();
    switch (tok_.kind) {
      case Token::Kind::kLParen: {
        next();
        NodePtr inner = parse_or();
        if (tok_.kind != Token::Kind::kRParen)
          fail(tok_.pos, fmt::format("expected `)`, found {}", describe(tok_)));
        next();
        return inner;
      }
      case Token::Kind::kString:
        n->op = Op::kLiteral;
        n->type = Type::kString;
        n->literal = Value::string(tok_.text);
        next();
        return n;
      case Token::Kind::kNumber:
        n->op = Op::kLiteral;
        n->type = Type::kNumber;
        n->literal = Value::number(tok_.number);
        next();
        return n;
      case Token::Kind::kRef:
        n->op = Op::kRef;
        n->ref = tok_.ref;
        n->type = tok_.ref.kind == ValueRef::Kind::kField  ? Type::kDynamic
                  : tok_.ref.kind == ValueRef::Kind::kTime ? Type::kNumber
                                                           : Type::kString;
        next();
        return n;
      case Token::Kind::kIdent: {
        std::string word = tok_.text;
        size_t pos = tok_.pos;
        if (word == "true" || word == "false") {
          n->op = Op::kLiteral;
          n->type = Type::kBool;
          n->literal = Value::boolean(word == "true");
          next();
          return n;
        }
        if (word == "null") {
          n->op = Op::kLiteral;
          n->type = Type::kNull;
          n->literal.kind = Value::Kind::kNull;
          next();
          return n;
        }
        if (word == "and" || word == "or" || word == "not")
          fail(pos, fmt::format("expected a value before `{}`", word));
        return parse_call(word, pos);
      }
      case Token::Kind::kEnd:
        fail(tok_.pos, "expected a value, found the end of the condition");
      default:
        fail(tok_.pos, fmt::format("expected a value, found {}", describe(tok_)));
    }
  }

  NodePtr parse_call(const std::string& name, size_t pos) {
    static const std::pair<std::string_view, Op> kFuncs[] = {
        {"exists", Op::kExists},      {"contains", Op::kContains}, {"starts_with", Op::kStartsWith},
        {"ends_with", Op::kEndsWith}, {"matches", Op::kMatches},   {"lower", Op::kLower}};
    Op op = Op::kLiteral;
    bool found = false;
    for (const auto& [n, o] : kFuncs)
      if (n == name) {
        op = o;
        found = true;
      }
    if (!found)
      fail(pos, fmt::format("unknown function `{}`; expected exists, contains, starts_with, "
                            "ends_with, matches or lower",
                            name));
    next();
    if (tok_.kind != Token::Kind::kLParen)
      fail(tok_.pos, fmt::format("expected `(` after `{}`", name));
    next();
    auto n = std::make_unique<Condition::Node>();
    n->op = op;
    const size_t arity = (op == Op::kExists || op == Op::kLower) ? 1 : 2;
    std::vector<size_t> arg_pos;
    while (n->kids.size() < arity) {
      arg_pos.push_back(tok_.pos);
      if (op == Op::kExists) {
        if (tok_.kind != Token::Kind::kRef || tok_.ref.kind != ValueRef::Kind::kField)
          fail(tok_.pos, "exists() takes a field path (`exists(.user.id)`)");
        n->kids.push_back(parse_primary());
      } else {
        n->kids.push_back(parse_or());
      }
      if (n->kids.size() < arity) {
        if (tok_.kind != Token::Kind::kComma)
          fail(tok_.pos, fmt::format("{}() takes {} arguments; expected `,`", name, arity));
        next();
      }
    }
    if (tok_.kind != Token::Kind::kRParen)
      fail(tok_.pos, fmt::format("{}() takes {} argument{}; expected `)`", name, arity,
                                 arity == 1 ? "" : "s"));
    next();
    if (op != Op::kExists) {
      Type t0 = n->kids[0]->type;
      if (t0 != Type::kString && t0 != Type::kDynamic)
        fail(arg_pos[0], fmt::format("{}() takes a string, but this is {}", name, type_name(t0)));
    }
    if (arity == 2) {
      const auto& k1 = *n->kids[1];
      if (op == Op::kMatches) {
        if (k1.op != Op::kLiteral || k1.type != Type::kString)
          fail(arg_pos[1],
               "matches() takes a string literal pattern (`matches(%message, \"err.*\")`)");
        RE2::Options o;
        o.set_log_errors(false);
        o.set_max_mem(8 << 20);
        n->re = std::make_unique<RE2>(k1.literal.s, o);
        if (!n->re->ok()) fail(arg_pos[1], fmt::format("invalid RE2 pattern: {}", n->re->error()));
      } else if (k1.type != Type::kString) {
        fail(arg_pos[1], fmt::format("{}() takes a string as its second argument, but this is {}",
                                     name, type_name(k1.type)));
      }
    }
    n->type = op == Op::kLower ? Type::kString : Type::kBool;
    return n;
  }

  std::string_view s_;
  size_t i_ = 0;
  Token tok_;
};

}  // namespace

Condition::Condition() = default;
Condition::~Condition() = default;
Condition::Condition(Condition&&) noexcept = default;

std::unique_ptr<Condition> Condition::parse(std::string_view text, ParseError& err) {
  Parser p(text);
  NodePtr root = p.parse(err);
  if (!root) return nullptr;
  std::unique_ptr<Condition> c(new Condition());
  c->text_ = std::string(text);
  c->root_ = std::move(root);
  return c;
}

bool Condition::eval(EventView& ev) const {
  return root_->truth(ev);
}

// ---- templates ----

bool Template::parse(std::string_view text, Template& out, ParseError& err) {
  out.parts_.clear();
  size_t i = 0;
  std::string lit;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == std::string_view::npos) {
      lit.append(text.substr(i));
      break;
    }
    lit.append(text.substr(i, open - i));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      err = {"unterminated `{{` in template; expected `{{ .path }}` or `{{ %host }}`", open};
      return false;
    }
    std::string_view inner = text.substr(open + 2, close - open - 2);
    size_t a = 0;
    while (a < inner.size() && inner[a] == ' ') ++a;
    size_t b = inner.size();
    while (b > a && inner[b - 1] == ' ') --b;
    std::string_view name = inner.substr(a, b - a);
    auto ref = std::make_shared<ValueRef>();
    std::string e;
    size_t n = ValueRef::parse(name, *ref, e);
    if (n == 0 || n != name.size()) {
      err = {n == 0 ? e
                    : "unexpected text after the name in `{{ }}`; expected `{{ .path }}` or `{{ "
                      "%host }}`",
             open + 2 + a + n};
      return false;
    }
    if (!lit.empty()) out.parts_.push_back({std::move(lit), nullptr});
    lit.clear();
    out.parts_.push_back({std::string(), std::move(ref)});
    i = close + 2;
  }
  if (!lit.empty()) out.parts_.push_back({std::move(lit), nullptr});
  return true;
}

std::string Template::render(EventView& ev) const {
  if (parts_.size() == 1 && !parts_[0].ref) return parts_[0].text;
  std::string out;
  for (const auto& p : parts_) {
    if (p.ref)
      out += p.ref->get(ev).render();
    else
      out += p.text;
  }
  return out;
}

const std::string& Template::literal() const {
  static const std::string kEmpty;
  return parts_.empty() ? kEmpty : parts_[0].text;
}

}  // namespace logship::transform
