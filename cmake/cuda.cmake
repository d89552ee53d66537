# cuda.cmake - optional CUDA support (src/gpu/).
#
# Include from the top-level CMakeLists.txt, anywhere after project(); the
# intended place is right after include(GNUInstallDirs):
#     include(cmake/cuda.cmake)
# The sources are attached to tcpx_objs / tcpx_p2p / tcpx_p2p_static at the end
# of the top-level directory (cmake_language(DEFER), CMake >= 3.19), so that the
# target definitions themselves need no change.
#
#   -DTCPX_CUDA=AUTO  (default) build GPU support when nvcc is found
#   -DTCPX_CUDA=ON    require it (configure fails without nvcc)
#   -DTCPX_CUDA=OFF   never (src/gpu/gpu_none.c: GPU requests are UNSUPPORTED)
#
# With CUDA: src/gpu/gpu_cuda.c (C, CUDA runtime API) + the kernels (*.cu),
# TCPX_HAVE_CUDA=1, and the CUDA runtime linked statically (CUDA::cudart_static):
# no libcudart.so at run time, and since cudart_static loads libcuda.so.1 with
# dlopen on first use, the library loads and runs its host paths on machines
# without a GPU or driver.
#
# Architectures (override with -DCMAKE_CUDA_ARCHITECTURES=...): "80-real;90"
#   sm_80 SASS   - A100, and by binary compatibility within major 8 also
#                  A10/L4 (sm_86/sm_89);
#   sm_90 SASS   - H100/H200, the A3 (GPUDirect-TCPX) machines;
#   compute_90   - PTX, JIT-compiled by the driver on newer GPUs (Blackwell).
# Two SASS targets keep the build short (one small .cu file).
#
# Always: the shared library is linked with -z text (the linker refuses text
# relocations) and ctest runs build.no_textrel (readelf -d shows no TEXTREL).

set(TCPX_CUDA AUTO CACHE STRING "Build GPU support with CUDA: AUTO (when nvcc is found), ON, OFF")
set_property(CACHE TCPX_CUDA PROPERTY STRINGS AUTO ON OFF)

string(TOUPPER "${TCPX_CUDA}" _tcpx_cuda_mode)
if(NOT _tcpx_cuda_mode STREQUAL "AUTO")
  if(TCPX_CUDA)
    set(_tcpx_cuda_mode ON)
  else()
    set(_tcpx_cuda_mode OFF)
  endif()
endif()

set(TCPX_HAVE_CUDA OFF)
if(NOT _tcpx_cuda_mode STREQUAL "OFF")
  # Which nvcc: CMAKE_CUDA_COMPILER or $CUDACXX when given, else nvcc on
  # PATH (check_language's own search), else $CUDA_HOME/bin, $CUDA_PATH/bin or
  # /usr/local/cuda/bin, handed to check_language through $CUDACXX.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_tcpx_nvcc nvcc PATHS ENV PATH NO_DEFAULT_PATH)
    if(NOT _tcpx_nvcc)
      find_program(_tcpx_nvcc nvcc PATHS "$ENV{CUDA_HOME}/bin" "$ENV{CUDA_PATH}/bin" /usr/local/cuda/bin
                   NO_DEFAULT_PATH)
      if(_tcpx_nvcc)
        set(ENV{CUDACXX} "${_tcpx_nvcc}")
      endif()
    endif()
    unset(_tcpx_nvcc CACHE)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(TCPX_HAVE_CUDA ON)
  elseif(_tcpx_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "CUDA: TCPX_CUDA=ON but no working nvcc was found "
                        "(set CMAKE_CUDA_COMPILER or CUDACXX)")
  endif()
endif()

if(TCPX_HAVE_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "80-real;90" CACHE STRING "CUDA architectures for src/gpu/kernels.cu")
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  # The runtime is linked explicitly (CUDA::cudart_static below), never by
  # CMake's implicit per-language choice.
  set(CMAKE_CUDA_RUNTIME_LIBRARY None)
  message(STATUS "CUDA: ${CMAKE_CUDA_COMPILER} (CUDA ${CUDAToolkit_VERSION}), "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, runtime linked statically")

else()
  if(_tcpx_cuda_mode STREQUAL "OFF")
    message(STATUS "CUDA: disabled (TCPX_CUDA=OFF), building without GPU support")
  else()
    message(STATUS "CUDA: not found, building without GPU support")
  endif()
endif()

function(_tcpx_cuda_attach)
  if(NOT TARGET tcpx_objs OR NOT TARGET tcpx_p2p OR NOT TARGET tcpx_p2p_static)
    message(FATAL_ERROR "cmake/cuda.cmake: targets tcpx_objs, tcpx_p2p and tcpx_p2p_static must exist")
  endif()
  set(gpu ${CMAKE_SOURCE_DIR}/src/gpu)
  if(TCPX_HAVE_CUDA)
    target_sources(tcpx_objs PRIVATE ${gpu}/gpu_cuda.c ${gpu}/kernels.cu ${gpu}/unpack.cu ${gpu}/copy.cu ${gpu}/fill_host.c)
    set_target_properties(tcpx_objs PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
    # The global add_compile_options() are gcc flags, copied into the target
    # when it was created; nvcc needs them handed to the host compiler.
    get_target_property(opts tcpx_objs COMPILE_OPTIONS)
    set(new_opts "")
    foreach(o IN LISTS opts)
      if(o MATCHES "^\\$<")   # already a generator expression: leave to its author
        list(APPEND new_opts "${o}")
      else()
        list(APPEND new_opts "$<$<COMPILE_LANGUAGE:C,CXX>:${o}>")
        # nvcc splits -Xcompiler values at commas: -fsanitize=address,undefined
        # goes as -fsanitize=address and -fsanitize=undefined.
        if(o MATCHES "^(-[^=]+=)(.*,.*)$")
          set(prefix "${CMAKE_MATCH_1}")
          string(REPLACE "," ";" items "${CMAKE_MATCH_2}")
          foreach(i IN LISTS items)
            list(APPEND new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${prefix}${i}>")
          endforeach()
        else()
          list(APPEND new_opts "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${o}>")
        endif()
        if(o STREQUAL "-Werror")
          # nvcc's own warnings (front end, ptxas) become errors too.
          list(APPEND new_opts "$<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings>")
        endif()
      endif()
    endforeach()
    set_target_properties(tcpx_objs PROPERTIES COMPILE_OPTIONS "${new_opts}")
    target_compile_definitions(tcpx_objs PRIVATE TCPX_HAVE_CUDA=1)
    # Position-independent device code (CMAKE_POSITION_INDEPENDENT_CODE adds
    # it too; explicit because the shared library must have no TEXTREL).
    target_compile_options(tcpx_objs PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-fPIC>)
    # gpu_cuda.c is C and needs the toolkit headers (cuda_runtime_api.h).
    target_include_directories(tcpx_objs SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
    foreach(t tcpx_p2p tcpx_p2p_static)
      target_link_libraries(${t} PUBLIC CUDA::cudart_static)
      # Link with the C driver: the CUDA objects need no C++ runtime.
      set_target_properties(${t} PROPERTIES LINKER_LANGUAGE C)
    endforeach()
  else()
    target_sources(tcpx_objs PRIVATE ${gpu}/gpu_none.c ${gpu}/fill_host.c)
  endif()

  target_link_options(tcpx_p2p PRIVATE "LINKER:-z,text")
  if(TCPX_BUILD_TESTS)
    find_program(TCPX_READELF NAMES readelf ${CMAKE_READELF})
    add_test(NAME build.no_textrel
             COMMAND ${CMAKE_COMMAND} -DLIB=$<TARGET_FILE:tcpx_p2p> -DREADELF=${TCPX_READELF}
                     -P ${CMAKE_SOURCE_DIR}/cmake/check_textrel.cmake)
    set_tests_properties(build.no_textrel PROPERTIES LABELS build TIMEOUT 60)
  endif()
endfunction()

if(TARGET tcpx_objs)
  _tcpx_cuda_attach()
elseif(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "cmake/cuda.cmake: with CMake < 3.19 include it after the library targets")
else()
  cmake_language(DEFER CALL _tcpx_cuda_attach)
endif()
