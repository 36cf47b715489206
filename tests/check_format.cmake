# Runs clang-format --dry-run --Werror over every C++/CUDA source the project owns.
file(GLOB_RECURSE files
  ${SOURCE_DIR}/include/*.h ${SOURCE_DIR}/include/*.cuh
  ${SOURCE_DIR}/src/*.h ${SOURCE_DIR}/src/*.cpp ${SOURCE_DIR}/src/*.cu ${SOURCE_DIR}/src/*.cuh
  ${SOURCE_DIR}/tests/*.h ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/tests/*.cu
  ${SOURCE_DIR}/bindings/*.cpp ${SOURCE_DIR}/bench/*.cpp ${SOURCE_DIR}/bench/*.cu
  ${SOURCE_DIR}/examples/*.cpp)
list(FILTER files EXCLUDE REGEX "/build[^/]*/")
execute_process(COMMAND ${CLANG_FORMAT} --style=file --dry-run --Werror ${files}
                WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format found unformatted files (fix: clang-format -i <file>)")
endif()
list(LENGTH files n)
message(STATUS "clang-format: ${n} files clean")
