#include "unicode.h"

#include "utf8.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

namespace convirt::text::detail {
namespace {

utf8proc_category_t category(char32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

int combining_class(char32_t cp) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

}  // namespace

bool bert_is_whitespace(char32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  if (cp < 0x80) return false;
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

bool bert_is_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  if (cp < 0x80) return cp < 0x20 || cp == 0x7F;
  auto c = category(cp);
  return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CS ||
         c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

bool bert_is_punctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  if (cp < 0x80) return false;
  auto c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool bert_is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void lower_word(std::vector<char32_t>& word) {
  std::vector<char32_t> out;
  out.reserve(word.size() + 1);
  for (std::size_t i = 0; i < word.size(); ++i) {
    char32_t cp = word[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp == 0x130) {
      // The only unconditional multi-code-point lower-case mapping (SpecialCasing.txt).
      out.push_back('i');
      out.push_back(0x307);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  word.swap(out);
}

void strip_accents(std::vector<char32_t>& word) {
  std::vector<char32_t> out;
  out.reserve(word.size() + 4);
  utf8proc_int32_t buf[32];
  for (char32_t cp : word) {
    if (cp < 0x80) {
      out.push_back(cp);
      continue;
    }
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32,
                                                 UTF8PROC_DECOMPOSE, &last_boundclass);
    if (n < 0 || n > 32) {
      out.push_back(cp);
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back(static_cast<char32_t>(buf[k]));
  }
  // Canonical ordering (stable sort of each run of non-starters by combining class) completes NFD;
  // it decides the order of the marks that survive (Mc, Me) when several follow one base.
  for (std::size_t i = 0; i < out.size();) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }
  out.erase(std::remove_if(
                out.begin(), out.end(),
                [](char32_t cp) { return cp >= 0x80 && category(cp) == UTF8PROC_CATEGORY_MN; }),
            out.end());
  word.swap(out);
}

void nfc(std::vector<char32_t>& text) {
  bool ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
  if (ascii) return;
  std::string utf8;
  for (char32_t cp : text) append_utf8(utf8, cp);
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                   static_cast<utf8proc_ssize_t>(utf8.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (len < 0) return;  // only on allocation failure: the input is valid code points
  std::string_view view(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(len));
  text.clear();
  for (std::size_t i = 0; i < view.size();) text.push_back(decode_utf8(view, i));
  std::free(mapped);
}

}  // namespace convirt::text::detail
