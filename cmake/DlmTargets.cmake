# dlm_unity_build(TARGET): TARGET's C++ sources compiled in batches of 8 per translation unit. The headers
# they share (fmt, nlohmann/json, CLI11, yaml-cpp) are then parsed and instantiated once a batch instead of once
# a file: most of a library's compile time. Names at file scope (anonymous namespaces included) must
# therefore differ between the files of a library.
function(dlm_unity_build target)
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
endfunction()

# dlm_library(NAME DIR DEPS...): one static library per layer from the C++ sources of DIR (not recursive).
function(dlm_library name dir)
  file(GLOB sources CONFIGURE_DEPENDS ${dir}/*.cpp)
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARGN})
  dlm_unity_build(${name})
endfunction()
