#include <convirt/text/report.h>

#include "utf8.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace convirt::text {
namespace {

enum class HeaderKind { kFindings, kImpression, kCombined, kAdministrative, kOther };

struct KnownHeader {
  std::string_view name;
  HeaderKind kind;
};

// Upper-case, single-spaced names. Administrative sections never serve as pretraining text.
constexpr std::array<KnownHeader, 54> kKnownHeaders{{
    {"FINDINGS", HeaderKind::kFindings},
    {"FINDING", HeaderKind::kFindings},
    {"IMPRESSION", HeaderKind::kImpression},
    {"IMPRESSIONS", HeaderKind::kImpression},
    {"FINAL IMPRESSION", HeaderKind::kImpression},
    {"CONCLUSION", HeaderKind::kImpression},
    {"CONCLUSIONS", HeaderKind::kImpression},
    {"SUMMARY", HeaderKind::kImpression},
    {"OPINION", HeaderKind::kImpression},
    {"FINDINGS AND IMPRESSION", HeaderKind::kCombined},
    {"FINDINGS AND IMPRESSIONS", HeaderKind::kCombined},
    {"FINDINGS/IMPRESSION", HeaderKind::kCombined},
    {"FINDINGS/IMPRESSIONS", HeaderKind::kCombined},
    {"FINDINGS & IMPRESSION", HeaderKind::kCombined},
    {"IMPRESSION AND FINDINGS", HeaderKind::kCombined},
    {"IMPRESSION/FINDINGS", HeaderKind::kCombined},
    {"FINDINGS AND CONCLUSION", HeaderKind::kCombined},
    {"EXAMINATION", HeaderKind::kAdministrative},
    {"EXAM", HeaderKind::kAdministrative},
    {"TYPE OF EXAMINATION", HeaderKind::kAdministrative},
    {"INDICATION", HeaderKind::kAdministrative},
    {"INDICATIONS", HeaderKind::kAdministrative},
    {"CLINICAL INDICATION", HeaderKind::kAdministrative},
    {"HISTORY", HeaderKind::kAdministrative},
    {"CLINICAL HISTORY", HeaderKind::kAdministrative},
    {"CLINICAL INFORMATION", HeaderKind::kAdministrative},
    {"CLINICAL DATA", HeaderKind::kAdministrative},
    {"REASON FOR EXAM", HeaderKind::kAdministrative},
    {"REASON FOR EXAMINATION", HeaderKind::kAdministrative},
    {"REASON FOR STUDY", HeaderKind::kAdministrative},
    {"TECHNIQUE", HeaderKind::kAdministrative},
    {"PROCEDURE", HeaderKind::kAdministrative},
    {"COMPARISON", HeaderKind::kAdministrative},
    {"COMPARISONS", HeaderKind::kAdministrative},
    {"PRIOR", HeaderKind::kAdministrative},
    {"PRIORS", HeaderKind::kAdministrative},
    {"WET READ", HeaderKind::kAdministrative},
    {"NOTIFICATION", HeaderKind::kAdministrative},
    {"NOTIFICATIONS", HeaderKind::kAdministrative},
    {"RECOMMENDATION", HeaderKind::kAdministrative},
    {"RECOMMENDATIONS", HeaderKind::kAdministrative},
    {"ADDENDUM", HeaderKind::kAdministrative},
    {"FINAL REPORT", HeaderKind::kAdministrative},
    {"REFERENCE EXAM", HeaderKind::kAdministrative},
    {"DATE", HeaderKind::kAdministrative},
    {"EXAM DATE", HeaderKind::kAdministrative},
    {"STUDY", HeaderKind::kAdministrative},
    {"REFERRING PHYSICIAN", HeaderKind::kAdministrative},
    {"ATTENDING", HeaderKind::kAdministrative},
    {"DICTATED BY", HeaderKind::kAdministrative},
    {"PATIENT", HeaderKind::kAdministrative},
    {"AGE", HeaderKind::kAdministrative},
    {"SEX", HeaderKind::kAdministrative},
    {"CPT CODE", HeaderKind::kAdministrative},
}};

struct Header {
  std::size_t start;    // first byte of the header name
  std::size_t content;  // first byte after the ':'
  std::string name;     // upper-case, single-spaced
  HeaderKind kind;
};

bool is_header_char(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == ' ' || c == '/' || c == '&' ||
         c == '(' || c == ')' || c == '\'' || c == '-';
}

// Tries to read "NAME:" at `pos`. `line_start` relaxes the rules: mid-line, only upper-case known
// headers count, because prose such as "... Note: ..." must not cut a section.
bool match_header(const std::string& text, std::size_t pos, bool line_start, Header& out) {
  constexpr std::size_t kMaxNameLength = 40;
  std::size_t end = pos;
  while (end < text.size() && end - pos <= kMaxNameLength && is_header_char(text[end])) ++end;
  if (end >= text.size() || text[end] != ':' || end == pos) return false;
  std::string raw = text.substr(pos, end - pos);
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  if (raw.empty() || !std::isalpha(static_cast<unsigned char>(raw[0]))) return false;
  bool all_upper = true;
  std::size_t letters = 0, words = 0;
  std::string name;
  bool in_space = true;
  for (char c : raw) {
    if (c == ' ') {
      in_space = true;
      continue;
    }
    if (in_space && !name.empty()) name.push_back(' ');
    if (in_space) ++words;
    in_space = false;
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++letters;
      if (std::islower(static_cast<unsigned char>(c))) all_upper = false;
    }
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  // "RECOMMENDATION(S)" and "IMPRESSION(S)" are spelled out as plurals.
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "(S)") == 0) {
    name.replace(name.size() - 3, 3, "S");
  }
  HeaderKind kind = HeaderKind::kOther;
  bool known = false;
  for (const auto& h : kKnownHeaders) {
    if (h.name == name) {
      kind = h.kind;
      known = true;
      break;
    }
  }
  if (!line_start && !(known && all_upper)) return false;
  if (!known && !(all_upper && (words >= 2 || letters >= 6))) return false;
  out.start = pos;
  out.content = end + 1;
  out.name = std::move(name);
  out.kind = kind;
  return true;
}

std::vector<Header> find_headers(const std::string& text) {
  std::vector<Header> headers;
  std::size_t i = 0;
  const std::size_t n = text.size();
  bool line_start = true;
  bool after_sentence = false;
  while (i < n) {
    char c = text[i];
    if (c == '\n' || c == '\r') {
      line_start = true;
      after_sentence = false;
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    if (line_start || after_sentence) {
      Header h;
      if (match_header(text, i, line_start, h)) {
        i = h.content;
        headers.push_back(std::move(h));
        line_start = false;
        after_sentence = false;
        continue;
      }
    }
    line_start = false;
    after_sentence = (c == '.' || c == '!' || c == '?') && i + 1 < n &&
                     (text[i + 1] == ' ' || text[i + 1] == '\t');
    ++i;
  }
  return headers;
}

void append_joined(std::string& dst, const std::string& piece) {
  if (piece.empty()) return;
  if (!dst.empty()) dst.push_back(' ');
  dst += piece;
}

std::string remove_deid(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "___") == 0) {
      while (i < text.size() && text[i] == '_') ++i;
      out.push_back(' ');
      continue;
    }
    out.push_back(text[i++]);
  }
  return clean_whitespace(out);
}

}  // namespace

std::string clean_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t start = i;
    char32_t cp = detail::decode_utf8(text, i);
    if (cp != detail::kInvalid && detail::is_unicode_space(cp)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.append(text.substr(start, i - start));
  }
  return out;
}

std::size_t count_tokens(std::string_view text) {
  std::size_t tokens = 0;
  bool in_word = false, word_counted = false;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = detail::decode_utf8(text, i);
    bool space = cp != detail::kInvalid && detail::is_unicode_space(cp);
    if (space) {
      in_word = false;
      continue;
    }
    if (!in_word) {
      in_word = true;
      word_counted = false;
    }
    // Non-ASCII letters (accented words, CJK) count as alphanumeric: only ASCII punctuation and
    // symbols alone do not make a token.
    bool alnum =
        cp == detail::kInvalid ? false : (cp >= 0x80 || std::isalnum(static_cast<int>(cp)));
    if (alnum && !word_counted) {
      ++tokens;
      word_counted = true;
    }
  }
  return tokens;
}

bool keep_for_pretraining(std::string_view text, std::size_t min_tokens) {
  return count_tokens(text) >= min_tokens;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    if (detail::decode_utf8(text, i) == detail::kInvalid) return false;
  }
  return true;
}

ReportSections extract_sections(const std::string& report) {
  ReportSections out;
  std::vector<Header> headers = find_headers(report);
  out.has_headers = !headers.empty();
  std::size_t first = headers.empty() ? report.size() : headers.front().start;
  out.preamble = clean_whitespace(std::string_view(report).substr(0, first));
  for (std::size_t k = 0; k < headers.size(); ++k) {
    const Header& h = headers[k];
    std::size_t end = k + 1 < headers.size() ? headers[k + 1].start : report.size();
    std::string body =
        clean_whitespace(std::string_view(report).substr(h.content, end - h.content));
    switch (h.kind) {
      case HeaderKind::kFindings:
        append_joined(out.findings, body);
        break;
      case HeaderKind::kImpression:
        append_joined(out.impression, body);
        break;
      case HeaderKind::kCombined:
        append_joined(out.findings, body);
        out.combined = true;
        break;
      default:
        out.other.emplace_back(h.name, std::move(body));
        break;
    }
  }
  return out;
}

std::string pretraining_text(const std::string& report, const ReportTextOptions& options) {
  ReportSections s = extract_sections(report);
  std::string text = s.findings;
  append_joined(text, s.impression);
  if (text.empty()) {
    switch (options.fallback) {
      case MissingSectionFallback::kEmpty:
        break;
      case MissingSectionFallback::kWholeIfUnstructured:
        if (!s.has_headers) text = s.preamble;
        break;
      case MissingSectionFallback::kLastSection: {
        if (!s.has_headers) {
          text = s.preamble;
          break;
        }
        for (auto it = s.other.rbegin(); it != s.other.rend(); ++it) {
          bool administrative = false;
          for (const auto& h : kKnownHeaders) {
            if (h.name == it->first) administrative = h.kind == HeaderKind::kAdministrative;
          }
          if (!administrative && !it->second.empty()) {
            text = it->second;
            break;
          }
        }
        if (text.empty()) {
          text = s.preamble;
          // The banner MIMIC puts above every report is not report text.
          constexpr std::string_view kBanner = "FINAL REPORT";
          if (text.compare(0, kBanner.size(), kBanner) == 0) {
            text = clean_whitespace(std::string_view(text).substr(kBanner.size()));
          }
        }
        break;
      }
    }
  }
  if (options.remove_deid_placeholders) text = remove_deid(text);
  return text;
}

}  // namespace convirt::text
