#include <convirt/core/check.h>
#include <convirt/text/vocab_builder.h>
#include <convirt/text/wordpiece.h>

#include "unicode.h"
#include "utf8.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace convirt::text {

// Immutable after construction and shared between copies, so the string_view keys stay valid.
struct WordPieceTokenizer::Vocab {
  std::vector<std::string> tokens;
  std::unordered_map<std::string_view, int64_t> whole;         // every token
  std::unordered_map<std::string_view, int64_t> continuation;  // "##x" tokens, keyed by "x"
  std::size_t max_whole_bytes = 0;
  std::size_t max_continuation_bytes = 0;
};

namespace {

void push_word(std::vector<char32_t>& word, std::vector<std::string>& words) {
  if (word.empty()) return;
  std::string s;
  s.reserve(word.size());
  for (char32_t cp : word) detail::append_utf8(s, cp);
  words.push_back(std::move(s));
  word.clear();
}

}  // namespace

BasicTokenizer::BasicTokenizer(WordPieceOptions options) : options_(std::move(options)) {
  CONVIRT_CHECK_VALUE(options_.max_input_chars_per_word() > 0,
                      "WordPieceOptions::max_input_chars_per_word must be > 0, got ",
                      options_.max_input_chars_per_word());
  if (!options_.split_special_tokens()) {
    for (const std::string* t :
         {&options_.unk_token(), &options_.cls_token(), &options_.sep_token(),
          &options_.pad_token(), &options_.mask_token()}) {
      if (!t->empty()) specials_.push_back(*t);
    }
  }
}

std::vector<std::string> BasicTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> words;
  tokenize_into(text, words, nullptr);
  return words;
}

void BasicTokenizer::tokenize_into(std::string_view text, std::vector<std::string>& words,
                                   std::vector<bool>* special) const {
  // BertTokenizer first cuts the raw text at literal special tokens (case-sensitive, longest
  // match), then runs the basic tokenizer on the pieces between them.
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t best = std::string_view::npos, best_len = 0;
    for (const std::string& s : specials_) {
      std::size_t at = text.find(s, pos);
      if (at == std::string_view::npos) continue;
      if (at < best || (at == best && s.size() > best_len)) {
        best = at;
        best_len = s.size();
      }
    }
    std::size_t end = best == std::string_view::npos ? text.size() : best;
    tokenize_chunk(text.substr(pos, end - pos), words, special);
    if (best == std::string_view::npos) break;
    words.emplace_back(text.substr(best, best_len));
    if (special) special->push_back(true);
    pos = best + best_len;
  }
}

void BasicTokenizer::tokenize_chunk(std::string_view chunk, std::vector<std::string>& words,
                                    std::vector<bool>* special) const {
  const std::size_t before = words.size();
  const bool lower = options_.lowercase();
  const bool strip = options_.resolved_strip_accents();
  const bool ascii = std::all_of(chunk.begin(), chunk.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    // Hot path for report text: no normalisation beyond ASCII case folding.
    std::string word;
    auto flush = [&] {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    };
    for (char ch : chunk) {
      auto c = static_cast<unsigned char>(ch);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        flush();
      } else if (c < 0x20 || c == 0x7F) {
        continue;  // control characters are removed, joining their neighbours
      } else if (detail::bert_is_punctuation(c)) {
        flush();
        words.emplace_back(1, ch);
      } else {
        word.push_back(lower && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : ch);
      }
    }
    flush();
  } else {
    // 1. _clean_text and _tokenize_chinese_chars; ill-formed bytes vanish like U+FFFD does.
    std::vector<char32_t> text;
    text.reserve(chunk.size());
    for (std::size_t i = 0; i < chunk.size();) {
      char32_t cp = detail::decode_utf8(chunk, i);
      if (cp == detail::kInvalid || cp == 0 || cp == 0xFFFD || detail::bert_is_control(cp))
        continue;
      if (detail::bert_is_whitespace(cp)) {
        text.push_back(' ');
      } else if (options_.tokenize_cjk() && detail::bert_is_cjk(cp)) {
        text.push_back(' ');
        text.push_back(cp);
        text.push_back(' ');
      } else {
        text.push_back(cp);
      }
    }
    // 2. NFC (BertTokenizer normalises before splitting); NFD below makes it moot when stripping.
    if (!strip) detail::nfc(text);
    // 3. Per whitespace-separated word: lower, strip accents, split punctuation.
    std::vector<char32_t> word, piece;
    auto process = [&] {
      if (word.empty()) return;
      if (lower) detail::lower_word(word);
      if (strip) detail::strip_accents(word);
      for (char32_t cp : word) {
        if (detail::bert_is_punctuation(cp)) {
          push_word(piece, words);
          piece.push_back(cp);
          push_word(piece, words);
        } else {
          piece.push_back(cp);
        }
      }
      push_word(piece, words);
      word.clear();
    };
    for (char32_t cp : text) {
      if (cp == ' ') {
        process();
      } else {
        word.push_back(cp);
      }
    }
    process();
  }
  if (special) special->resize(words.size() - before + special->size(), false);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options)
    : basic_(std::move(options)) {
  CONVIRT_CHECK_VALUE(!vocab.empty(), "WordPieceTokenizer: vocab must not be empty");
  auto v = std::make_shared<Vocab>();
  v->tokens = std::move(vocab);
  const std::string& prefix = basic_.options().continuation_prefix();
  v->whole.reserve(v->tokens.size());
  for (std::size_t i = 0; i < v->tokens.size(); ++i) {
    std::string_view t = v->tokens[i];
    // Last one wins for a repeated token, as in BertTokenizer's load_vocab.
    v->whole[t] = static_cast<int64_t>(i);
    v->max_whole_bytes = std::max(v->max_whole_bytes, t.size());
    if (!prefix.empty() && t.size() > prefix.size() && t.substr(0, prefix.size()) == prefix) {
      std::string_view rest = t.substr(prefix.size());
      v->continuation[rest] = static_cast<int64_t>(i);
      v->max_continuation_bytes = std::max(v->max_continuation_bytes, rest.size());
    }
  }
  vocab_ = std::move(v);
  const auto& o = basic_.options();
  unk_id_ = token_to_id(o.unk_token());
  cls_id_ = token_to_id(o.cls_token());
  sep_id_ = token_to_id(o.sep_token());
  pad_id_ = token_to_id(o.pad_token());
  mask_id_ = token_to_id(o.mask_token());
  CONVIRT_CHECK_VALUE(unk_id_ >= 0,
                      "WordPieceTokenizer: the vocabulary must contain the unknown token '",
                      o.unk_token(), "' (", vocab_->tokens.size(), " tokens given)");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path,
                                                       WordPieceOptions options) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "WordPieceTokenizer::from_vocab_file: cannot open '", path, "'");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  CONVIRT_CHECK_VALUE(
      size >= 0 && size <= options.max_vocab_file_bytes(), "WordPieceTokenizer::from_vocab_file: '",
      path, "' is ", static_cast<int64_t>(size), " bytes, more than the limit of ",
      options.max_vocab_file_bytes(), " bytes (WordPieceOptions::max_vocab_file_bytes)");
  in.seekg(0, std::ios::beg);
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  CONVIRT_CHECK_VALUE(!in.bad() && in.gcount() == static_cast<std::streamsize>(size),
                      "WordPieceTokenizer::from_vocab_file: cannot read '", path, "'");
  CONVIRT_CHECK_VALUE(!data.empty(), "WordPieceTokenizer::from_vocab_file: '", path, "' is empty");
  // Lines as Python's universal newlines read them: "\n", "\r\n" and "\r" all end a line.
  std::vector<std::string> tokens;
  std::size_t line = 0;
  for (std::size_t i = 0; i < data.size();) {
    std::size_t j = data.find_first_of("\r\n", i);
    if (j == std::string::npos) j = data.size();
    std::string_view tok(data.data() + i, j - i);
    ++line;
    CONVIRT_CHECK_VALUE(is_valid_utf8_token(tok), "WordPieceTokenizer::from_vocab_file: '", path,
                        "' line ", line, " is not valid UTF-8");
    tokens.emplace_back(tok);
    if (j < data.size() && data[j] == '\r' && j + 1 < data.size() && data[j + 1] == '\n') ++j;
    i = j + 1;
  }
  CONVIRT_CHECK_VALUE(std::find(tokens.begin(), tokens.end(), options.unk_token()) != tokens.end(),
                      "WordPieceTokenizer::from_vocab_file: '", path, "' (", tokens.size(),
                      " tokens) has no unknown token '", options.unk_token(), "'");
  return WordPieceTokenizer(std::move(tokens), std::move(options));
}

bool WordPieceTokenizer::is_valid_utf8_token(std::string_view token) {
  for (std::size_t i = 0; i < token.size();) {
    if (detail::decode_utf8(token, i) == detail::kInvalid) return false;
  }
  return true;
}

void WordPieceTokenizer::save_vocab(const std::string& path) const {
  convirt::text::save_vocab(vocab_->tokens, path);
}

void WordPieceTokenizer::wordpiece(std::string_view word, std::vector<int64_t>& ids) const {
  // Code point boundaries: pieces never split a character, and the length limit counts characters.
  std::vector<std::size_t> bounds;
  bounds.reserve(word.size() + 1);
  for (std::size_t i = 0; i < word.size();) {
    bounds.push_back(i);
    detail::decode_utf8(word, i);
  }
  bounds.push_back(word.size());
  const std::size_t chars = bounds.size() - 1;
  if (static_cast<int64_t>(chars) > options().max_input_chars_per_word()) {
    ids.push_back(unk_id_);
    return;
  }
  const std::size_t mark = ids.size();
  std::size_t start = 0;  // index into bounds
  while (start < chars) {
    const bool first = start == 0;
    const auto& map = first ? vocab_->whole : vocab_->continuation;
    const std::size_t max_bytes = first ? vocab_->max_whole_bytes : vocab_->max_continuation_bytes;
    std::size_t end = chars;
    while (end > start && bounds[end] - bounds[start] > max_bytes) --end;
    int64_t found = -1;
    for (; end > start; --end) {
      auto it = map.find(word.substr(bounds[start], bounds[end] - bounds[start]));
      if (it != map.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      ids.resize(mark);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::encode_into(std::string_view text, std::vector<int64_t>& ids) const {
  std::vector<std::string> words;
  std::vector<bool> special;
  basic_.tokenize_into(text, words, &special);
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (special[i]) {
      int64_t id = token_to_id(words[i]);
      // A special token the vocabulary lacks goes through WordPiece like any word.
      if (id >= 0) {
        ids.push_back(id);
        continue;
      }
    }
    wordpiece(words[i], ids);
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<int64_t> ids;
  encode_into(text, ids);
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int64_t id : ids) pieces.push_back(vocab_->tokens[static_cast<std::size_t>(id)]);
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text, bool add_special_tokens,
                                                int64_t max_length) const {
  std::vector<int64_t> ids;
  if (add_special_tokens) {
    CONVIRT_CHECK_VALUE(cls_id_ >= 0 && sep_id_ >= 0, "WordPieceTokenizer::encode: the vocabulary ",
                        "has no '", options().cls_token(), "' or '", options().sep_token(),
                        "' token; pass add_special_tokens=false");
    CONVIRT_CHECK_VALUE(
        max_length <= 0 || max_length >= 2, "WordPieceTokenizer::encode: max_length ",
        "must be >= 2 to hold [CLS] and [SEP] (or <= 0 for no limit), got ", max_length);
    ids.push_back(cls_id_);
  }
  encode_into(text, ids);
  if (max_length > 0) {
    auto limit = static_cast<std::size_t>(add_special_tokens ? max_length - 1 : max_length);
    if (ids.size() > limit) ids.resize(limit);
  }
  if (add_special_tokens) ids.push_back(sep_id_);
  return ids;
}

std::vector<std::vector<int64_t>> WordPieceTokenizer::encode_many(
    const std::vector<std::string>& texts, bool add_special_tokens, int64_t max_length) const {
  std::vector<std::vector<int64_t>> out(texts.size());
  if (texts.empty()) return out;
  // Validate once on this thread, so that errors are thrown here and not inside a worker.
  (void)encode("", add_special_tokens, max_length);
  int64_t threads = options().num_threads();
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  // Below ~32 texts per thread, starting threads costs more than it saves.
  threads =
      std::min<int64_t>(threads, std::max<int64_t>(1, static_cast<int64_t>(texts.size()) / 32));
  auto work = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      out[i] = encode(texts[i], add_special_tokens, max_length);
  };
  if (threads == 1) {
    work(0, texts.size());
    return out;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(threads));
  const std::size_t chunk = (texts.size() + threads - 1) / threads;
  for (int64_t t = 0; t < threads; ++t) {
    std::size_t begin = std::min(texts.size(), static_cast<std::size_t>(t) * chunk);
    std::size_t end = std::min(texts.size(), begin + chunk);
    pool.emplace_back([&, t, begin, end] {
      try {
        work(begin, end);
      } catch (...) {
        errors[static_cast<std::size_t>(t)] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids,
                                       bool skip_special_tokens) const {
  std::string out;
  const std::string& prefix = options().continuation_prefix();
  for (int64_t id : ids) {
    const std::string& tok = id_to_token(id);
    if (skip_special_tokens &&
        (id == cls_id_ || id == sep_id_ || id == pad_id_ || id == unk_id_ || id == mask_id_)) {
      continue;
    }
    if (!prefix.empty() && tok.size() > prefix.size() &&
        tok.compare(0, prefix.size(), prefix) == 0 && !out.empty()) {
      out.append(tok, prefix.size(), std::string::npos);
    } else {
      if (!out.empty()) out.push_back(' ');
      out += tok;
    }
  }
  return out;
}

int64_t WordPieceTokenizer::token_to_id(std::string_view token) const {
  auto it = vocab_->whole.find(token);
  return it == vocab_->whole.end() ? -1 : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  CONVIRT_CHECK_INDEX(id >= 0 && id < vocab_size(), "WordPieceTokenizer: token id must be in [0, ",
                      vocab_size(), "), got ", id);
  return vocab_->tokens[static_cast<std::size_t>(id)];
}

int64_t WordPieceTokenizer::vocab_size() const {
  return static_cast<int64_t>(vocab_->tokens.size());
}

const std::vector<std::string>& WordPieceTokenizer::vocab() const {
  return vocab_->tokens;
}

// FNV-1a: simple, stable across platforms and versions, and enough to tell vocabularies apart.
std::string vocab_fingerprint(const std::vector<std::string>& vocab) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  };
  for (const auto& token : vocab) {
    for (unsigned char c : token) mix(c);
    mix('\n');
  }
  std::ostringstream os;
  os << std::hex << h;
  return os.str();
}

}  // namespace convirt::text
