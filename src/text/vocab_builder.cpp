#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/text/vocab_builder.h>

#include "utf8.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <unordered_set>

namespace convirt::text {
namespace {

constexpr int kOutside = -1;  // a character outside the kept alphabet: never merged

std::uint64_t pair_key(int a, int b) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

struct Word {
  std::vector<int> syms;
  int64_t count;
};

}  // namespace

WordPieceVocabBuilder::WordPieceVocabBuilder(VocabBuilderOptions options)
    : options_(std::move(options)), basic_(options_.tokenizer()) {
  CONVIRT_CHECK_VALUE(options_.vocab_size() > 0,
                      "VocabBuilderOptions::vocab_size must be > 0, got ", options_.vocab_size());
  CONVIRT_CHECK_VALUE(options_.min_frequency() >= 1,
                      "VocabBuilderOptions::min_frequency must be >= 1, got ",
                      options_.min_frequency());
  CONVIRT_CHECK_VALUE(options_.limit_alphabet() >= 1,
                      "VocabBuilderOptions::limit_alphabet must be >= 1, got ",
                      options_.limit_alphabet());
  CONVIRT_CHECK_VALUE(!options_.tokenizer().continuation_prefix().empty(),
                      "VocabBuilderOptions: the tokenizer's continuation_prefix must not be empty");
}

void WordPieceVocabBuilder::add_text(std::string_view text) {
  std::vector<std::string> words;
  std::vector<bool> special;
  basic_.tokenize_into(text, words, &special);
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (!special[i]) ++counts_[words[i]];
  }
}

void WordPieceVocabBuilder::add_texts(const std::vector<std::string>& texts) {
  for (const auto& t : texts) add_text(t);
}

std::vector<std::string> WordPieceVocabBuilder::build() const {
  const std::string& prefix = options_.tokenizer().continuation_prefix();
  const int64_t max_chars = options_.tokenizer().max_input_chars_per_word();

  // Words in byte order (determinism does not depend on hash-map iteration), split into characters.
  std::vector<std::pair<std::string, int64_t>> sorted(counts_.begin(), counts_.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<std::string>> chars;
  chars.reserve(sorted.size());
  std::map<std::string, int64_t> char_freq;
  for (const auto& [word, count] : sorted) {
    std::vector<std::string> cs;
    for (std::size_t i = 0; i < word.size();) {
      std::size_t s = i;
      detail::decode_utf8(word, i);
      cs.emplace_back(word.substr(s, i - s));
    }
    if (static_cast<int64_t>(cs.size()) > max_chars) cs.clear();  // becomes [UNK] anyway
    for (const auto& c : cs) char_freq[c] += count;
    chars.push_back(std::move(cs));
  }

  // The alphabet: the most frequent characters, each as word-initial and continuation piece so that
  // any word over the alphabet tokenizes without [UNK].
  std::vector<std::pair<std::string, int64_t>> by_freq(char_freq.begin(), char_freq.end());
  std::stable_sort(by_freq.begin(), by_freq.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (static_cast<int64_t>(by_freq.size()) > options_.limit_alphabet()) {
    by_freq.resize(static_cast<std::size_t>(options_.limit_alphabet()));
  }
  std::vector<std::string> alphabet;
  for (const auto& [c, f] : by_freq) alphabet.push_back(c);
  std::sort(alphabet.begin(), alphabet.end());

  std::vector<std::string> vocab;
  std::unordered_set<std::string> in_vocab;
  auto add_token = [&](const std::string& t) {
    if (in_vocab.insert(t).second) vocab.push_back(t);
  };
  for (const auto& s : options_.special_tokens()) add_token(s);
  const std::size_t fixed = vocab.size() + 2 * alphabet.size();
  CONVIRT_CHECK_VALUE(static_cast<int64_t>(fixed) <= options_.vocab_size(),
                      "WordPieceVocabBuilder::build: ",
                      "vocab_size must be >= the special tokens plus the alphabet (", vocab.size(),
                      " + 2 x ", alphabet.size(), " = ", fixed, "), got ", options_.vocab_size(),
                      "; raise vocab_size or lower limit_alphabet");

  // Symbols: index -> piece string (with the prefix for continuation pieces).
  std::vector<std::string> sym_str;
  std::unordered_map<std::string, int> sym_id;
  auto symbol = [&](const std::string& s) {
    auto it = sym_id.find(s);
    if (it != sym_id.end()) return it->second;
    int id = static_cast<int>(sym_str.size());
    sym_str.push_back(s);
    sym_id.emplace(s, id);
    return id;
  };
  for (const auto& c : alphabet) add_token(c);
  for (const auto& c : alphabet) add_token(prefix + c);
  for (const auto& c : alphabet) {
    symbol(c);
    symbol(prefix + c);
  }
  std::unordered_set<std::string> kept(alphabet.begin(), alphabet.end());

  std::vector<Word> words;
  for (std::size_t w = 0; w < sorted.size(); ++w) {
    if (chars[w].empty()) continue;
    Word word{{}, sorted[w].second};
    for (std::size_t i = 0; i < chars[w].size(); ++i) {
      const std::string& c = chars[w][i];
      word.syms.push_back(kept.count(c) ? symbol(i == 0 ? c : prefix + c) : kOutside);
    }
    words.push_back(std::move(word));
  }

  std::vector<int64_t> sym_freq(sym_str.size(), 0);
  std::unordered_map<std::uint64_t, int64_t> pair_count;
  std::unordered_map<std::uint64_t, std::vector<int>> pair_words;
  auto account = [&](int w, int64_t sign) {
    const Word& word = words[static_cast<std::size_t>(w)];
    for (std::size_t i = 0; i < word.syms.size(); ++i) {
      int a = word.syms[i];
      if (a != kOutside) sym_freq[static_cast<std::size_t>(a)] += sign * word.count;
      if (i + 1 == word.syms.size() || a == kOutside || word.syms[i + 1] == kOutside) continue;
      std::uint64_t k = pair_key(a, word.syms[i + 1]);
      pair_count[k] += sign * word.count;
      if (sign > 0) pair_words[k].push_back(w);
    }
  };
  for (int w = 0; w < static_cast<int>(words.size()); ++w) account(w, +1);

  std::vector<int> visited(words.size(), -1);
  for (int iteration = 0; static_cast<int64_t>(vocab.size()) < options_.vocab_size(); ++iteration) {
    // Best pair: highest count(ab) / (count(a) count(b)), compared exactly by cross-multiplying.
    std::uint64_t best = 0;
    int64_t best_count = 0;
    bool found = false;
    for (const auto& [k, c] : pair_count) {
      if (c < options_.min_frequency()) continue;
      if (!found) {
        best = k;
        best_count = c;
        found = true;
        continue;
      }
      auto fa = sym_freq[k >> 32], fb = sym_freq[k & 0xFFFFFFFFu];
      auto ba = sym_freq[best >> 32], bb = sym_freq[best & 0xFFFFFFFFu];
      __int128 lhs = static_cast<__int128>(c) * ba * bb;
      __int128 rhs = static_cast<__int128>(best_count) * fa * fb;
      bool better = lhs > rhs;
      if (lhs == rhs) {
        if (c != best_count) {
          better = c > best_count;
        } else {
          std::string m1 = sym_str[k >> 32] + sym_str[k & 0xFFFFFFFFu].substr(prefix.size());
          std::string m2 = sym_str[best >> 32] + sym_str[best & 0xFFFFFFFFu].substr(prefix.size());
          better = m1 < m2 || (m1 == m2 && k < best);
        }
      }
      if (better) {
        best = k;
        best_count = c;
      }
    }
    if (!found) break;
    const int a = static_cast<int>(best >> 32), b = static_cast<int>(best & 0xFFFFFFFFu);
    const std::string merged = sym_str[static_cast<std::size_t>(a)] +
                               sym_str[static_cast<std::size_t>(b)].substr(prefix.size());
    const int m = symbol(merged);
    if (static_cast<std::size_t>(m) >= sym_freq.size()) sym_freq.resize(sym_str.size(), 0);
    add_token(merged);
    std::vector<int> affected = std::move(pair_words[best]);
    pair_words.erase(best);
    for (int w : affected) {
      if (visited[static_cast<std::size_t>(w)] == iteration) continue;
      visited[static_cast<std::size_t>(w)] = iteration;
      Word& word = words[static_cast<std::size_t>(w)];
      bool has = false;
      for (std::size_t i = 0; i + 1 < word.syms.size(); ++i) {
        has = has || (word.syms[i] == a && word.syms[i + 1] == b);
      }
      if (!has) continue;
      account(w, -1);
      std::vector<int> out;
      out.reserve(word.syms.size());
      for (std::size_t i = 0; i < word.syms.size(); ++i) {
        if (i + 1 < word.syms.size() && word.syms[i] == a && word.syms[i + 1] == b) {
          out.push_back(m);
          ++i;
        } else {
          out.push_back(word.syms[i]);
        }
      }
      word.syms = std::move(out);
      account(w, +1);
    }
    for (auto it = pair_count.begin(); it != pair_count.end();) {
      it = it->second <= 0 ? pair_count.erase(it) : std::next(it);
    }
  }
  return vocab;
}

std::vector<std::string> build_wordpiece_vocab(const std::vector<std::string>& texts,
                                               const VocabBuilderOptions& options) {
  WordPieceVocabBuilder builder(options);
  builder.add_texts(texts);
  return builder.build();
}

void save_vocab(const std::vector<std::string>& vocab, const std::string& path) {
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    CONVIRT_CHECK_VALUE(vocab[i].find_first_of("\r\n") == std::string::npos, "save_vocab: token ",
                        i, " contains a line break; vocab.txt holds one token per line");
  }
  // Atomic: a run killed while writing must not leave a short vocab.txt that a resumed run would
  // silently read as a different vocabulary.
  std::string text;
  for (const auto& t : vocab) text.append(t).push_back('\n');
  write_file_atomically(path, text, "vocabulary");
}

}  // namespace convirt::text
