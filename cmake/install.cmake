# install() rules: the libraries, their public headers and a CMake package, so
# that another project's `find_package(circuit CONFIG)` gives circuit::core,
# circuit::prune, circuit::graph, circuit::export, circuit::sweep (and the
# torch-free circuit::base and circuit::sweep_base); and the
# `circuit` program. `cmake --install build --prefix DIR`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(circuit_torch PROPERTIES EXPORT_NAME torch)
set_target_properties(circuit_base PROPERTIES EXPORT_NAME base)
set_target_properties(circuit_core PROPERTIES EXPORT_NAME core)
set_target_properties(circuit_prune PROPERTIES EXPORT_NAME prune)
set_target_properties(circuit_graph PROPERTIES EXPORT_NAME graph)
set_target_properties(circuit_export PROPERTIES EXPORT_NAME export)
set_target_properties(circuit_sweep_base PROPERTIES EXPORT_NAME sweep_base)
set_target_properties(circuit_sweep PROPERTIES EXPORT_NAME sweep)
install(TARGETS circuit_torch circuit_base circuit_core circuit_prune circuit_graph circuit_export
                circuit_sweep_base circuit_sweep
        EXPORT circuit-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(module libcircuit prune graph export sweep)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module}/include/circuit
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(TARGETS circuit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT circuit-targets NAMESPACE circuit::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/circuit)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/circuit-config.cmake.in
  ${PROJECT_BINARY_DIR}/circuit-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/circuit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/circuit-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/circuit-config.cmake
              ${PROJECT_BINARY_DIR}/circuit-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/circuit)
