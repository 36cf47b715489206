// convirt._C.models: the run-time ConVIRT model (make / load / save / export) and the weight
// formats (safetensors, torch.save state dicts, torchvision and Hugging Face layouts). Tensors
// cross as torch.Tensor objects that are the C++ tensors themselves (storage and autograd); the
// pure-Python layer (convirt/models.py) registers them in a torch.nn.Module (ConVIRTModel) and adds
// torchvision and HF conveniences.
#include "bind.h"

#include <convirt/io/checkpoint.h>
#include <convirt/io/hf.h>
#include <convirt/io/safetensors.h>
#include <convirt/io/torch_file.h>
#include <convirt/io/torchvision.h>
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>
#include <convirt/models/registry.h>
#include <convirt/pipeline/model_text.h>

#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;

namespace convirt::python {
namespace {

using Model = models::ConVIRTModelImpl;
using release_gil = py::call_guard<py::gil_scoped_release>;

// Python dicts keep insertion order, so the state dict's order survives the boundary.
py::dict to_dict(const io::StateDict& sd) {
  py::dict d;
  for (const auto& item : sd) d[py::str(item.key())] = item.value();
  return d;
}

io::StateDict from_dict(const py::dict& d) {
  io::StateDict sd;
  for (const auto& kv : d) {
    CONVIRT_CHECK_TYPE(py::isinstance<py::str>(kv.first), "state dict keys must be str");
    sd.insert(kv.first.cast<std::string>(), kv.second.cast<torch::Tensor>());
  }
  return sd;
}

py::dict report_dict(const io::LoadReport& r) {
  py::dict d;
  d["missing_keys"] = r.missing;
  d["unexpected_keys"] = r.unexpected;
  d["skipped_keys"] = r.skipped;
  d["converted_keys"] = r.converted;
  return d;
}

io::HfWeightFormat parse_format(const std::string& name) {
  if (name == "safetensors") return io::HfWeightFormat::kSafetensors;
  if (name == "bin") return io::HfWeightFormat::kPytorchBin;
  CONVIRT_CHECK_VALUE(name == "both", "format must be 'safetensors', 'bin' or 'both', got '", name,
                      "'");
  return io::HfWeightFormat::kBoth;
}

}  // namespace

void bind_models(py::module_& root) {
  auto m = root.def_submodule("models", "ConVIRT models and weight formats");

  py::class_<Model, std::shared_ptr<Model>>(m, "ConVIRTModel",
                                            "A ConVIRT model: image encoder f_v and text encoder "
                                            "f_u with their projection heads (forward gives v, u).")
      .def("encode_image", &Model::encode_image, py::arg("images"), release_gil())
      .def("encode_text", &Model::encode_text, py::arg("input_ids"), py::arg("attention_mask"),
           release_gil())
      .def("forward", &Model::forward, py::arg("images"), py::arg("input_ids"),
           py::arg("attention_mask"), release_gil())
      .def("__call__", &Model::forward, py::arg("images"), py::arg("input_ids"),
           py::arg("attention_mask"), release_gil())
      .def(
          "image_features",
          [](Model& self, const torch::Tensor& x) { return self.image_encoder(x); },
          py::arg("images"), release_gil())
      .def(
          "text_features",
          [](Model& self, const torch::Tensor& ids, const torch::Tensor& mask) {
            return self.text_encoder(ids, mask);
          },
          py::arg("input_ids"), py::arg("attention_mask"), release_gil())
      .def(
          "train", [](Model& self, bool on) { self.train(on); }, py::arg("mode") = true)
      .def("eval", [](Model& self) { self.eval(); })
      .def_property_readonly("training", [](const Model& self) { return self.is_training(); })
      .def("parameters", [](const Model& self) { return self.parameters(); })
      .def("named_parameters",
           [](const Model& self) {
             py::dict d;
             for (const auto& p : self.named_parameters()) d[py::str(p.key())] = p.value();
             return d;
           })
      // The buffers themselves (not copies), so the Python nn.Module can alias them.
      .def("named_buffers",
           [](const Model& self) {
             py::dict d;
             for (const auto& b : self.named_buffers()) d[py::str(b.key())] = b.value();
             return d;
           })
      .def("state_dict", [](const Model& self) { return to_dict(io::module_state_dict(self)); })
      .def(
          "load_state_dict",
          [](Model& self, const py::dict& state, bool strict) {
            return report_dict(io::load_state_dict(self, from_dict(state), strict));
          },
          py::arg("state_dict"), py::arg("strict") = true)
      .def(
          "to", [](Model& self, const std::string& device) { self.to(torch::Device(device)); },
          py::arg("device"))
      .def_property_readonly("config_json",
                             [](const Model& self) { return self.config().to_json(); })
      .def_property_readonly(
          "image_channels", [](const Model& self) { return self.config().image_channels(); },
          "Channels of the images the image encoder takes (ModelConfig::image_channels).")
      .def_property(
          "vocabulary", [](const Model& self) { return self.vocabulary().tokens; },
          [](Model& self, std::vector<std::string> tokens) {
            models::VocabularyRecord r = self.vocabulary();
            r.tokens = std::move(tokens);
            self.set_vocabulary(std::move(r));
          },
          "The tokens the text encoder was trained with, one per id ([] when not recorded); "
          "saved with the model.")
      .def_property(
          "vocabulary_lowercase", [](const Model& self) { return self.vocabulary().lowercase; },
          [](Model& self, bool lowercase) {
            models::VocabularyRecord r = self.vocabulary();
            r.lowercase = lowercase;
            self.set_vocabulary(std::move(r));
          })
      .def_property_readonly("output_dim", &Model::output_dim)
      .def(
          "save", [](const Model& self, const std::string& path) { io::save_convirt(self, path); },
          py::arg("path"), release_gil())
      .def(
          "export_torchvision",
          [](const Model& self, const std::string& path) { io::export_torchvision(self, path); },
          py::arg("path"), release_gil())
      .def(
          "export_hf",
          [](const Model& self, const std::string& dir, const std::string& vocab,
             const std::string& fmt) { io::export_hf(self, dir, vocab, parse_format(fmt)); },
          py::arg("dir"), py::arg("vocab_path") = "", py::arg("format") = "safetensors",
          release_gil());

  m.def(
      "make_convirt",
      [](const std::string& spec) {
        return models::make_convirt(models::config_from(spec, "preset_or_config_json")).ptr();
      },
      py::arg("preset_or_config_json"),
      "A fresh model from a preset name ('paper', 'small'), a ModelConfig JSON text or a .json "
      "file path.");
  m.def(
      "load_convirt", [](const std::string& path) { return io::load_convirt(path).ptr(); },
      py::arg("path"), release_gil());
  m.def(
      "read_convirt_config",
      [](const std::string& path) { return io::read_convirt_config(path).to_json(); },
      py::arg("path"));
  m.def(
      "model_tokenizer",
      [](const Model& model, const std::string& vocab, const std::string& model_path) {
        return text::WordPieceTokenizer(*pipeline::model_tokenizer(model, vocab, model_path));
      },
      py::arg("model"), py::arg("vocab") = "", py::arg("model_path") = "",
      "The model's tokenizer (pipeline::model_tokenizer): its embedded vocabulary, a vocab file "
      "that must hold the same tokens, or for a model without one the file given or beside "
      "model_path.");
  m.def(
      "read_convirt_vocabulary",
      [](const std::string& path) { return io::read_convirt_vocabulary(path).tokens; },
      py::arg("path"), "The vocabulary a checkpoint carries, one token per id ([] if none).");
  m.def(
      "preset_config", [](const std::string& name) { return models::preset(name).to_json(); },
      py::arg("name"), "The ModelConfig JSON of a named preset.");
  m.def(
      "small_preset_config", [](int64_t vocab) { return models::small_preset(vocab).to_json(); },
      py::arg("vocab_size") = 2048);
  m.def("preset_names", &models::preset_names, "Names of the model presets.");
  m.def("image_encoder_names", &models::image_encoder_names);
  m.def("text_encoder_names", &models::text_encoder_names);

  m.def(
      "read_state_dict", [](const std::string& path) { return to_dict(io::read_state_dict(path)); },
      py::arg("path"), "Tensors of a torch.save state_dict file or a safetensors file, by name.");
  m.def(
      "read_safetensors",
      [](const std::string& path) {
        auto f = io::read_safetensors(path);
        return py::make_tuple(to_dict(f.tensors), f.metadata);
      },
      py::arg("path"), "Tensors of a safetensors file, by name.");
  m.def(
      "write_safetensors",
      [](const std::string& path, const py::dict& tensors,
         const std::map<std::string, std::string>& meta) {
        io::write_safetensors(path, from_dict(tensors), meta);
      },
      py::arg("path"), py::arg("tensors"),
      py::arg("metadata") = std::map<std::string, std::string>{},
      "Writes tensors and string metadata as a safetensors file.");
  m.def(
      "write_torch_state_dict",
      [](const std::string& path, const py::dict& tensors) {
        io::write_torch_state_dict(path, from_dict(tensors));
      },
      py::arg("path"), py::arg("tensors"),
      "Writes tensors as a state_dict file that torch.load reads.");
  m.def(
      "read_hf_bert_weights",
      [](const std::string& path) {
        std::vector<std::string> skipped;
        auto sd = io::read_hf_bert_weights(path, &skipped);
        return py::make_tuple(to_dict(sd), skipped);
      },
      py::arg("path"));
  m.def(
      "read_bert_config",
      [](const std::string& path) { return io::read_bert_config(path).to_json(); },
      py::arg("path"));
}

}  // namespace convirt::python
