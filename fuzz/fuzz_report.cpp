// Report section parsing and clean-up (extract_sections, pretraining_text with every fallback,
// clean_whitespace, count_tokens, is_valid_utf8) on arbitrary bytes.
#include <convirt/text/report.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::text;
  const std::string report(reinterpret_cast<const char*>(data), size);
  convirt::fuzz::expect_clean([&] {
    auto s = extract_sections(report);
    if (s.combined && !s.has_headers) std::abort();
    for (auto fb : {MissingSectionFallback::kLastSection,
                    MissingSectionFallback::kWholeIfUnstructured, MissingSectionFallback::kEmpty}) {
      for (bool deid : {true, false}) {
        ReportTextOptions o;
        o.fallback = fb;
        o.remove_deid_placeholders = deid;
        const std::string t = pretraining_text(report, o);
        keep_for_pretraining(t);
      }
    }
    const std::string clean = clean_whitespace(report);
    // Cleaning is idempotent and never grows the text.
    if (clean.size() > report.size() || clean_whitespace(clean) != clean) std::abort();
    count_tokens(report);
    is_valid_utf8(report);
  });
  return 0;
}
