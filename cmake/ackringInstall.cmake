# Install, export and packaging of ackring (included by the top-level
# CMakeLists.txt after the library and the tools are defined):
#   - the library (static by default, shared with -DBUILD_SHARED_LIBS=ON: SONAME
#     libackring.so.<major>.<minor>), its headers, the CMake package
#     (find_package(ackring CONFIG) -> ackring::ackring) and ackring.pc;
#   - with the tools: the ackring CLI, its bash completion (tools/ackring) and
#     its man page, generated from its own --help by help2man;
#   - CPack: `cpack -G DEB` in the build directory makes a .deb of all that
#     (configure with -DCMAKE_INSTALL_PREFIX=/usr for Debian's multiarch libdir).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(ACKRING_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ackring)
get_target_property(ackring_type ackring TYPE)
if(ackring_type STREQUAL "STATIC_LIBRARY")
  set(ACKRING_CONFIG_STATIC ON)
else()
  set(ACKRING_CONFIG_STATIC OFF)
endif()

install(TARGETS ackring EXPORT ackringTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The NATS bridge headers stay out: its library (ackring_bridge, libnats) is
# built for the CLI and for projects that add ackring as a subdirectory, not
# installed.
install(DIRECTORY include/ackring DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  PATTERN "bridge.hpp" EXCLUDE PATTERN "bridge_status.hpp" EXCLUDE)
install(EXPORT ackringTargets NAMESPACE ackring:: DESTINATION ${ACKRING_CMAKE_DIR})
configure_package_config_file(cmake/ackringConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/ackringConfig.cmake
  INSTALL_DESTINATION ${ACKRING_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ackringConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ackringConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ackringConfigVersion.cmake
  DESTINATION ${ACKRING_CMAKE_DIR})

# ackring.pc names the prefix actually installed into (cmake --install --prefix,
# CPack's /usr), so it is written when installing, not when configuring.
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(ACKRING_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(ACKRING_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
# What a static link needs on top of -lackring. The static archive names
# liburing and libxxhash as pkg-config modules; the shared library's .pc lists
# them as plain flags, because pkg-config resolves Requires.private modules even
# for a shared link, and the shared library must not need their -dev packages.
if(ACKRING_CONFIG_STATIC)
  set(ACKRING_PC_PRIVATE "Requires.private: liburing libxxhash\nLibs.private: -pthread")
else()
  set(ACKRING_PC_PRIVATE "Libs.private: -luring -lxxhash -pthread")
endif()
set(ACKRING_PC_PREFIX "@ACKRING_PC_PREFIX@")   # filled in at install time
configure_file(cmake/ackring.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ackring.pc.stage @ONLY)
install(CODE "
  set(ACKRING_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/ackring.pc.stage\" \"${CMAKE_CURRENT_BINARY_DIR}/ackring.pc\" @ONLY)
")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ackring.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET ackring-cli)
  # A shared library installed outside the linker's default directories: the
  # installed CLI finds it relative to itself.
  if(BUILD_SHARED_LIBS AND NOT "${CMAKE_INSTALL_FULL_LIBDIR}" IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
    file(RELATIVE_PATH bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
    set_target_properties(ackring-cli PROPERTIES INSTALL_RPATH "\$ORIGIN/${bin_to_lib}")
  endif()

  # The man page is help2man's rendering of `ackring --help` (and of every
  # subcommand's), made at build time: one source of truth, the binary.
  find_program(ACKRING_HELP2MAN help2man)
  set(ACKRING_MAN_PAGE auto CACHE STRING
    "Generate and install the ackring(1) man page with help2man: ON, OFF or auto (ON when help2man is found, except in sanitizer or cross builds)")
  set(man_page_on ${ACKRING_MAN_PAGE})
  if(ACKRING_MAN_PAGE STREQUAL "auto")
    set(man_page_on OFF)
    if(ACKRING_HELP2MAN AND NOT CMAKE_CROSSCOMPILING AND ACKRING_SANITIZE STREQUAL "")
      set(man_page_on ON)
    endif()
  endif()
  if(man_page_on)
    if(NOT ACKRING_HELP2MAN)
      message(FATAL_ERROR "ACKRING_MAN_PAGE needs help2man (Debian package help2man)")
    endif()
    set(man_page ${CMAKE_CURRENT_BINARY_DIR}/man/ackring.1.gz)
    add_custom_command(OUTPUT ${man_page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cmake/ackring-man.sh $<TARGET_FILE:ackring-cli> ${man_page}
      DEPENDS ackring-cli ${CMAKE_CURRENT_SOURCE_DIR}/cmake/ackring-man.sh
      COMMENT "Generating the ackring(1) man page with help2man"
      VERBATIM)
    add_custom_target(ackring-man ALL DEPENDS ${man_page})
    install(FILES ${man_page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
endif()

# Debian package: cpack -G DEB (in the build directory, after building).
if(top_level)
  set(CPACK_PACKAGE_NAME ackring)
  set(CPACK_PACKAGE_VENDOR "ackring")
  set(CPACK_PACKAGE_CONTACT "ackring maintainers <ackring@localhost>")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "shared-memory message queue with consumer groups, leases, acks and dead-lettering")
  set(CPACK_PACKAGE_DESCRIPTION
    "ackring moves messages between processes on one Linux host through a memory-mapped ring buffer, with consumer groups, competing consumers, acks, leases, redelivery and a dead-letter queue. This package holds the C++20 library, its headers, CMake package and pkg-config file, and the ackring command-line tool.")
  set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
  set(CPACK_STRIP_FILES ON)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SECTION devel)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
  # Run-time dependencies of the CLI and the shared library from dpkg-shlibdeps.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  if(BUILD_SHARED_LIBS)
    # shlibs file + ldconfig trigger for libackring.so.<soversion>
    set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_CURRENT_BINARY_DIR})
  else()
    # The static archive's users link liburing and libxxhash themselves.
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "liburing-dev, libxxhash-dev, pkg-config")
  endif()
  include(CPack)
endif()
