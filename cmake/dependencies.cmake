# Every dependency comes from a Debian package; scripts/bootstrap installs them.

# libtorch: its compile flags stay inside one interface target, circuit_torch.
find_package(Torch REQUIRED CONFIG)
add_library(circuit_torch INTERFACE)
target_link_libraries(circuit_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(circuit_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_circuit_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(circuit_torch INTERFACE ${_circuit_torch_flags})

find_package(OpenMP REQUIRED COMPONENTS CXX)  # util/parallel.cc: one team over independent items
find_package(absl REQUIRED CONFIG)
find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(nlohmann_json REQUIRED CONFIG)
find_package(Boost 1.74 REQUIRED COMPONENTS graph)
find_package(PkgConfig REQUIRED)
pkg_check_modules(GRAPHVIZ REQUIRED IMPORTED_TARGET libcgraph libgvc)
set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI REQUIRED COMPONENTS CXX)
if(CIRCUIT_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)
endif()
if(CIRCUIT_BUILD_BENCH)
  find_package(benchmark REQUIRED CONFIG)
endif()
