# Debian packages with CPack: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (tests/packaging/deb.sh does it) makes one
# package per install component, split the way Debian splits a library:
#   discoveryd        discoveryd, discoveryctl, the unit, /etc/discovery/discoveryd.yaml, man pages
#   libdiscovery0     libdiscovery.so.0 (component libdiscovery)
#   libdiscovery-dev  headers, libdiscovery.so, libdiscovery.a, discovery.pc, the CMake package
# Shared-library dependencies are computed by dpkg-shlibdeps.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME discovery)
set(CPACK_PACKAGE_VENDOR "discovery")
set(CPACK_PACKAGE_CONTACT "discovery maintainers <discovery@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "service registry over nng REQ/REP")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# Absolute destinations (/etc/discovery) land inside the package too.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL discoveryd libdiscovery dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Programs built against this version need at least it (the SONAME marks breaks).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps looks up libdiscovery.so.0 in the package being built.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)

set(CPACK_DEBIAN_DISCOVERYD_PACKAGE_NAME discoveryd)
set(CPACK_DEBIAN_DISCOVERYD_PACKAGE_SECTION net)
set(CPACK_COMPONENT_DISCOVERYD_DESCRIPTION
  "service registry over nng REQ/REP: the daemon and its CLI
 discoveryd keeps a registry of service instances, health-checks them over
 HTTP and publishes changes; discoveryctl is its command-line client. With
 a systemd unit and an example configuration in /etc/discovery.")
# /etc/discovery/discoveryd.yaml is the operator's: dpkg keeps their edits.
file(WRITE ${PROJECT_BINARY_DIR}/deb/conffiles "/etc/discovery/discoveryd.yaml\n")
set(CPACK_DEBIAN_DISCOVERYD_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/deb/conffiles)

set(CPACK_DEBIAN_LIBDISCOVERY_PACKAGE_NAME libdiscovery0)
set(CPACK_DEBIAN_LIBDISCOVERY_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_LIBDISCOVERY_DESCRIPTION
  "C client library for the discoveryd service registry
 libdiscovery registers, resolves and watches services in discoveryd.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libdiscovery-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "C client library for the discoveryd service registry (development files)
 Headers, pkg-config and CMake files, and the static library.")
# The -dev package needs its own library at this exact version (a package
# relation, not a shared-library dependency dpkg-shlibdeps could compute),
# and, for `pkg-config --static` and libdiscovery.a, the -dev packages of
# what libdiscovery.a calls (discovery.pc's Requires.private and Libs.private).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libdiscovery0 (= ${PROJECT_VERSION}), libnng-dev, libprotobuf-c-dev, libmbedtls-dev")

include(CPack)
