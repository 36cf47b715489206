#pragma once
// UTF-8 decoding shared by the text sources (not installed, not API).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace convirt::text::detail {

/// Code point returned for a byte that does not start a well-formed sequence.
constexpr char32_t kInvalid = 0xFFFFFFFFu;

/// Decodes one code point at `text[i]` and advances `i`. Ill-formed input (Unicode Table 3-7:
/// overlong forms, surrogates, past U+10FFFF, truncated sequences) yields kInvalid and advances by
/// one byte, so the decoder resynchronises on the next byte exactly where a strict decoder with
/// replacement would.
inline char32_t decode_utf8(std::string_view text, std::size_t& i) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  auto cont = [&](std::size_t k, unsigned char lo, unsigned char hi) {
    return i + k < n && s[i + k] >= lo && s[i + k] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) {
    if (cont(1, 0x80, 0xBF)) {
      char32_t cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
      i += 2;
      return cp;
    }
  } else if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF)) {
      char32_t cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      i += 3;
      return cp;
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    if (cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) {
      char32_t cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
                    (s[i + 3] & 0x3Fu);
      i += 4;
      return cp;
    }
  }
  ++i;
  return kInvalid;
}

/// Appends the UTF-8 encoding of a valid code point.
inline void append_utf8(std::string& out, char32_t cp) {
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

/// Unicode White_Space (the property, not the Zs category): what clean_whitespace() collapses.
inline bool is_unicode_space(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace convirt::text::detail
