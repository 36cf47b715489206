#include <convirt/core/check.h>
#include <convirt/text/report.h>
#include <convirt/text/sentences.h>

#include "utf8.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace convirt::text {
namespace {

bool is_alpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
bool is_upper(char c) {
  return std::isupper(static_cast<unsigned char>(c)) != 0;
}
bool is_lower(char c) {
  return std::islower(static_cast<unsigned char>(c)) != 0;
}

// Abbreviations (lower case, without the final '.') after which a period does not end a sentence.
constexpr std::string_view kAbbreviations[] = {
    "dr",   "mr", "mrs", "ms", "prof", "vs",  "e.g",  "eg",     "i.e", "ie",   "cf",  "fig",
    "figs", "st", "jr",  "sr", "incl", "esp", "resp", "approx", "apx", "appr", "vol", "ca"};

// Returns the list number (1..99) when `w` is "N." or "N)", else -1.
int list_number(std::string_view w) {
  if (w.size() < 2 || w.size() > 3) return -1;
  char last = w.back();
  if (last != '.' && last != ')') return -1;
  int n = 0;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    if (!is_digit(w[i])) return -1;
    n = n * 10 + (w[i] - '0');
  }
  return n == 0 ? -1 : n;
}

bool is_bullet(std::string_view w) {
  return w == "-" || w == "*" || w == "\xE2\x80\xA2";
}

bool is_list_marker(std::string_view w) {
  return list_number(w) > 0 || is_bullet(w);
}

bool has_alnum(std::string_view s) {
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || (static_cast<unsigned char>(c) >= 0x80)) {
      return true;
    }
  }
  return false;
}

// Whether a sentence ends after word `w` (given the next word, possibly empty).
bool ends_sentence(std::string_view w, std::string_view next) {
  std::size_t end = w.size();
  while (end > 0 &&
         (w[end - 1] == ')' || w[end - 1] == ']' || w[end - 1] == '"' || w[end - 1] == '\'')) {
    --end;
  }
  if (end == 0) return false;
  char p = w[end - 1];
  if (p == '!' || p == '?') return true;
  if (p != '.') return false;
  std::string_view core = w.substr(0, end - 1);
  if (core.empty()) return true;
  std::string lower(core);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // "no." is "number" only before a digit ("No. 5"); otherwise "There is no." ends a sentence.
  if (lower == "no" || lower == "nos") return next.empty() || !is_digit(next[0]);
  for (auto a : kAbbreviations) {
    if (a == lower) return false;
  }
  if (core.size() == 1 && is_upper(core[0])) return false;  // an initial: "J. Smith"
  // Dotted abbreviations ("p.m.", "b.i.d.") end a sentence only before a capitalised word.
  if (core.find('.') != std::string_view::npos && is_alpha(core.back())) {
    return !next.empty() && is_upper(next[0]);
  }
  return true;
}

// Layout pass: paragraphs separated by blank lines or by lines that start with a list marker; the
// line breaks inside a paragraph become spaces. Also separates "clear.No" (a period glued to the
// next sentence) where the next word is capitalised prose.
std::vector<std::string> paragraphs(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  std::size_t pos = 0;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  while (pos <= text.size()) {
    std::size_t nl = text.find_first_of("\r\n", pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = clean_whitespace(std::string_view(text).substr(pos, nl - pos));
    if (line.empty()) {
      flush();
    } else {
      std::string_view first = std::string_view(line).substr(0, line.find(' '));
      if (is_list_marker(first) && line.size() > first.size()) flush();
      if (!cur.empty()) cur.push_back(' ');
      cur += line;
    }
    if (nl >= text.size()) break;
    // "\r\n" is one break.
    pos = (text[nl] == '\r' && nl + 1 < text.size() && text[nl + 1] == '\n') ? nl + 2 : nl + 1;
  }
  flush();
  for (auto& p : out) {
    std::string fixed;
    fixed.reserve(p.size() + 8);
    for (std::size_t i = 0; i < p.size(); ++i) {
      fixed.push_back(p[i]);
      if (p[i] == '.' && i >= 2 && is_lower(p[i - 1]) && is_lower(p[i - 2]) && i + 2 < p.size() &&
          is_upper(p[i + 1]) && is_lower(p[i + 2])) {
        fixed.push_back(' ');
      }
    }
    p = std::move(fixed);
  }
  return out;
}

}  // namespace

std::vector<std::string> split_sentences(const std::string& text,
                                         const SentenceSplitOptions& options) {
  std::vector<std::string> sentences;
  for (const std::string& para : paragraphs(text)) {
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < para.size();) {
      std::size_t j = para.find(' ', i);
      if (j == std::string::npos) j = para.size();
      words.push_back(std::string_view(para).substr(i, j - i));
      i = j + 1;
    }
    std::vector<std::string_view> cur;
    int last_marker = 0;
    auto emit = [&] {
      if (cur.empty()) return;
      std::size_t first = 0;
      if (options.strip_list_markers && is_list_marker(cur[0]) && cur.size() > 1) first = 1;
      std::string s;
      for (std::size_t k = first; k < cur.size(); ++k) {
        if (!s.empty()) s.push_back(' ');
        s.append(cur[k]);
      }
      cur.clear();
      if (s.empty() || (options.drop_empty && !has_alnum(s))) return;
      sentences.push_back(std::move(s));
    };
    for (std::size_t k = 0; k < words.size(); ++k) {
      std::string_view w = words[k];
      std::string_view next = k + 1 < words.size() ? words[k + 1] : std::string_view();
      int number = list_number(w);
      bool next_is_text = !next.empty() && (is_alpha(next[0]) || is_digit(next[0]));
      if (number > 0 && next_is_text && !cur.empty() && number == last_marker + 1) {
        emit();  // "1. Edema 2. Effusion": the next item starts without a period before it
      }
      if (cur.empty() && number > 0 && next_is_text) {
        last_marker = number;
        cur.push_back(w);
        continue;  // a list marker never ends the sentence it starts
      }
      if (cur.empty() && is_bullet(w)) {
        cur.push_back(w);
        continue;
      }
      cur.push_back(w);
      if (ends_sentence(w, next)) emit();
    }
    emit();
  }
  return sentences;
}

std::size_t sample_sentence_index(std::size_t n, std::uint64_t seed, std::uint64_t example,
                                  std::uint64_t step) {
  CONVIRT_CHECK_VALUE(n > 0, "sample_sentence_index: n must be > 0 (an example needs at least one ",
                      "sentence), got 0");
  // A counter-based generator (SplitMix64 finaliser over a mix of the three keys), so draws need no
  // shared state between loader threads and replay exactly after a resume.
  auto mix = [](std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::uint64_t state = mix(mix(mix(seed) ^ example) ^ step);
  // Rejection sampling removes the modulo bias.
  const std::uint64_t bound = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  std::uint64_t r = state;
  while (r >= limit) {
    state = mix(state);
    r = state;
  }
  return static_cast<std::size_t>(r % bound);
}

const std::string& SentenceSampler::sample(const std::vector<std::string>& sentences,
                                           std::uint64_t example, std::uint64_t step) const {
  CONVIRT_CHECK_VALUE(!sentences.empty(), "SentenceSampler::sample: sentences must not be empty ",
                      "(example ", example, ", step ", step, ")");
  return sentences[sample_sentence_index(sentences.size(), seed_, example, step)];
}

}  // namespace convirt::text
