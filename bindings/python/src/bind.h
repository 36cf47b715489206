#pragma once
// Declarations of the per-area binders called from module.cpp.

#include <torch/extension.h>

namespace convirt::python {

void bind_loss(pybind11::module_& m);
void bind_text(pybind11::module_& m);
void bind_image(pybind11::module_& m);
void bind_models(pybind11::module_& m);
void bind_data(pybind11::module_& m);
void bind_eval(pybind11::module_& m);
void bind_train(pybind11::module_& m);
void bind_dist(pybind11::module_& m);

}  // namespace convirt::python
