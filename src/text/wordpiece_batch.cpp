// The one tokenizer source that builds tensors.
#include <convirt/core/check.h>
#include <convirt/text/wordpiece.h>

#include <ATen/Functions.h>

#include <algorithm>
#include <cstring>

namespace convirt::text {

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                               int64_t max_length) const {
  return encode_batch(texts, max_length, options().padding());
}

BatchEncoding WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                               int64_t max_length, Padding padding) const {
  if (max_length <= 0) max_length = options().max_length();
  CONVIRT_CHECK_VALUE(max_length >= 2, "WordPieceTokenizer::encode_batch: max_length must be >= 2 ",
                      "to hold [CLS] and [SEP], got ", max_length);
  CONVIRT_CHECK_VALUE(pad_id_ >= 0, "WordPieceTokenizer::encode_batch: the vocabulary has no pad ",
                      "token '", options().pad_token(), "'");
  std::vector<std::vector<int64_t>> rows = encode_many(texts, true, max_length);
  int64_t width = max_length;
  if (padding == Padding::kLongest) {
    width = 2;  // an empty text still encodes to [CLS] [SEP]
    for (const auto& r : rows) width = std::max<int64_t>(width, static_cast<int64_t>(r.size()));
  }
  const auto batch = static_cast<int64_t>(rows.size());
  BatchEncoding out;
  out.input_ids = at::full({batch, width}, pad_id_, at::kLong);
  out.attention_mask = at::zeros({batch, width}, at::kLong);
  out.token_type_ids = at::zeros({batch, width}, at::kLong);
  out.lengths.reserve(rows.size());
  int64_t* ids = out.input_ids.data_ptr<int64_t>();
  int64_t* mask = out.attention_mask.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const auto& r = rows[static_cast<std::size_t>(b)];
    std::memcpy(ids + b * width, r.data(), r.size() * sizeof(int64_t));
    std::fill(mask + b * width, mask + b * width + static_cast<int64_t>(r.size()), int64_t{1});
    out.lengths.push_back(static_cast<int64_t>(r.size()));
  }
  return out;
}

}  // namespace convirt::text
