# check_textrel.cmake - fail when a shared library has text relocations.
#   cmake -DLIB=libtcpx_p2p.so [-DREADELF=readelf] -P check_textrel.cmake
# A TEXTREL entry (or DF_TEXTREL in FLAGS) in the dynamic section means code
# that is not position independent was linked in (e.g. device code compiled
# without -Xcompiler -fPIC): the loader must write to its text pages.
if(NOT LIB)
  message(FATAL_ERROR "check_textrel: pass -DLIB=<shared library>")
endif()
if(NOT EXISTS "${LIB}")
  message(FATAL_ERROR "check_textrel: ${LIB} does not exist (build it first)")
endif()
if(NOT READELF)
  find_program(READELF readelf)
  if(NOT READELF)
    message(FATAL_ERROR "check_textrel: readelf not found")
  endif()
endif()
execute_process(COMMAND ${READELF} -d "${LIB}"
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "check_textrel: readelf -d ${LIB} failed (${rc}): ${err}")
endif()
if(NOT out MATCHES "Dynamic section")
  message(FATAL_ERROR "check_textrel: ${LIB} has no dynamic section?\n${out}")
endif()
if(out MATCHES "TEXTREL")
  string(REGEX MATCHALL "[^\n]*TEXTREL[^\n]*" lines "${out}")
  message(FATAL_ERROR "check_textrel: ${LIB} has text relocations:\n${lines}")
endif()
message(STATUS "check_textrel: ${LIB}: no TEXTREL")
