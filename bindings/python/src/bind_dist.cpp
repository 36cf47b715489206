// convirt._C.dist: the distributed context and its collectives, the global-negatives loss, the
// gradient synchronizer and the launcher. Tensors cross as torch.Tensor; blocking calls release
// the GIL so other Python threads run while a rank waits for its peers.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/dist/gather.h>
#include <convirt/dist/grad_sync.h>
#include <convirt/dist/infonce.h>
#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>
#include <convirt/dist/sharding.h>

#include <pybind11/stl.h>

#include <variant>

namespace py = pybind11;
namespace dist = convirt::dist;

namespace convirt::python {
namespace {

dist::ReduceOp parse_op(const std::string& op) {
  if (op == "sum") return dist::ReduceOp::kSum;
  if (op == "max") return dist::ReduceOp::kMax;
  if (op == "min") return dist::ReduceOp::kMin;
  CONVIRT_CHECK_VALUE(false, "op must be one of 'sum', 'max', 'min', got '", op, "'");
  return dist::ReduceOp::kSum;
}

InfoNCEOptions loss_options(const std::variant<double, torch::Tensor>& temperature,
                            double image_to_text_weight, bool normalize, double eps) {
  auto o =
      InfoNCEOptions().image_to_text_weight(image_to_text_weight).normalize(normalize).eps(eps);
  if (std::holds_alternative<torch::Tensor>(temperature)) {
    o.learnable_temperature(std::get<torch::Tensor>(temperature));
  } else {
    o.temperature(std::get<double>(temperature));
  }
  return o;
}

}  // namespace

void bind_dist(py::module_& m) {
  auto d = m.def_submodule("dist", "Distributed pretraining over c10d (Gloo)");
  d.def("gloo_available", &dist::gloo_available,
        "Whether LibTorch was built with the Gloo backend.");

  py::class_<dist::DistributedContext>(
      d, "DistributedContext",
      "A c10d process group (Gloo): rank, world size and the collectives convirt uses.")
      .def(py::init([](int64_t rank, int64_t world_size, int64_t local_rank,
                       const std::string& master_addr, int64_t master_port, double timeout_seconds,
                       const std::string& backend, const std::string& gloo_interface,
                       int64_t gloo_threads) {
             return dist::DistributedContext(dist::DistributedOptions()
                                                 .rank(rank)
                                                 .world_size(world_size)
                                                 .local_rank(local_rank)
                                                 .master_addr(master_addr)
                                                 .master_port(master_port)
                                                 .timeout_seconds(timeout_seconds)
                                                 .backend(dist::parse_comm_backend(backend))
                                                 .gloo_interface(gloo_interface)
                                                 .gloo_threads(gloo_threads));
           }),
           py::arg("rank") = 0, py::arg("world_size") = 1, py::arg("local_rank") = 0,
           py::arg("master_addr") = "127.0.0.1", py::arg("master_port") = 29500,
           py::arg("timeout_seconds") = 600.0, py::arg("backend") = "auto",
           py::arg("gloo_interface") = "", py::arg("gloo_threads") = 2,
           py::call_guard<py::gil_scoped_release>())
      .def_static("from_environment", &dist::DistributedContext::from_environment,
                  py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("rank", &dist::DistributedContext::rank)
      .def_property_readonly("world_size", &dist::DistributedContext::world_size)
      .def_property_readonly("local_rank", &dist::DistributedContext::local_rank)
      .def_property_readonly("is_main", &dist::DistributedContext::is_main)
      .def_property_readonly("is_distributed", &dist::DistributedContext::is_distributed)
      .def_property_readonly(
          "timeout_seconds",
          [](const dist::DistributedContext& c) { return c.options().timeout_seconds(); })
      .def(
          "all_reduce_",
          [](const dist::DistributedContext& c, torch::Tensor t, const std::string& op) {
            c.all_reduce_(t, parse_op(op));
            return t;
          },
          py::arg("tensor"), py::arg("op") = "sum", py::call_guard<py::gil_scoped_release>())
      .def("all_gather", &dist::DistributedContext::all_gather, py::arg("tensor"),
           py::call_guard<py::gil_scoped_release>())
      .def(
          "all_gather_rows",
          [](const dist::DistributedContext& c, const torch::Tensor& t) {
            return c.all_gather_rows(t);
          },
          py::arg("tensor"), py::call_guard<py::gil_scoped_release>())
      .def("all_gather_sizes", &dist::DistributedContext::all_gather_sizes, py::arg("rows"),
           py::call_guard<py::gil_scoped_release>())
      .def(
          "broadcast_",
          [](const dist::DistributedContext& c, torch::Tensor t, int64_t root) {
            c.broadcast_(t, root);
            return t;
          },
          py::arg("tensor"), py::arg("root") = 0, py::call_guard<py::gil_scoped_release>())
      .def("barrier", &dist::DistributedContext::barrier, py::call_guard<py::gil_scoped_release>())
      .def("__repr__", [](const dist::DistributedContext& c) {
        return "DistributedContext(rank=" + std::to_string(c.rank()) +
               ", world_size=" + std::to_string(c.world_size()) + ")";
      });

  d.def("gather_with_grad", &dist::gather_with_grad, py::arg("local"), py::arg("ctx"),
        py::call_guard<py::gil_scoped_release>(),
        "Every rank's rows, concatenated; backward sends each rank the gradient of its own rows.");

  d.def(
      "infonce_loss_distributed",
      [](const torch::Tensor& v, const torch::Tensor& u, const dist::DistributedContext& ctx,
         const std::variant<double, torch::Tensor>& temperature, double weight, bool normalize,
         double eps) {
        auto o = dist::infonce_loss_distributed_with_stats(
            v, u, loss_options(temperature, weight, normalize, eps), ctx);
        return std::make_tuple(o.loss, o.image_to_text, o.text_to_image, o.image_to_text_accuracy,
                               o.text_to_image_accuracy);
      },
      py::arg("image_emb"), py::arg("text_emb"), py::arg("ctx"),
      py::arg("temperature") = InfoNCEOptions().temperature(),
      py::arg("image_to_text_weight") = InfoNCEOptions().image_to_text_weight(),
      py::arg("normalize") = true, py::arg("eps") = 1e-12,
      py::call_guard<py::gil_scoped_release>());

  py::class_<dist::GradientSynchronizer>(
      d, "GradientSynchronizer",
      "Bucketed all-reduce of parameter gradients across the ranks (sum, or average).")
      .def(py::init([](std::vector<torch::Tensor> params, const dist::DistributedContext& ctx,
                       double bucket_cap_mb, bool overlap, bool average) {
             return std::make_unique<dist::GradientSynchronizer>(std::move(params), ctx,
                                                                 dist::GradientSynchronizerOptions()
                                                                     .bucket_cap_mb(bucket_cap_mb)
                                                                     .overlap(overlap)
                                                                     .average(average));
           }),
           py::arg("parameters"), py::arg("ctx"), py::arg("bucket_cap_mb") = 25.0,
           py::arg("overlap") = true, py::arg("average") = false)
      .def("synchronize", &dist::GradientSynchronizer::synchronize,
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("num_buckets", &dist::GradientSynchronizer::num_buckets)
      .def("bucket_members", &dist::GradientSynchronizer::bucket_members);

  d.def(
      "shard_range",
      [](int64_t total, int64_t rank, int64_t world_size) {
        const auto r = dist::shard_range(total, rank, world_size);
        return std::make_tuple(r.begin, r.end);
      },
      py::arg("total"), py::arg("rank"), py::arg("world_size"));

  d.def(
      "launch",
      [](const std::vector<std::string>& argv, int64_t nproc, int64_t nnodes, int64_t node_rank,
         const std::string& master_addr, int64_t master_port, double kill_grace_seconds) {
        return dist::launch(dist::LaunchOptions()
                                .nproc(nproc)
                                .nnodes(nnodes)
                                .node_rank(node_rank)
                                .master_addr(master_addr)
                                .master_port(master_port)
                                .kill_grace_seconds(kill_grace_seconds),
                            argv);
      },
      py::arg("argv"), py::arg("nproc") = 1, py::arg("nnodes") = 1, py::arg("node_rank") = 0,
      py::arg("master_addr") = "127.0.0.1", py::arg("master_port") = 0,
      py::arg("kill_grace_seconds") = 5.0, py::call_guard<py::gil_scoped_release>());
  d.def("find_free_port", &dist::find_free_port, py::arg("host") = "127.0.0.1",
        "A TCP port that is free on host now.");
}

}  // namespace convirt::python
