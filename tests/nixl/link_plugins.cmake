# cmake -DDIR=<test plugin dir> -DTCPX=<our plugin> -DNIXL=<NIXL's plugin dir> -P link_plugins.cmake
# Links our plugin and NIXL's own into one directory (NIXL_PLUGIN_DIR names one).
file(MAKE_DIRECTORY ${DIR})
file(CREATE_LINK ${TCPX} ${DIR}/libplugin_TCPX.so SYMBOLIC)
file(GLOB theirs ${NIXL}/libplugin_*.so)
foreach(p ${theirs})
  get_filename_component(n ${p} NAME)
  if(NOT n STREQUAL "libplugin_TCPX.so")
    file(CREATE_LINK ${p} ${DIR}/${n} SYMBOLIC)
  endif()
endforeach()
