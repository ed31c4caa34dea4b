# What `cmake --install` puts where, beyond the libraries, headers and
# discoveryd (src/CMakeLists.txt) and the man pages (docs/man): discoveryctl,
# the example configuration, the systemd unit, discovery.pc and the CMake
# package. Every rule names its component, which is its Debian package
# (cmake/DiscoveryPackaging.cmake): discoveryd, libdiscovery (libdiscovery0), dev.
include(CMakePackageConfigHelpers)

install(TARGETS discoveryctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT discoveryd)

# The configuration lives in /etc for a /usr install (the .deb), and under
# the prefix otherwise, so that `cmake --install --prefix DIR` stays inside DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(DISCOVERY_INSTALL_CONFDIR /etc/discovery)
else()
  set(DISCOVERY_INSTALL_CONFDIR ${CMAKE_INSTALL_SYSCONFDIR}/discovery)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/contrib/discoveryd.yaml
  DESTINATION ${DISCOVERY_INSTALL_CONFDIR} COMPONENT discoveryd)
# The unit names the Debian paths (/usr/sbin/discoveryd, /etc/discovery); a
# unit for another prefix is the operator's edit (docs/install.md).
install(FILES ${PROJECT_SOURCE_DIR}/contrib/systemd/discoveryd.service
  DESTINATION lib/systemd/system COMPONENT discoveryd)

# discovery.pc. Under /usr its paths are absolute, as Debian's are; for any
# other prefix they are relative to the .pc file itself, so a tree installed
# with --prefix DIR (or moved) still works.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(DISCOVERY_PC_PREFIX /usr)
else()
  file(RELATIVE_PATH _rel /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
  string(REGEX REPLACE "/$" "" _rel "${_rel}")
  set(DISCOVERY_PC_PREFIX "\${pcfiledir}/${_rel}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/discovery.pc.in ${PROJECT_BINARY_DIR}/discovery.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/discovery.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# find_package(discovery): discovery::discovery (shared) and discovery::discovery_static.
set(DISCOVERY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/discovery)
install(EXPORT discovery-targets NAMESPACE discovery:: DESTINATION ${DISCOVERY_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/discoveryConfig.cmake.in
  ${PROJECT_BINARY_DIR}/discoveryConfig.cmake INSTALL_DESTINATION ${DISCOVERY_CMAKE_DIR})
# 0.x: a minor release may break the API, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/discoveryConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/discoveryConfig.cmake
  ${PROJECT_BINARY_DIR}/discoveryConfigVersion.cmake DESTINATION ${DISCOVERY_CMAKE_DIR}
  COMPONENT dev)

# Each Debian package carries the license as /usr/share/doc/PACKAGE/copyright.
foreach(_pair discoveryd:discoveryd libdiscovery:libdiscovery0 dev:libdiscovery-dev)
  string(REPLACE ":" ";" _pair ${_pair})
  list(GET _pair 0 _component)
  list(GET _pair 1 _package)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${_package}
    RENAME copyright COMPONENT ${_component})
endforeach()
