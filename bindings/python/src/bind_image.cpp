// convirt._C.image: image decoding/encoding, the functional ops, the seeded Rng and the transform
// classes. The pure-Python layer (convirt/image.py, convirt/transforms.py) adds keyword handling,
// torch.dtype / torchvision InterpolationMode conversion, seeding from torch's generator and
// pickling; this file stays a thin, typed mapping of the C++ API.
//
// Every call that touches pixels releases the GIL: DataLoader worker threads and user threads then
// run decode and augmentation in parallel.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/image/io.h>
#include <convirt/image/preprocess.h>
#include <convirt/image/transforms.h>

#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;

namespace convirt::python {
namespace {

namespace ci = convirt::image;
using release_gil = py::call_guard<py::gil_scoped_release>;

ci::Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return ci::Interpolation::kBilinear;
  CONVIRT_CHECK_VALUE(name == "nearest", "interpolation must be 'bilinear' or 'nearest', got '",
                      name, "'");
  return ci::Interpolation::kNearest;
}

ci::DicomIntensity parse_intensity(const std::string& name) {
  if (name == "window") return ci::DicomIntensity::kWindow;
  if (name == "minmax") return ci::DicomIntensity::kMinMax;
  CONVIRT_CHECK_VALUE(name == "bit_depth",
                      "dicom_intensity must be 'window', 'minmax' or 'bit_depth', got '", name,
                      "'");
  return ci::DicomIntensity::kBitDepth;
}

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32") return c10::kFloat;
  CONVIRT_CHECK_TYPE(name == "uint8", "dtype must be torch.float32 or torch.uint8, got '", name,
                     "'");
  return c10::kByte;
}

ci::ImageFormat parse_format(const std::string& name) {
  if (name == "jpeg") return ci::ImageFormat::kJpeg;
  if (name == "png") return ci::ImageFormat::kPng;
  CONVIRT_CHECK_VALUE(name == "dicom", "format must be 'jpeg', 'png' or 'dicom', got '", name, "'");
  return ci::ImageFormat::kDicom;
}

ci::ReadImageOptions read_options(int64_t channels, const std::string& dtype,
                                  int64_t draft_longer_side, const std::string& dicom_intensity,
                                  double window_center, double window_width,
                                  bool invert_monochrome1) {
  CONVIRT_CHECK_VALUE(channels == 0 || channels == 1 || channels == 3,
                      "channels must be 0 (keep), 1 or 3, got ", channels);
  CONVIRT_CHECK_VALUE(draft_longer_side >= 0, "draft_longer_side must be >= 0, got ",
                      draft_longer_side);
  return ci::ReadImageOptions()
      .channels(channels)
      .dtype(parse_dtype(dtype))
      .draft_longer_side(draft_longer_side)
      .dicom_intensity(parse_intensity(dicom_intensity))
      .window(window_center, window_width)
      .invert_monochrome1(invert_monochrome1);
}

ci::ResizeOptions resize_options(const std::string& interpolation, bool antialias) {
  return ci::ResizeOptions().interpolation(parse_interpolation(interpolation)).antialias(antialias);
}

// The keyword arguments shared by read_image and decode_image, in one place so they cannot drift.
#define CONVIRT_READ_ARGS                                                                 \
  py::kw_only(), py::arg("channels") = 0, py::arg("dtype") = "float32",                   \
                 py::arg("draft_longer_side") = 0, py::arg("dicom_intensity") = "window", \
                 py::arg("window_center") = 0.0, py::arg("window_width") = 0.0,           \
                 py::arg("invert_monochrome1") = true

void bind_io(py::module_& m) {
  m.def(
      "read_image",
      [](const std::string& path, int64_t channels, const std::string& dtype, int64_t draft,
         const std::string& intensity, double center, double width, bool invert) {
        auto opts = read_options(channels, dtype, draft, intensity, center, width, invert);
        py::gil_scoped_release release;
        return ci::read_image(path, opts);
      },
      py::arg("path"), CONVIRT_READ_ARGS,
      "Decodes a JPEG, PNG or DICOM file (format from the content) into [C, H, W].");
  m.def(
      "decode_image",
      [](const py::bytes& data, int64_t channels, const std::string& dtype, int64_t draft,
         const std::string& intensity, double center, double width, bool invert) {
        auto opts = read_options(channels, dtype, draft, intensity, center, width, invert);
        std::string buf = data;  // copied with the GIL held; decoded without it
        py::gil_scoped_release release;
        return ci::decode_image(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), opts);
      },
      py::arg("data"), CONVIRT_READ_ARGS, "Decodes an encoded image held in a bytes object.");
  m.def(
      "image_info",
      [](const std::string& path) {
        ci::ImageInfo info;
        {
          py::gil_scoped_release release;
          info = ci::image_info(path);
        }
        py::dict d;
        d["format"] = ci::format_name(info.format);
        d["width"] = info.width;
        d["height"] = info.height;
        d["channels"] = info.channels;
        d["bit_depth"] = info.bit_depth;
        return d;
      },
      py::arg("path"), "Format, width, height, channels and bit depth, without decoding pixels.");
  m.def(
      "detect_format",
      [](const py::bytes& data) {
        std::string buf = data;
        return std::string(ci::format_name(
            ci::detect_format(reinterpret_cast<const uint8_t*>(buf.data()), buf.size())));
      },
      py::arg("data"), "'jpeg', 'png', 'dicom' or 'unknown', from the magic bytes.");
  m.def(
      "codec_available",
      [](const std::string& format) { return ci::codec_available(parse_format(format)); },
      py::arg("format"), "Whether this build decodes 'jpeg', 'png' or 'dicom'.");
  m.def("write_png", &ci::write_png, py::arg("path"), py::arg("image"), py::arg("bit_depth") = 8,
        release_gil());
  m.def("write_jpeg", &ci::write_jpeg, py::arg("path"), py::arg("image"), py::arg("quality") = 95,
        release_gil());
  m.def(
      "encode_png",
      [](const torch::Tensor& image, int bit_depth) {
        std::string out;
        {
          py::gil_scoped_release release;
          out = ci::encode_png(image, bit_depth);
        }
        return py::bytes(out);
      },
      py::arg("image"), py::arg("bit_depth") = 8);
  m.def(
      "encode_jpeg",
      [](const torch::Tensor& image, int quality) {
        std::string out;
        {
          py::gil_scoped_release release;
          out = ci::encode_jpeg(image, quality);
        }
        return py::bytes(out);
      },
      py::arg("image"), py::arg("quality") = 95);
  m.def(
      "write_dicom",
      [](const std::string& path, const torch::Tensor& pixels, const std::string& photometric,
         int64_t bits_stored, double rescale_slope, double rescale_intercept, double window_center,
         double window_width, const std::string& patient_id, const std::string& modality,
         const std::string& view_position) {
        auto opts = ci::WriteDicomOptions()
                        .photometric(photometric)
                        .bits_stored(bits_stored)
                        .rescale_slope(rescale_slope)
                        .rescale_intercept(rescale_intercept)
                        .window_center(window_center)
                        .window_width(window_width)
                        .patient_id(patient_id)
                        .modality(modality)
                        .view_position(view_position);
        py::gil_scoped_release release;
        ci::write_dicom(path, pixels, opts);
      },
      py::arg("path"), py::arg("pixels"), py::kw_only(), py::arg("photometric") = "MONOCHROME2",
      py::arg("bits_stored") = 16, py::arg("rescale_slope") = 1.0,
      py::arg("rescale_intercept") = 0.0, py::arg("window_center") = 0.0,
      py::arg("window_width") = 0.0, py::arg("patient_id") = "", py::arg("modality") = "CR",
      py::arg("view_position") = "");
}

void bind_functional(py::module_& m) {
  m.def(
      "resize",
      [](const torch::Tensor& image, int64_t height, int64_t width,
         const std::string& interpolation, bool antialias) {
        auto opts = resize_options(interpolation, antialias);
        py::gil_scoped_release release;
        return ci::resize(image, height, width, opts);
      },
      py::arg("image"), py::arg("height"), py::arg("width"), py::arg("interpolation") = "bilinear",
      py::arg("antialias") = true);
  m.def(
      "resized_crop",
      [](const torch::Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width,
         int64_t out_height, int64_t out_width, const std::string& interpolation, bool antialias) {
        auto opts = resize_options(interpolation, antialias);
        py::gil_scoped_release release;
        return ci::resized_crop(image, top, left, height, width, out_height, out_width, opts);
      },
      py::arg("image"), py::arg("top"), py::arg("left"), py::arg("height"), py::arg("width"),
      py::arg("out_height"), py::arg("out_width"), py::arg("interpolation") = "bilinear",
      py::arg("antialias") = true);
  m.def("hflip", &ci::hflip, py::arg("image"), release_gil());
  m.def(
      "affine",
      [](const torch::Tensor& image, double angle, std::array<double, 2> translate, double scale,
         const std::string& interpolation, double fill) {
        auto interp = parse_interpolation(interpolation);
        py::gil_scoped_release release;
        return ci::affine(image, angle, translate, scale, interp, fill);
      },
      py::arg("image"), py::arg("angle"), py::arg("translate"), py::arg("scale"),
      py::arg("interpolation") = "bilinear", py::arg("fill") = 0.0);
  m.def("adjust_brightness", &ci::adjust_brightness, py::arg("image"), py::arg("factor"),
        release_gil());
  m.def("adjust_contrast", &ci::adjust_contrast, py::arg("image"), py::arg("factor"),
        release_gil());
  m.def("gaussian_kernel_size", &ci::gaussian_kernel_size, py::arg("sigma"));
  m.def("gaussian_blur", &ci::gaussian_blur, py::arg("image"), py::arg("sigma"),
        py::arg("kernel_size") = 0, release_gil());
  m.def("pad_to_square", &ci::pad_to_square, py::arg("image"), py::arg("fill") = 0.0,
        release_gil());
  m.def("normalize", &ci::normalize, py::arg("image"), py::arg("mean"), py::arg("std"),
        release_gil());
  m.def(
      "resize_longer_side",
      [](const torch::Tensor& image, int64_t longer_side, const std::string& interpolation,
         bool antialias) {
        auto opts = resize_options(interpolation, antialias);
        py::gil_scoped_release release;
        return ci::resize_longer_side(image, longer_side, opts);
      },
      py::arg("image"), py::arg("longer_side") = 256, py::arg("interpolation") = "bilinear",
      py::arg("antialias") = true);
  m.def("pretrain_preprocess", &ci::pretrain_preprocess, py::arg("image"),
        py::arg("longer_side") = 256, release_gil());
  m.def("eval_preprocess", &ci::eval_preprocess, py::arg("image"), py::arg("size") = 224,
        release_gil());
}

void bind_rng(py::module_& m) {
  py::class_<ci::Rng>(m, "Rng", "xoshiro256** generator: the same stream on every platform.")
      .def(py::init<uint64_t>(), py::arg("seed") = 0)
      .def("next_u64", &ci::Rng::next_u64)
      .def("uniform", &ci::Rng::uniform, py::arg("lo"), py::arg("hi"))
      .def("randint", &ci::Rng::randint, py::arg("lo"), py::arg("hi"))
      .def("bernoulli", &ci::Rng::bernoulli, py::arg("p"))
      .def("state", &ci::Rng::state)
      .def("set_state", &ci::Rng::set_state, py::arg("state"))
      .def(py::pickle([](const ci::Rng& r) { return r.state(); },
                      [](const std::array<uint64_t, 4>& s) {
                        ci::Rng r(0);
                        r.set_state(s);
                        return r;
                      }));
}

// Both call forms of every transform: with a caller-owned Rng (advanced in place) or a seed.
template <typename Class>
void def_call(Class& cls) {
  using T = typename Class::type;
  cls.def(
         "__call__",
         [](const T& t, const torch::Tensor& image, ci::Rng& rng) { return t(image, rng); },
         py::arg("image"), py::arg("rng"), release_gil())
      .def(
          "__call__",
          [](const T& t, const torch::Tensor& image, uint64_t seed) { return t(image, seed); },
          py::arg("image"), py::arg("seed"), release_gil())
      .def("__repr__", &T::repr);
}

void bind_transforms(py::module_& m) {
  py::class_<ci::Transform, std::shared_ptr<ci::Transform>> base(
      m, "Transform", "Base of the native transforms: t(image, seed) or t(image, rng).");
  def_call(base);

  py::class_<ci::Resize, ci::Transform, std::shared_ptr<ci::Resize>>(m, "Resize")
      .def(py::init(
               [](int64_t height, int64_t width, const std::string& interpolation, bool antialias) {
                 return std::make_shared<ci::Resize>(
                     ci::ResizeTransformOptions(height, width)
                         .resize(resize_options(interpolation, antialias)));
               }),
           py::arg("height"), py::arg("width"), py::arg("interpolation") = "bilinear",
           py::arg("antialias") = true);

  py::class_<ci::RandomResizedCrop, ci::Transform, std::shared_ptr<ci::RandomResizedCrop>>(
      m, "RandomResizedCrop")
      .def(py::init([](int64_t height, int64_t width, ci::Range scale, ci::Range ratio,
                       const std::string& interpolation, bool antialias) {
             return std::make_shared<ci::RandomResizedCrop>(
                 ci::RandomResizedCropOptions(height, width)
                     .scale(scale)
                     .ratio(ratio)
                     .resize(resize_options(interpolation, antialias)));
           }),
           py::arg("height"), py::arg("width"), py::arg("scale") = ci::Range{{0.6, 1.0}},
           py::arg("ratio") = ci::Range{{3.0 / 4.0, 4.0 / 3.0}},
           py::arg("interpolation") = "bilinear", py::arg("antialias") = true)
      .def(
          "sample",
          [](const ci::RandomResizedCrop& t, int64_t height, int64_t width, ci::Rng& rng) {
            auto box = t.sample(height, width, rng);
            return py::make_tuple(box.top, box.left, box.height, box.width);
          },
          py::arg("height"), py::arg("width"), py::arg("rng"),
          "The crop window (top, left, height, width) for an image of this size.");

  py::class_<ci::RandomHorizontalFlip, ci::Transform, std::shared_ptr<ci::RandomHorizontalFlip>>(
      m, "RandomHorizontalFlip")
      .def(py::init([](double p) {
             return std::make_shared<ci::RandomHorizontalFlip>(
                 ci::RandomHorizontalFlipOptions().p(p));
           }),
           py::arg("p") = 0.5);

  py::class_<ci::RandomAffine, ci::Transform, std::shared_ptr<ci::RandomAffine>>(m, "RandomAffine")
      .def(py::init([](double degrees, ci::Range translate, ci::Range scale,
                       const std::string& interpolation, double fill) {
             return std::make_shared<ci::RandomAffine>(
                 ci::RandomAffineOptions()
                     .degrees(degrees)
                     .translate(translate)
                     .scale(scale)
                     .interpolation(parse_interpolation(interpolation))
                     .fill(fill));
           }),
           py::arg("degrees") = 20.0, py::arg("translate") = ci::Range{{0.1, 0.1}},
           py::arg("scale") = ci::Range{{0.95, 1.05}}, py::arg("interpolation") = "bilinear",
           py::arg("fill") = 0.0)
      .def(
          "sample",
          [](const ci::RandomAffine& t, int64_t height, int64_t width, ci::Rng& rng) {
            auto p = t.sample(height, width, rng);
            return py::make_tuple(p.angle, py::make_tuple(p.translate[0], p.translate[1]), p.scale);
          },
          py::arg("height"), py::arg("width"), py::arg("rng"),
          "The parameters (angle, (tx, ty), scale) drawn for an image of this size.");

  py::class_<ci::ColorJitter, ci::Transform, std::shared_ptr<ci::ColorJitter>>(m, "ColorJitter")
      .def(py::init([](ci::Range brightness, ci::Range contrast, bool random_order) {
             return std::make_shared<ci::ColorJitter>(ci::ColorJitterOptions()
                                                          .brightness(brightness)
                                                          .contrast(contrast)
                                                          .random_order(random_order));
           }),
           py::arg("brightness") = ci::Range{{0.6, 1.4}},
           py::arg("contrast") = ci::Range{{0.6, 1.4}}, py::arg("random_order") = true);

  py::class_<ci::GaussianBlur, ci::Transform, std::shared_ptr<ci::GaussianBlur>>(m, "GaussianBlur")
      .def(py::init([](ci::Range sigma, int64_t kernel_size) {
             return std::make_shared<ci::GaussianBlur>(
                 ci::GaussianBlurOptions().sigma(sigma).kernel_size(kernel_size));
           }),
           py::arg("sigma") = ci::Range{{0.1, 3.0}}, py::arg("kernel_size") = 0);

  py::class_<ci::Normalize, ci::Transform, std::shared_ptr<ci::Normalize>>(m, "Normalize")
      .def(py::init([](std::vector<double> mean, std::vector<double> stddev) {
             return std::make_shared<ci::Normalize>(
                 ci::NormalizeOptions(std::move(mean), std::move(stddev)));
           }),
           py::arg("mean"), py::arg("std"));

  py::class_<ci::Compose, ci::Transform, std::shared_ptr<ci::Compose>>(m, "Compose")
      .def(py::init([](const std::vector<std::shared_ptr<ci::Transform>>& transforms) {
             std::vector<ci::TransformPtr> items(transforms.begin(), transforms.end());
             return std::make_shared<ci::Compose>(std::move(items));
           }),
           py::arg("transforms"))
      .def("__len__", [](const ci::Compose& c) { return c.transforms().size(); });

  m.def(
      "paper_augmentation",
      [](int64_t size, ci::Range crop_scale, ci::Range crop_ratio, double flip_p, double degrees,
         ci::Range translate, ci::Range affine_scale, const std::string& interpolation,
         ci::Range brightness, ci::Range contrast, ci::Range sigma, int64_t kernel_size) {
        return ci::paper_augmentation(
            ci::PaperAugmentationOptions()
                .size(size)
                .crop_scale(crop_scale)
                .crop_ratio(crop_ratio)
                .flip_p(flip_p)
                .affine(ci::RandomAffineOptions()
                            .degrees(degrees)
                            .translate(translate)
                            .scale(affine_scale)
                            .interpolation(parse_interpolation(interpolation)))
                .jitter(ci::ColorJitterOptions().brightness(brightness).contrast(contrast))
                .blur(ci::GaussianBlurOptions().sigma(sigma).kernel_size(kernel_size)));
      },
      py::arg("size") = 224, py::arg("crop_scale") = ci::Range{{0.6, 1.0}},
      py::arg("crop_ratio") = ci::Range{{3.0 / 4.0, 4.0 / 3.0}}, py::arg("flip_p") = 0.5,
      py::arg("degrees") = 20.0, py::arg("translate") = ci::Range{{0.1, 0.1}},
      py::arg("affine_scale") = ci::Range{{0.95, 1.05}}, py::arg("interpolation") = "bilinear",
      py::arg("brightness") = ci::Range{{0.6, 1.4}}, py::arg("contrast") = ci::Range{{0.6, 1.4}},
      py::arg("sigma") = ci::Range{{0.1, 3.0}}, py::arg("kernel_size") = 0,
      "The paper's t_v as one native Compose (crop 224, flip, affine, jitter, blur).");
}

}  // namespace

void bind_image(py::module_& m) {
  auto im = m.def_submodule("image", "Image decoding, functional ops and the paper's augmentation");
  bind_io(im);
  bind_functional(im);
  bind_rng(im);
  bind_transforms(im);
}

}  // namespace convirt::python
