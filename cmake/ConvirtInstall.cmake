include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/convirt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/convirt/core/config.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convirt/core)
install(TARGETS convirt EXPORT convirtTargets)

set(CONVIRT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/convirt)
install(EXPORT convirtTargets NAMESPACE convirt:: DESTINATION ${CONVIRT_CMAKE_DIR})
# Build-tree export: a consumer can point convirt_DIR at the build folder without installing.
export(EXPORT convirtTargets NAMESPACE convirt:: FILE ${PROJECT_BINARY_DIR}/convirtTargets.cmake)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/convirtConfig.cmake.in
  ${PROJECT_BINARY_DIR}/convirtConfig.cmake INSTALL_DESTINATION ${CONVIRT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/convirtConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/convirtConfig.cmake ${PROJECT_BINARY_DIR}/convirtConfigVersion.cmake
        DESTINATION ${CONVIRT_CMAKE_DIR})
