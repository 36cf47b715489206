# Sanitizer and fuzzing instrumentation for every convirt target.
#
#   CONVIRT_SANITIZE  ";"-separated -fsanitize= list, e.g. "address;undefined" (empty: off). Applied to
#                     every target compiled after this file is included (all components, tests,
#                     tools) at compile and link time. UndefinedBehaviorSanitizer findings abort
#                     (-fno-sanitize-recover) so that a test run fails on them.
#   CONVIRT_FUZZ      Build the libFuzzer targets in fuzz/ (needs clang). The whole build is then
#                     compiled with -fsanitize=fuzzer-no-link (coverage feedback for the library code
#                     the targets call); only the fuzz executables link libFuzzer itself, so the same
#                     build folder also runs the ordinary tests under the sanitizers.
#
# The Python extension is not built: an ASan-instrumented module would need the sanitizer runtime
# preloaded into the interpreter.
set(CONVIRT_SANITIZE "" CACHE STRING "Sanitizers for all convirt targets, e.g. address;undefined")
option(CONVIRT_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)

set(CONVIRT_SANITIZE_FLAGS "")
if(CONVIRT_SANITIZE)
  list(JOIN CONVIRT_SANITIZE "," _convirt_sanitizers)
  list(APPEND CONVIRT_SANITIZE_FLAGS -fsanitize=${_convirt_sanitizers} -fno-omit-frame-pointer)
  if("undefined" IN_LIST CONVIRT_SANITIZE)
    # LibTorch is not built with UBSan's vptr data: its checks on Torch's polymorphic types would
    # need that type information, and -fsanitize=function rejects calls through Torch's own function
    # pointers whose types only differ by qualifiers. Both stay off; every other UB check is on.
    list(APPEND CONVIRT_SANITIZE_FLAGS -fno-sanitize-recover=all -fno-sanitize=vptr)
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      list(APPEND CONVIRT_SANITIZE_FLAGS -fno-sanitize=function)
    endif()
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${CONVIRT_SANITIZE_FLAGS}>")
  add_link_options(${CONVIRT_SANITIZE_FLAGS})
  message(STATUS "convirt: sanitizers ${_convirt_sanitizers}")
endif()

if(CONVIRT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CONVIRT_FUZZ needs clang (libFuzzer): configure with "
                        "-DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()

if(CONVIRT_SANITIZE OR CONVIRT_FUZZ)
  set(CONVIRT_BUILD_PYTHON OFF)  # shadows the cache entry; read by ConvirtPython, included next
endif()
