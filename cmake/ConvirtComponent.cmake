# convirt_add_component(<area> SOURCES <files...> [DEPENDS <areas...>] [LIBS <extra link items...>])
# Builds libconvirt_<area>.so (alias convirt::<area>), links Torch and the named convirt areas, sets the
# project's warnings, installs it and adds it to the convirt::convirt aggregate.
set(CONVIRT_WARNINGS -Wall -Wextra)

function(convirt_add_component area)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;LIBS;PRIVATE_LIBS" ${ARGN})
  set(tgt convirt_${area})
  add_library(${tgt} SHARED ${ARG_SOURCES})
  add_library(convirt::${area} ALIAS ${tgt})
  set_target_properties(${tgt} PROPERTIES EXPORT_NAME ${area} OUTPUT_NAME convirt_${area}
                        VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(${tgt} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_options(${tgt} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${CONVIRT_WARNINGS}>)
  set(deps "")
  foreach(d IN LISTS ARG_DEPENDS)
    list(APPEND deps convirt_${d})
  endforeach()
  target_link_libraries(${tgt} PUBLIC ${deps} ${TORCH_LIBRARIES} ${ARG_LIBS} PRIVATE ${ARG_PRIVATE_LIBS})
  # The dispatcher's static registrations must not be dropped by --as-needed.
  target_link_options(${tgt} INTERFACE "LINKER:--no-as-needed")
  install(TARGETS ${tgt} EXPORT convirtTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  set_property(GLOBAL APPEND PROPERTY CONVIRT_COMPONENTS ${tgt})
endfunction()

# convirt_add_test(<name> SOURCES <files...> LIBS <link items...>)
# A Catch2 v2 executable whose TEST_CASEs each become a CTest entry. Tag GPU tests [cuda].
function(convirt_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE convirt_catch_main ${ARG_LIBS})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${CONVIRT_WARNINGS}>)
  target_compile_definitions(${name} PRIVATE
    CONVIRT_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
    CONVIRT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  # Idle OpenMP threads must not spin: tests run two at a time on small machines.
  catch_discover_tests(${name} TEST_PREFIX "${name}:" PROPERTIES TIMEOUT 900
                       ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE"
                       DISCOVERY_TIMEOUT 60)
endfunction()
