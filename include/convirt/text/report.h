#pragma once
// Radiology report text: section extraction (MIMIC-CXR style), whitespace clean-up and the paper's
// "fewer than 3 tokens" filter (paper section 5). Plain C++: no LibTorch types.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace convirt::text {

/// The sections of one report, each cleaned of layout whitespace (see clean_whitespace()).
///
/// Headers are recognised at the start of a line (after optional spaces), followed by ':'. FINDINGS
/// and IMPRESSION are matched case-insensitively with their common variants (FINDING, IMPRESSIONS,
/// CONCLUSION(S), SUMMARY, OPINION, FINAL IMPRESSION); a combined header ("FINDINGS AND
/// IMPRESSION:", "FINDINGS/IMPRESSION:", "IMPRESSION AND FINDINGS:") fills `findings` and sets
/// `combined`. Any other known header (INDICATION, HISTORY, TECHNIQUE, COMPARISON, EXAMINATION, WET
/// READ, ...) or an all-caps header of at least two words or six letters ends the previous section
/// and is kept in `other`. When a target header appears twice, the texts are joined in order.
struct ReportSections {
  std::string findings;
  std::string impression;
  /// Text before the first recognised header (e.g. "FINAL REPORT", or the whole report when it has
  /// no header at all).
  std::string preamble;
  /// The other sections, in order of appearance: (upper-cased header name, cleaned text).
  std::vector<std::pair<std::string, std::string>> other;
  /// True when findings and impression came under one combined header.
  bool combined = false;
  /// True when at least one header of any kind was recognised.
  bool has_headers = false;
};

/// Splits a report into sections.
/// Example:
///   auto s = convirt::text::extract_sections("FINDINGS: Lungs are clear.\nIMPRESSION: Normal.");
///   // s.findings == "Lungs are clear.", s.impression == "Normal."
ReportSections extract_sections(const std::string& report);

/// Where pretraining_text() looks when the report has neither FINDINGS nor IMPRESSION.
enum class MissingSectionFallback {
  /// Use the last non-administrative section (any section other than INDICATION, HISTORY,
  /// TECHNIQUE,
  /// COMPARISON, EXAMINATION, ...), else the preamble; a report without any header is used whole.
  /// This mirrors the MIMIC-CXR authors' "last paragraph" rule.
  kLastSection,
  /// Use the whole report only when it has no header at all; otherwise return "".
  kWholeIfUnstructured,
  /// Always return "" (strict: only FINDINGS and IMPRESSION are ever used).
  kEmpty,
};

/// Options for pretraining_text().
struct ReportTextOptions {
  MissingSectionFallback fallback = MissingSectionFallback::kLastSection;
  /// Drop MIMIC's de-identification placeholder "___" (the surrounding words stay).
  bool remove_deid_placeholders = true;
};

/// The text ConVIRT pretrains on: FINDINGS followed by IMPRESSION (one space between), cleaned;
/// when both are missing, the fallback of `options` (default: last non-administrative section).
/// Example:
///   std::string t = convirt::text::pretraining_text(report_file_contents);
///   if (convirt::text::keep_for_pretraining(t)) { ... }
std::string pretraining_text(const std::string& report, const ReportTextOptions& options = {});

/// Collapses every run of whitespace (ASCII whitespace, NBSP, U+2028/U+2029 and other Unicode
/// spaces) to one ASCII space and trims both ends. Invalid UTF-8 bytes are kept as they are.
/// Example: clean_whitespace("  a\n\n b\t") == "a b"
std::string clean_whitespace(std::string_view text);

/// Number of tokens in the paper's sense: whitespace-separated words that contain at least one
/// letter or digit ("." or "-" alone do not count).
std::size_t count_tokens(std::string_view text);

/// The paper's filter: false when `text` has fewer than `min_tokens` tokens (count_tokens()).
/// Example: keep_for_pretraining("No change.") == false
bool keep_for_pretraining(std::string_view text, std::size_t min_tokens = 3);

/// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
/// U+10FFFF). Dataset readers use it to skip and count samples with invalid report text.
bool is_valid_utf8(std::string_view text);

}  // namespace convirt::text
