// The convirt._C extension: one bind_<area>() per area, each in its own file.
#include "bind.h"

#include <convirt/core/threads.h>
#include <convirt/core/version.h>
#include <convirt/loss/infonce.h>

PYBIND11_MODULE(_C, m) {
  m.doc() = "convirt native extension: tensor ops are registered with torch.ops.convirt on import";
  m.attr("__version__") = convirt::version();
  m.attr("cuda_kernels_available") = convirt::cuda_kernels_available();
  // The loss's defaults (the paper's tau and lambda), written once in C++ (InfoNCEOptions); the
  // Python signatures of convirt.infonce_loss, InfoNCELoss and convirt.dist read them from here.
  {
    const convirt::InfoNCEOptions d;
    pybind11::dict defaults;
    defaults["temperature"] = d.temperature();
    defaults["image_to_text_weight"] = d.image_to_text_weight();
    defaults["eps"] = d.eps();
    m.attr("INFONCE_DEFAULTS") = defaults;
  }
  m.def("set_num_threads", &convirt::set_num_threads, pybind11::arg("threads") = 0,
        "Sets LibTorch's intra-op threads: 0 = CONVIRT_NUM_THREADS / OMP_NUM_THREADS / all cores.");
  m.def("default_num_threads", &convirt::default_num_threads,
        "The intra-op thread count set_num_threads(0) uses: CONVIRT_NUM_THREADS, OMP_NUM_THREADS "
        "or all cores.");
#if CONVIRT_BIND_LOSS
  convirt::python::bind_loss(m);
#endif
#if CONVIRT_BIND_TEXT
  convirt::python::bind_text(m);
#endif
#if CONVIRT_BIND_IMAGE
  convirt::python::bind_image(m);
#endif
#if CONVIRT_BIND_MODELS
  convirt::python::bind_models(m);
#endif
#if CONVIRT_BIND_DATA
  convirt::python::bind_data(m);
#endif
#if CONVIRT_BIND_EVAL
  convirt::python::bind_eval(m);
#endif
#if CONVIRT_BIND_TRAIN
  convirt::python::bind_train(m);
#endif
#if CONVIRT_BIND_DIST
  convirt::python::bind_dist(m);
#endif
}
