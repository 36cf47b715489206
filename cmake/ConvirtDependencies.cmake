# Torch's imported targets carry their include directories and the _GLIBCXX_USE_CXX11_ABI flag that
# dependants must share, so components link ${TORCH_LIBRARIES} and inherit both.
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)

if(TARGET torch_cuda OR TARGET c10_cuda)
  set(CONVIRT_TORCH_HAS_CUDA ON)
else()
  set(CONVIRT_TORCH_HAS_CUDA OFF)
endif()
message(STATUS "convirt: Torch ${Torch_VERSION} (CUDA in Torch: ${CONVIRT_TORCH_HAS_CUDA})")
