# ctest driver: install the build tree into a scratch prefix, then build
# tests/consumer against it and run it. VIA picks how the consumer finds
# leasehold: "cmake" (default; find_package(leasehold) in CMakeLists.txt) or
# "pkg-config" (the compiler alone with `pkg-config --cflags --libs
# leasehold`; needs PKG_CONFIG, CXX and LIBDIR, the install's libdir).
if(NOT DEFINED VIA)
  set(VIA cmake)
endif()
set(required BUILD_DIR SOURCE_DIR WORK_DIR)
if(VIA STREQUAL "pkg-config")
  list(APPEND required PKG_CONFIG CXX LIBDIR)
elseif(NOT VIA STREQUAL "cmake")
  message(FATAL_ERROR "VIA must be cmake or pkg-config, not \"${VIA}\"")
endif()
foreach(var ${required})
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
if(VIA STREQUAL "pkg-config")
  # Only the installed leasehold.pc is added to the search path; abseil's
  # and libcurl's modules come from the system's.
  set(pkg_config ${CMAKE_COMMAND} -E env
      "PKG_CONFIG_PATH=${WORK_DIR}/prefix/${LIBDIR}/pkgconfig" ${PKG_CONFIG})
  run(${pkg_config} --validate leasehold)
  execute_process(COMMAND ${pkg_config} --cflags --libs leasehold
                  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): pkg-config --cflags --libs leasehold")
  endif()
  message(STATUS "pkg-config --cflags --libs leasehold: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  file(MAKE_DIRECTORY "${WORK_DIR}/build")
  run(${CXX} -std=c++17 "${SOURCE_DIR}/main.cc" ${flags}
      -o "${WORK_DIR}/build/consumer")
else()
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -G Ninja
      "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
endif()
run("${WORK_DIR}/build/consumer")
