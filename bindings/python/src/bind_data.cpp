// convirt._C.data: the dataset readers, label-fraction subsets, the threaded loader and the
// synthetic generator. Samples cross as dicts of tensors and strings; decoding runs with the GIL
// released. A transform is a native convirt transform (run without the GIL) or any Python callable
// (image, seed) -> image (run with the GIL re-acquired).
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/datasets/labeled.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/datasets/paired.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/datasets/rsna.h>
#include <convirt/data/loader.h>
#include <convirt/data/subsets.h>
#include <convirt/data/synthetic/generator.h>
#include <convirt/image/transforms.h>

#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace py = pybind11;
namespace cd = convirt::data;
namespace ci = convirt::image;
namespace syn = convirt::data::synthetic;

namespace convirt::python {
namespace {

std::string type_name(const py::handle& obj) {
  return std::string(py::str(py::type::of(obj).attr("__name__")));
}

// The C++ transform a Python argument stands for. convirt.transforms objects expose their native
// transform as `.native`; those run entirely in C++. Any other callable is called as
// f(image, seed) with the GIL held, so it works but serialises the loader's workers.
cd::ImageTransform to_transform(const py::object& transform) {
  if (transform.is_none()) return {};
  py::object obj = transform;
  if (!py::isinstance<ci::Transform>(obj) && py::hasattr(obj, "native")) obj = obj.attr("native");
  if (py::isinstance<ci::Transform>(obj)) {
    auto native = obj.cast<std::shared_ptr<ci::Transform>>();
    return [native](const at::Tensor& image, uint64_t seed) { return (*native)(image, seed); };
  }
  CONVIRT_CHECK_TYPE(PyCallable_Check(transform.ptr()) != 0,
                     "transform must be a convirt transform, a callable (image, seed) -> image or "
                     "None, got ",
                     type_name(transform));
  // The dataset may be destroyed on any thread, with or without the GIL: the deleter takes it.
  std::shared_ptr<py::object> fn(new py::object(transform), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
  return [fn](const at::Tensor& image, uint64_t seed) {
    py::gil_scoped_acquire gil;
    py::object out = (*fn)(image, seed);
    try {
      return out.cast<at::Tensor>();
    } catch (const py::cast_error&) {
      CONVIRT_CHECK_TYPE(false, "transform must return a torch.Tensor, got ", type_name(out));
    }
    return at::Tensor();  // unreachable: the check above throws
  };
}

py::object optional_tensor(const at::Tensor& t) {
  if (!t.defined()) return py::none();
  return py::cast(t);
}

py::dict example_dict(const cd::Example& e) {
  py::dict d;
  d["image"] = e.image;
  d["text"] = e.text;
  d["labels"] = optional_tensor(e.labels);
  d["mask"] = optional_tensor(e.mask);
  d["study"] = e.study;
  d["patient"] = e.patient;
  d["path"] = e.path;
  d["index"] = e.index;
  return d;
}

py::dict batch_dict(const cd::Batch& b) {
  py::dict d;
  d["images"] = b.images;
  d["texts"] = b.texts;
  d["labels"] = optional_tensor(b.labels);
  d["mask"] = optional_tensor(b.mask);
  d["studies"] = b.studies;
  d["patients"] = b.patients;
  d["paths"] = b.paths;
  d["indices"] = b.indices;
  d["epoch"] = b.epoch;
  d["step"] = b.step;
  return d;
}

py::list bad_samples_list(const cd::BadSampleLog& log) {
  py::list out;
  for (const auto& s : log.entries()) {
    py::dict d;
    d["index"] = s.index;
    d["path"] = s.path;
    d["reason"] = s.reason;
    out.append(d);
  }
  return out;
}

// The reading options every file-backed dataset has, from the keywords of the same names.
template <typename Options>
void set_reading(Options& opts, const py::object& transform, int64_t channels,
                 double max_bad_fraction, bool skip_bad_rows) {
  opts.transform(to_transform(transform))
      .channels(channels)
      .max_bad_fraction(max_bad_fraction)
      .skip_bad_rows(skip_bad_rows);
}

cd::ReportPolicy report_policy(bool sections_only, int64_t min_tokens) {
  cd::ReportPolicy p;
  p.sections_only = sections_only;
  p.min_tokens = min_tokens;
  return p;
}

// The loader's worker threads may be inside a Python transform waiting for the GIL: stopping them
// (in the destructor) must happen with the GIL released, or both sides wait forever.
struct LoaderHandle {
  std::unique_ptr<cd::Loader> loader;
  LoaderHandle(std::shared_ptr<const cd::Dataset> dataset, cd::LoaderOptions options) {
    py::gil_scoped_release release;
    loader = std::make_unique<cd::Loader>(std::move(dataset), std::move(options));
  }
  ~LoaderHandle() { close(); }
  void close() {
    if (!loader) return;
    if (PyGILState_Check() != 0) {
      py::gil_scoped_release release;
      loader.reset();
    } else {
      loader.reset();
    }
  }
  cd::Loader& get() {
    CONVIRT_CHECK(loader != nullptr, "the loader is closed");
    return *loader;
  }
};

syn::SyntheticOptions synthetic_options(const py::dict& kwargs) {
  syn::SyntheticOptions o;
  for (const auto& [key_handle, value] : kwargs) {
    const auto key = key_handle.cast<std::string>();
    if (key == "train_studies") {
      o.train_studies(value.cast<int64_t>());
    } else if (key == "validate_studies") {
      o.validate_studies(value.cast<int64_t>());
    } else if (key == "test_studies") {
      o.test_studies(value.cast<int64_t>());
    } else if (key == "lateral_fraction") {
      o.lateral_fraction(value.cast<double>());
    } else if (key == "chexpert_train") {
      o.chexpert_train(value.cast<int64_t>());
    } else if (key == "chexpert_valid") {
      o.chexpert_valid(value.cast<int64_t>());
    } else if (key == "retrieval_candidates") {
      o.retrieval_candidates(value.cast<int64_t>());
    } else if (key == "retrieval_image_queries") {
      o.retrieval_image_queries(value.cast<int64_t>());
    } else if (key == "retrieval_text_queries") {
      o.retrieval_text_queries(value.cast<int64_t>());
    } else if (key == "image_size") {
      o.image_size(value.cast<int64_t>());
    } else if (key == "image_format") {
      o.image_format(value.cast<std::string>());
    } else if (key == "difficulty") {
      o.difficulty(value.cast<double>());
    } else if (key == "prevalence") {
      o.prevalence(value.cast<double>());
    } else if (key == "uncertain_fraction") {
      o.uncertain_fraction(value.cast<double>());
    } else if (key == "device_fraction") {
      o.device_fraction(value.cast<double>());
    } else if (key == "seed") {
      o.seed(value.cast<uint64_t>());
    } else if (key == "threads") {
      o.threads(value.cast<int64_t>());
    } else {
      CONVIRT_CHECK_VALUE(false, "synthetic option '", key,
                          "' is unknown; known: train_studies, validate_studies, test_studies, "
                          "lateral_fraction, chexpert_train, chexpert_valid, retrieval_candidates, "
                          "retrieval_image_queries, retrieval_text_queries, image_size, "
                          "image_format, difficulty, prevalence, uncertain_fraction, "
                          "device_fraction, seed, threads");
    }
  }
  return o;
}

py::dict summary_dict(const syn::SyntheticSummary& s) {
  py::dict d;
  d["root"] = s.root;
  d["mimic_root"] = s.mimic_root;
  d["chexpert_root"] = s.chexpert_root;
  d["chexpert_train_csv"] = s.chexpert_train_csv;
  d["chexpert_valid_csv"] = s.chexpert_valid_csv;
  d["retrieval_dir"] = s.retrieval_dir;
  d["studies"] = s.studies;
  d["mimic_images"] = s.mimic_images;
  d["chexpert_images"] = s.chexpert_images;
  d["retrieval_images"] = s.retrieval_images;
  d["text_queries"] = s.text_queries;
  return d;
}

void bind_datasets(py::module_& m) {
  py::class_<cd::Dataset, std::shared_ptr<cd::Dataset>>(
      m, "Dataset", "Base of the readers: get(index, seed) -> dict, len(), labels().")
      .def("__len__", &cd::Dataset::size)
      .def("size", &cd::Dataset::size)
      .def(
          "get",
          [](const cd::Dataset& ds, int64_t index, uint64_t seed) {
            cd::Example e;
            {
              py::gil_scoped_release release;
              e = ds.get(index, seed);
            }
            return example_dict(e);
          },
          py::arg("index"), py::arg("seed") = 0,
          "Sample `index` as a dict; everything random in it is drawn from `seed`.")
      .def("source", &cd::Dataset::source, py::arg("index"))
      .def("label_names", &cd::Dataset::label_names)
      .def("labels", [](const cd::Dataset& ds) { return optional_tensor(ds.labels()); })
      .def("skipped", [](const cd::Dataset& ds) { return bad_samples_list(ds.skipped()); })
      .def("skipped_summary", [](const cd::Dataset& ds) { return ds.skipped().summary(); });

  py::class_<cd::PairedDataset, cd::Dataset, std::shared_ptr<cd::PairedDataset>>(m, "PairedDataset")
      .def(py::init(
               [](const std::vector<std::tuple<std::vector<std::string>, std::vector<std::string>,
                                               std::string, std::string>>& records,
                  const py::object& transform, int64_t channels) {
                 std::vector<cd::PairRecord> rs;
                 for (const auto& [images, sentences, study, patient] : records) {
                   rs.push_back({images, sentences, study, patient});
                 }
                 return std::make_shared<cd::PairedDataset>(std::move(rs), to_transform(transform),
                                                            channels);
               }),
           py::arg("records"), py::arg("transform") = py::none(), py::arg("channels") = 3,
           "records: (image paths, sentences, study, patient) per study.")
      .def("num_images", &cd::PairedDataset::num_images)
      .def("records", [](const cd::PairedDataset& ds) {
        py::list out;
        for (const auto& r : ds.records()) {
          out.append(py::make_tuple(r.images, r.sentences, r.study, r.patient));
        }
        return out;
      });

  py::class_<cd::MimicCxrDataset, cd::PairedDataset, std::shared_ptr<cd::MimicCxrDataset>>(
      m, "MimicCxrDataset")
      .def(py::init([](const std::string& root, const std::string& split, bool frontal_only,
                       const std::vector<std::string>& frontal_views,
                       const std::string& reports_dir, const std::string& image_extension,
                       bool sections_only, int64_t min_tokens, const py::object& transform,
                       int64_t channels, double max_bad_fraction, bool skip_bad_rows) {
             auto opts = cd::MimicCxrOptions()
                             .split(split)
                             .frontal_only(frontal_only)
                             .frontal_views(frontal_views)
                             .reports_dir(reports_dir)
                             .image_extension(image_extension)
                             .report_policy(report_policy(sections_only, min_tokens));
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::MimicCxrDataset>(root, std::move(opts));
           }),
           py::arg("root"), py::arg("split") = "train", py::arg("frontal_only") = false,
           py::arg("frontal_views") = std::vector<std::string>{"PA", "AP"},
           py::arg("reports_dir") = "", py::arg("image_extension") = ".jpg",
           py::arg("sections_only") = true, py::arg("min_tokens") = 3,
           py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false);

  py::class_<cd::CsvPairsDataset, cd::PairedDataset, std::shared_ptr<cd::CsvPairsDataset>>(
      m, "CsvPairsDataset")
      .def(py::init([](const std::string& csv_path, const std::string& image_column,
                       const std::string& path_separator, const std::string& text_column,
                       const std::string& report_file_column, const std::string& study_column,
                       const std::string& patient_column, const std::string& root,
                       bool sections_only, int64_t min_tokens, const py::object& transform,
                       int64_t channels, double max_bad_fraction, bool skip_bad_rows) {
             auto opts = cd::CsvPairsOptions()
                             .image_column(image_column)
                             .path_separator(path_separator)
                             .text_column(text_column)
                             .report_file_column(report_file_column)
                             .study_column(study_column)
                             .patient_column(patient_column)
                             .root(root)
                             .report_policy(report_policy(sections_only, min_tokens));
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::CsvPairsDataset>(csv_path, std::move(opts));
           }),
           py::arg("csv_path"), py::arg("image_column") = "image", py::arg("path_separator") = ";",
           py::arg("text_column") = "text", py::arg("report_file_column") = "report_file",
           py::arg("study_column") = "study", py::arg("patient_column") = "patient",
           py::arg("root") = "", py::arg("sections_only") = true, py::arg("min_tokens") = 3,
           py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false);

  py::class_<cd::LabeledDataset, cd::Dataset, std::shared_ptr<cd::LabeledDataset>>(m,
                                                                                   "LabeledDataset")
      .def(py::init(
               [](const std::vector<std::tuple<std::string, std::vector<float>, std::vector<float>,
                                               std::string, std::string>>& records,
                  const std::vector<std::string>& label_names, const py::object& transform,
                  int64_t channels) {
                 std::vector<cd::LabeledRecord> rs;
                 for (const auto& [image, labels, mask, study, patient] : records) {
                   rs.push_back({image, labels, mask, study, patient});
                 }
                 return std::make_shared<cd::LabeledDataset>(std::move(rs), label_names,
                                                             to_transform(transform), channels);
               }),
           py::arg("records"), py::arg("label_names"), py::arg("transform") = py::none(),
           py::arg("channels") = 3,
           "records: (image path, labels, mask (empty: all known), study, patient) per sample.")
      .def("masks", &cd::LabeledDataset::masks)
      .def(
          "set_transform",
          [](cd::LabeledDataset& ds, const py::object& transform) {
            ds.set_transform(to_transform(transform));
          },
          py::arg("transform"))
      .def("records", [](const cd::LabeledDataset& ds) {
        py::list out;
        for (const auto& r : ds.records()) {
          out.append(py::make_tuple(r.image, r.labels, r.mask, r.study, r.patient));
        }
        return out;
      });

  py::class_<cd::ChexpertDataset, cd::LabeledDataset, std::shared_ptr<cd::ChexpertDataset>>(
      m, "ChexpertDataset")
      .def(py::init([](const std::string& csv_path, const std::vector<std::string>& labels,
                       const std::string& uncertain, bool blank_is_negative, bool frontal_only,
                       const std::string& image_root, const py::object& transform, int64_t channels,
                       double max_bad_fraction, bool skip_bad_rows) {
             auto opts = cd::ChexpertOptions()
                             .labels(labels)
                             .uncertain(cd::parse_uncertain_policy(uncertain))
                             .blank_is_negative(blank_is_negative)
                             .frontal_only(frontal_only)
                             .image_root(image_root);
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::ChexpertDataset>(csv_path, std::move(opts));
           }),
           py::arg("csv_path"), py::arg("labels") = cd::chexpert_paper_labels(),
           py::arg("uncertain") = "zeros", py::arg("blank_is_negative") = true,
           py::arg("frontal_only") = false, py::arg("image_root") = "",
           py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false);

  py::class_<cd::RsnaDataset, cd::LabeledDataset, std::shared_ptr<cd::RsnaDataset>>(m,
                                                                                    "RsnaDataset")
      .def(py::init([](const std::string& root, const std::string& labels_csv,
                       const std::string& images_dir, const std::string& extension,
                       const py::object& transform, int64_t channels, double max_bad_fraction,
                       bool skip_bad_rows) {
             auto opts = cd::RsnaOptions()
                             .labels_csv(labels_csv)
                             .images_dir(images_dir)
                             .extension(extension);
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::RsnaDataset>(root, std::move(opts));
           }),
           py::arg("root"), py::arg("labels_csv") = "stage_2_train_labels.csv",
           py::arg("images_dir") = "stage_2_train_images", py::arg("extension") = ".dcm",
           py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false);

  py::class_<cd::CovidxDataset, cd::LabeledDataset, std::shared_ptr<cd::CovidxDataset>>(
      m, "CovidxDataset")
      .def(py::init([](const std::string& root, const std::string& split_file,
                       const std::vector<std::string>& classes, const std::string& images_dir,
                       const py::object& transform, int64_t channels, double max_bad_fraction,
                       bool skip_bad_rows) {
             auto opts = cd::CovidxOptions().classes(classes).images_dir(images_dir);
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::CovidxDataset>(root, split_file, std::move(opts));
           }),
           py::arg("root"), py::arg("split_file") = "train.txt",
           py::arg("classes") = std::vector<std::string>{"COVID-19", "pneumonia", "normal"},
           py::arg("images_dir") = "", py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false);

  py::class_<cd::MuraDataset, cd::LabeledDataset, std::shared_ptr<cd::MuraDataset>>(m,
                                                                                    "MuraDataset")
      .def(py::init([](const std::string& root, const std::string& split,
                       const py::object& transform, int64_t channels, double max_bad_fraction,
                       bool skip_bad_rows) {
             auto opts = cd::MuraOptions();
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::MuraDataset>(root, split, std::move(opts));
           }),
           py::arg("root"), py::arg("split") = "train", py::arg("transform") = py::none(),
           py::arg("channels") = 3, py::arg("max_bad_fraction") = 0.05,
           py::arg("skip_bad_rows") = false);

  py::class_<cd::SubsetDataset, cd::Dataset, std::shared_ptr<cd::SubsetDataset>>(m, "SubsetDataset")
      .def(py::init([](std::shared_ptr<cd::Dataset> base, std::vector<int64_t> indices) {
             return std::make_shared<cd::SubsetDataset>(std::move(base), std::move(indices));
           }),
           py::arg("base"), py::arg("indices"))
      .def_property_readonly("indices", &cd::SubsetDataset::indices)
      .def_property_readonly("base", [](const cd::SubsetDataset& s) {
        return std::const_pointer_cast<cd::Dataset>(s.base());
      });

  py::class_<cd::RetrievalSet, std::shared_ptr<cd::RetrievalSet>>(
      m, "RetrievalSet", "The CheXpert 8x200-style zero-shot retrieval set.")
      .def(py::init([](const std::string& dir, const std::vector<std::string>& categories,
                       const std::string& image_root, const py::object& transform, int64_t channels,
                       double max_bad_fraction, bool skip_bad_rows) {
             auto opts = cd::RetrievalOptions().categories(categories).image_root(image_root);
             set_reading(opts, transform, channels, max_bad_fraction, skip_bad_rows);
             py::gil_scoped_release release;
             return std::make_shared<cd::RetrievalSet>(dir, std::move(opts));
           }),
           py::arg("dir"), py::arg("categories") = cd::retrieval_categories(),
           py::arg("image_root") = "", py::arg("transform") = py::none(), py::arg("channels") = 3,
           py::arg("max_bad_fraction") = 0.05, py::arg("skip_bad_rows") = false)
      .def_property_readonly("categories", &cd::RetrievalSet::categories)
      .def_property_readonly("candidates", &cd::RetrievalSet::candidates)
      .def_property_readonly("image_queries", &cd::RetrievalSet::image_queries)
      .def_property_readonly("text_candidates", &cd::RetrievalSet::text_candidates)
      .def_property_readonly("text_queries", [](const cd::RetrievalSet& s) {
        py::list out;
        for (const auto& q : s.text_queries()) {
          out.append(py::make_tuple(q.category, q.category_name, q.text));
        }
        return out;
      });
}

void bind_loader(py::module_& m) {
  py::class_<LoaderHandle>(m, "Loader",
                           "Worker threads decoding batches ahead; the order is a pure function "
                           "of (seed, epoch, step, rank, world_size).")
      .def(py::init([](std::shared_ptr<cd::Dataset> dataset, int64_t batch_size, bool shuffle,
                       bool drop_last, uint64_t seed, int64_t workers, int64_t prefetch,
                       int64_t rank, int64_t world_size, double max_bad_fraction) {
             CONVIRT_CHECK_TYPE(dataset != nullptr, "dataset must be a convirt dataset, got None");
             auto opts = cd::LoaderOptions()
                             .batch_size(batch_size)
                             .shuffle(shuffle)
                             .drop_last(drop_last)
                             .seed(seed)
                             .workers(workers)
                             .prefetch(prefetch)
                             .rank(rank)
                             .world_size(world_size)
                             .max_bad_fraction(max_bad_fraction);
             return std::make_unique<LoaderHandle>(std::move(dataset), std::move(opts));
           }),
           py::arg("dataset"), py::arg("batch_size") = 32, py::arg("shuffle") = true,
           py::arg("drop_last") = false, py::arg("seed") = 0, py::arg("workers") = 2,
           py::arg("prefetch") = 4, py::arg("rank") = 0, py::arg("world_size") = 1,
           py::arg("max_bad_fraction") = 0.01)
      .def(
          "next",
          [](LoaderHandle& h) -> py::object {
            auto& loader = h.get();
            std::optional<cd::Batch> b;
            {
              py::gil_scoped_release release;
              b = loader.next();
            }
            if (!b) return py::none();
            return batch_dict(*b);
          },
          "The next batch of the epoch as a dict, or None when the epoch is over.")
      .def("position",
           [](LoaderHandle& h) {
             auto p = h.get().position();
             return py::make_tuple(p.epoch, p.step);
           })
      .def(
          "set_position",
          [](LoaderHandle& h, int64_t epoch, int64_t step) {
            auto& loader = h.get();
            py::gil_scoped_release release;
            loader.set_position({epoch, step});
          },
          py::arg("epoch"), py::arg("step"))
      .def("steps_per_epoch", [](LoaderHandle& h) { return h.get().steps_per_epoch(); })
      .def("samples_per_epoch", [](LoaderHandle& h) { return h.get().samples_per_epoch(); })
      .def(
          "epoch_indices",
          [](LoaderHandle& h, int64_t epoch) { return h.get().epoch_indices(epoch); },
          py::arg("epoch"))
      .def_static("sample_seed", &cd::Loader::sample_seed, py::arg("seed"), py::arg("epoch"),
                  py::arg("index"))
      .def("bad_samples", [](LoaderHandle& h) { return bad_samples_list(h.get().bad_samples()); })
      .def("close", &LoaderHandle::close);
}

void bind_synthetic(py::module_& m) {
  auto s = m.def_submodule("synthetic", "The seeded synthetic chest-X-ray dataset generator");
  s.def("finding_names", &syn::finding_names);
  s.def(
      "generate",
      [](const std::string& out_dir, const py::kwargs& kwargs) {
        auto opts = synthetic_options(kwargs);
        syn::SyntheticSummary summary;
        {
          py::gil_scoped_release release;
          summary = syn::generate(opts, out_dir);
        }
        return summary_dict(summary);
      },
      py::arg("out_dir"),
      "Writes the synthetic dataset (MIMIC-CXR-JPG layout, CheXpert-style labelled set, "
      "8x200-style "
      "retrieval set) under out_dir; options as keyword arguments.");
  s.def(
      "example",
      [](uint64_t seed, int64_t image_size, bool lateral, int only, const py::kwargs& kwargs) {
        auto opts = synthetic_options(kwargs);
        CONVIRT_CHECK_VALUE(only >= -1 && only <= syn::kNumFindings,
                            "only must be -1 (sampled), 0..6 (one finding) or 7 (no finding), got ",
                            only);
        CONVIRT_CHECK_VALUE(image_size >= 32, "image_size must be >= 32, got ", image_size);
        at::Tensor image;
        std::string report;
        std::vector<double> report_labels, truth;
        {
          py::gil_scoped_release release;
          const auto c = syn::sample_case(opts, seed, only);
          image = syn::render(c, image_size, lateral, opts.difficulty());
          report = syn::write_report(c, seed, &report_labels);
          truth = syn::case_labels(c);
        }
        py::dict d;
        d["image"] = image;
        d["report"] = report;
        d["report_labels"] = report_labels;
        d["labels"] = truth;
        return d;
      },
      py::arg("seed"), py::arg("image_size") = 128, py::arg("lateral") = false,
      py::arg("only") = -1,
      "One synthetic study: image [1, S, S], report, its CheXpert-labeler reading and the ground "
      "truth (14 CheXpert columns each).");
  s.def("text_queries", &syn::text_queries, py::arg("category"), py::arg("count"),
        py::arg("seed") = 0);
}

}  // namespace

void bind_data(py::module_& root) {
  auto m = root.def_submodule("data", "Dataset readers, label-fraction subsets, the loader");
  m.def("chexpert_paper_labels", &cd::chexpert_paper_labels);
  m.def("chexpert_all_labels", &cd::chexpert_all_labels);
  m.def("retrieval_categories", &cd::retrieval_categories);
  m.def(
      "check_uncertain_policy",
      [](const std::string& name) { return cd::to_string(cd::parse_uncertain_policy(name)); },
      py::arg("name"));
  m.def(
      "report_sentences",
      [](const std::string& report, bool sections_only, int64_t min_tokens) {
        std::vector<std::string> sentences;
        auto why =
            cd::report_sentences(report, report_policy(sections_only, min_tokens), &sentences);
        return py::make_tuple(sentences, why);
      },
      py::arg("report"), py::arg("sections_only") = true, py::arg("min_tokens") = 3);
  m.def("label_fraction_indices", &cd::label_fraction_indices, py::arg("labels"),
        py::arg("fraction"), py::arg("seed") = 0);
  m.def(
      "label_fraction_subset",
      [](std::shared_ptr<cd::Dataset> dataset, double fraction, uint64_t seed) {
        CONVIRT_CHECK_TYPE(dataset != nullptr, "dataset must be a convirt dataset, got None");
        return cd::label_fraction_subset(std::move(dataset), fraction, seed);
      },
      py::arg("dataset"), py::arg("fraction"), py::arg("seed") = 0);
  m.def("stratified_split", &cd::stratified_split, py::arg("labels"), py::arg("first_fraction"),
        py::arg("seed") = 0, py::arg("groups") = std::vector<std::string>{});
  bind_datasets(m);
  bind_loader(m);
  bind_synthetic(m);
}

}  // namespace convirt::python
