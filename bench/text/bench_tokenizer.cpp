// Tokenizer throughput (sentences/s) on report-like sentences: convirt's WordPieceTokenizer on 1
// and on all cores, against a transcription of Hugging Face's pure-Python BertTokenizer (the slow
// tokenizer, tests/python/bert_reference.py) on the same sentences, measured in one run.
//
// Usage: bench_tokenizer [vocab.txt] [num_sentences]
#include <convirt/text/wordpiece.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::string> report_sentences(std::size_t n) {
  const std::vector<std::string> subjects = {"The lungs are",
                                             "Heart size is",
                                             "There is a small left pleural effusion which is",
                                             "Mild pulmonary vascular congestion is",
                                             "The cardiomediastinal silhouette is",
                                             "Bibasilar atelectasis is",
                                             "A right-sided PICC line terminates in the SVC and is",
                                             "Patchy opacity in the right lower lobe is",
                                             "No pneumothorax is",
                                             "The osseous structures are"};
  const std::vector<std::string> states = {
      "clear.",
      "normal.",
      "unchanged since the prior study.",
      "slightly improved, measuring 2.5 cm.",
      "new compared to ___.",
      "within normal limits; no acute process.",
      "concerning for pneumonia (clinical correlation recommended).",
      "stable in position.",
      "likely atelectasis versus consolidation.",
      "not significantly changed."};
  std::mt19937 rng(1234);
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(subjects[rng() % subjects.size()] + " " + states[rng() % states.size()]);
  }
  return out;
}

template <typename Fn>
double median_seconds(int reps, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto s = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string vocab = argc > 1 ? argv[1] : CONVIRT_TEST_DATA_DIR "/bert-base-uncased-vocab.txt";
  std::size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  auto sentences = report_sentences(n);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  using convirt::text::WordPieceOptions;
  using convirt::text::WordPieceTokenizer;
  auto tok1 = WordPieceTokenizer::from_vocab_file(vocab, WordPieceOptions().num_threads(1));
  auto tokn = WordPieceTokenizer::from_vocab_file(vocab, WordPieceOptions().num_threads(cores));
  std::size_t checksum = 0;
  double t1 = median_seconds(5, [&] { checksum += tok1.encode_many(sentences, true, 128).size(); });
  double tn = median_seconds(5, [&] { checksum += tokn.encode_many(sentences, true, 128).size(); });
  double tb =
      median_seconds(5, [&] { checksum += tokn.encode_batch(sentences, 128).lengths.size(); });

  // The Python reference on the same sentences, single-threaded like BertTokenizer.
  double tpy = -1;
  const std::string ref = CONVIRT_SOURCE_DIR "/tests/python";
  auto dir =
      std::filesystem::temp_directory_path() / ("convirt-bench-text-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "sentences.txt");
    for (const auto& s : sentences) f << s << '\n';
  }
  std::string script =
      "import sys, time; sys.path.insert(0, '" + ref +
      "'); import bert_reference as b\n"
      "t = b.BertTokenizer('" +
      vocab +
      "')\n"
      "lines = open('" +
      (dir / "sentences.txt").string() +
      "').read().splitlines()\n"
      "s = time.perf_counter(); [t.encode(x, 128) for x in lines]; e = time.perf_counter()\n"
      "open('" +
      (dir / "py.txt").string() + "', 'w').write(str(e - s))\n";
  {
    std::ofstream f(dir / "bench.py");
    f << script;
  }
  if (std::system(("/usr/bin/python3 " + (dir / "bench.py").string() + " 2>/dev/null").c_str()) ==
      0) {
    std::ifstream f(dir / "py.txt");
    f >> tpy;
  }
  std::filesystem::remove_all(dir);

  std::printf(
      "tokenizer throughput, %zu report-like sentences, bert-base-uncased vocab, %d cores\n", n,
      cores);
  std::printf("%-44s %12s %16s %10s\n", "side", "median s", "sentences/s", "ratio");
  auto row = [&](const char* name, double t) {
    std::printf("%-44s %12.4f %16.0f %10.1fx\n", name, t, n / t, tpy > 0 ? tpy / t : 0.0);
  };
  if (tpy > 0) row("python BertTokenizer transcription (1 thread)", tpy);
  row("convirt encode_many, 1 thread", t1);
  row(("convirt encode_many, " + std::to_string(cores) + " threads").c_str(), tn);
  row(("convirt encode_batch -> tensors, " + std::to_string(cores) + " thr").c_str(), tb);
  if (tpy <= 0) std::printf("(python reference unavailable: ratio column is 0)\n");
  return checksum == 0 ? 1 : 0;
}
