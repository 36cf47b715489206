#include <convirt/text/report.h>
#include <convirt/text/sentences.h>

#include <c10/util/Exception.h>
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace convirt::text;

namespace {

const char* kMimicReport =
    "                                 FINAL REPORT\n"
    " EXAMINATION:  CHEST (PA AND LAT)\n"
    " \n"
    " INDICATION:  ___F with cough, r/o pneumonia\n"
    " \n"
    " TECHNIQUE:  Chest PA and lateral\n"
    " \n"
    " COMPARISON:  ___\n"
    " \n"
    " FINDINGS: \n"
    " \n"
    " The lungs are clear without focal consolidation.  No pleural effusion or\n"
    " pneumothorax.  Heart size is normal.\n"
    " \n"
    " IMPRESSION: \n"
    " \n"
    " No acute cardiopulmonary process.\n";

}  // namespace

TEST_CASE("extract_sections reads a MIMIC-CXR report", "[text][report]") {
  ReportSections s = extract_sections(kMimicReport);
  CHECK(s.findings ==
        "The lungs are clear without focal consolidation. No pleural effusion or pneumothorax. "
        "Heart size is normal.");
  CHECK(s.impression == "No acute cardiopulmonary process.");
  CHECK(s.preamble == "FINAL REPORT");
  CHECK_FALSE(s.combined);
  CHECK(s.has_headers);
  REQUIRE(s.other.size() == 4);
  CHECK(s.other[0].first == "EXAMINATION");
  CHECK(s.other[0].second == "CHEST (PA AND LAT)");
  CHECK(s.other[1].first == "INDICATION");
  CHECK(s.other[3].first == "COMPARISON");
  CHECK(s.other[3].second == "___");
}

TEST_CASE("extract_sections handles variants, inline headers and repeats", "[text][report]") {
  SECTION("combined header") {
    auto s = extract_sections("INDICATION: fever\nFINDINGS AND IMPRESSION: Small left effusion.");
    CHECK(s.combined);
    CHECK(s.findings == "Small left effusion.");
    CHECK(s.impression.empty());
  }
  SECTION("slash combined header, lower case") {
    auto s = extract_sections("Findings/Impression: Clear lungs.");
    CHECK(s.combined);
    CHECK(s.findings == "Clear lungs.");
  }
  SECTION("conclusion counts as impression") {
    auto s = extract_sections("Findings: Mild edema.\nCONCLUSION: Edema.");
    CHECK(s.findings == "Mild edema.");
    CHECK(s.impression == "Edema.");
  }
  SECTION("header after a sentence on the same line") {
    auto s = extract_sections("FINDINGS: Lungs clear. IMPRESSION: Normal chest.");
    CHECK(s.findings == "Lungs clear.");
    CHECK(s.impression == "Normal chest.");
  }
  SECTION("prose with a colon is not a header") {
    auto s = extract_sections("FINDINGS: Tubes: ETT 4 cm above the carina.\nNote: stable.");
    CHECK(s.findings == "Tubes: ETT 4 cm above the carina. Note: stable.");
    CHECK(s.other.empty());
  }
  SECTION("unknown all-caps header ends a section") {
    auto s = extract_sections("FINDINGS: Clear.\nPORTABLE VIEW: one image.\nIMPRESSION: Normal.");
    CHECK(s.findings == "Clear.");
    REQUIRE(s.other.size() == 1);
    CHECK(s.other[0].first == "PORTABLE VIEW");
    CHECK(s.impression == "Normal.");
  }
  SECTION("repeated impression is joined") {
    auto s = extract_sections("IMPRESSION: One.\nIMPRESSION: Two.");
    CHECK(s.impression == "One. Two.");
  }
  SECTION("empty and header-less input") {
    auto e = extract_sections("");
    CHECK(e.findings.empty());
    CHECK_FALSE(e.has_headers);
    auto p = extract_sections("  Lungs are clear.\n\n ");
    CHECK(p.preamble == "Lungs are clear.");
  }
}

TEST_CASE("pretraining_text joins findings and impression and falls back", "[text][report]") {
  CHECK(pretraining_text(kMimicReport) ==
        "The lungs are clear without focal consolidation. No pleural effusion or pneumothorax. "
        "Heart size is normal. No acute cardiopulmonary process.");
  const std::string no_targets =
      "FINAL REPORT\nINDICATION: cough\nCOMPARISON: none\nPA AND LATERAL CHEST: Heart is normal "
      "in size. Lungs are clear.\nRECOMMENDATION(S): none";
  CHECK(extract_sections(no_targets).other.back().first == "RECOMMENDATIONS");
  CHECK(pretraining_text(no_targets) == "Heart is normal in size. Lungs are clear.");
  ReportTextOptions strict;
  strict.fallback = MissingSectionFallback::kEmpty;
  CHECK(pretraining_text(no_targets, strict).empty());
  ReportTextOptions unstructured;
  unstructured.fallback = MissingSectionFallback::kWholeIfUnstructured;
  CHECK(pretraining_text(no_targets, unstructured).empty());
  CHECK(pretraining_text("Small  right\neffusion.", unstructured) == "Small right effusion.");
  CHECK(pretraining_text("FINAL REPORT\nINDICATION: cough").empty());
  CHECK(pretraining_text("FINDINGS: Compared to ___ the effusion is smaller.") ==
        "Compared to the effusion is smaller.");
  ReportTextOptions keep;
  keep.remove_deid_placeholders = false;
  CHECK(pretraining_text("FINDINGS: Compared to ___ no change.", keep) ==
        "Compared to ___ no change.");
}

TEST_CASE("clean_whitespace, count_tokens and the 3-token filter", "[text][report]") {
  CHECK(clean_whitespace("  a\n\n b\t c ") == "a b c");
  CHECK(clean_whitespace("a\xC2\xA0\xE2\x80\xA8 b") == "a b");  // NBSP and LINE SEPARATOR
  CHECK(clean_whitespace("") == "");
  CHECK(clean_whitespace("\xFF x") == "\xFF x");  // invalid bytes are kept, not dropped
  CHECK(count_tokens("No change .") == 2);
  CHECK(count_tokens("- 2.5 cm") == 2);
  CHECK(count_tokens("caf\xC3\xA9 au lait") == 3);
  CHECK_FALSE(keep_for_pretraining("No change."));
  CHECK(keep_for_pretraining("No acute process."));
  CHECK_FALSE(keep_for_pretraining(""));
  CHECK(keep_for_pretraining("a b", 2));
}

TEST_CASE("is_valid_utf8 follows Unicode's well-formedness table", "[text][report]") {
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE4\xB8"));          // truncated
  CHECK_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
}

TEST_CASE("split_sentences survives report text", "[text][sentences]") {
  using V = std::vector<std::string>;
  CHECK(split_sentences("Lungs are clear. No effusion. Heart normal.") ==
        V{"Lungs are clear.", "No effusion.", "Heart normal."});
  CHECK(split_sentences("Nodule measures 2.5 cm. Stable since 1.2.") ==
        V{"Nodule measures 2.5 cm.", "Stable since 1.2."});
  CHECK(split_sentences("1. Mild edema, 2.5 cm. 2. No effusion.") ==
        V{"Mild edema, 2.5 cm.", "No effusion."});
  CHECK(split_sentences("1. Cardiomegaly 2. Small left effusion 3. No pneumothorax") ==
        V{"Cardiomegaly", "Small left effusion", "No pneumothorax"});
  CHECK(split_sentences("IMPRESSION:\n1. Edema.\n2. Effusion\n3) Atelectasis") ==
        V{"IMPRESSION:", "Edema.", "Effusion", "Atelectasis"});
  CHECK(split_sentences("The heart is\nmildly enlarged. Lungs\nare clear.") ==
        V{"The heart is mildly enlarged.", "Lungs are clear."});
  CHECK(split_sentences("Lungs are clear\n\nHeart is normal") ==
        V{"Lungs are clear", "Heart is normal"});
  CHECK(split_sentences("Discussed with Dr. Smith at 3 p.m. on the phone. Findings e.g. edema "
                        "vs. effusion. See fig. 2.") ==
        V{"Discussed with Dr. Smith at 3 p.m. on the phone.", "Findings e.g. edema vs. effusion.",
          "See fig. 2."});
  CHECK(split_sentences("Is there a pneumothorax? No! (See prior.) Stable.") ==
        V{"Is there a pneumothorax?", "No!", "(See prior.)", "Stable."});
  CHECK(split_sentences("Lungs are clear.No effusion.") == V{"Lungs are clear.", "No effusion."});
  CHECK(split_sentences("- Line in SVC.\n- Tube removed.") == V{"Line in SVC.", "Tube removed."});
  CHECK(split_sentences("There is no.  ___ .  .") == V{"There is no."});
  CHECK(split_sentences("").empty());
  CHECK(split_sentences(" \n \n").empty());
  SentenceSplitOptions keep;
  keep.strip_list_markers = false;
  CHECK(split_sentences("1. Edema. 2. Effusion.", keep) == V{"1. Edema.", "2. Effusion."});
}

TEST_CASE("sentence sampling is uniform and a pure function of its keys", "[text][sentences]") {
  CHECK_THROWS_AS(sample_sentence_index(0, 1, 2, 3), c10::ValueError);
  SentenceSampler sampler(7);
  std::vector<std::string> one{"only"};
  CHECK(sampler.sample(one, 3, 4) == "only");
  CHECK_THROWS_AS(sampler.sample({}, 0, 0), c10::ValueError);
  // Same keys, same draw; different seed, different sequence.
  CHECK(sample_sentence_index(6, 1, 2, 3) == sample_sentence_index(6, 1, 2, 3));
  int differ = 0;
  for (std::uint64_t step = 0; step < 100; ++step) {
    differ += sample_sentence_index(6, 1, 0, step) != sample_sentence_index(6, 2, 0, step);
  }
  CHECK(differ > 60);
  // Chi-square against uniform over 6 sentences, 60000 draws across examples and steps.
  std::vector<int> counts(6, 0);
  for (std::uint64_t ex = 0; ex < 600; ++ex) {
    for (std::uint64_t step = 0; step < 100; ++step)
      ++counts[sample_sentence_index(6, 42, ex, step)];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - 10000.0) * (c - 10000.0) / 10000.0;
  CHECK(chi2 < 20.5);  // p = 0.001 for 5 degrees of freedom
}
