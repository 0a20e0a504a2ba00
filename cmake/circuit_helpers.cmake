# circuit_torch_pch(target): precompile <torch/torch.h> once (circuit_pch) and reuse it.
# The PCH costs ~40 s and ~600 MB to build, so clean CI builds may switch it off.
function(circuit_torch_pch target)
  if(NOT CIRCUIT_USE_PCH)
    return()
  endif()
  if(NOT TARGET circuit_pch)
    add_library(circuit_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch.cc)
    target_link_libraries(circuit_pch PUBLIC circuit_torch)
    target_precompile_headers(circuit_pch PRIVATE <torch/torch.h>)
  endif()
  target_precompile_headers(${target} REUSE_FROM circuit_pch)
  # gcc rejects a PCH built with -fPIC in a -fPIE compile: executables compile
  # their own objects with -fPIC as well (still linked as PIE).
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()

# circuit_add_test(NAME name SOURCES ... LIBS ... [LABELS ...] [TIMEOUT seconds])
# One gtest binary per module; each test case becomes a ctest entry.
function(circuit_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  set(timeout)
  if(T_TIMEOUT)
    set(timeout TIMEOUT ${T_TIMEOUT})
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} circuit::testing GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${T_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${T_LABELS}" ENVIRONMENT "CIRCUIT_SOURCE_DIR=${PROJECT_SOURCE_DIR};CIRCUIT_BINARY_DIR=${CMAKE_BINARY_DIR};OMP_WAIT_POLICY=passive" ${timeout}
    DISCOVERY_TIMEOUT 60)
endfunction()
