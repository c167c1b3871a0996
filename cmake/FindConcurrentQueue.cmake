# Finds moodycamel ConcurrentQueue. Debian's libconcurrentqueue-dev ships no CMake
# config and installs the headers under concurrentqueue/, so feedkit wraps it once:
# this module defines the imported target feedkit::concurrentqueue, and only
# include/feedkit/internal/concurrentqueue.h includes the header.
find_path(ConcurrentQueue_INCLUDE_DIR concurrentqueue/concurrentqueue.h)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ConcurrentQueue REQUIRED_VARS ConcurrentQueue_INCLUDE_DIR)
if(ConcurrentQueue_FOUND AND NOT TARGET feedkit::concurrentqueue)
  add_library(feedkit::concurrentqueue INTERFACE IMPORTED GLOBAL)
  # SYSTEM: the upstream header is not warning-clean under -Wpedantic -Werror.
  set_target_properties(feedkit::concurrentqueue PROPERTIES
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${ConcurrentQueue_INCLUDE_DIR}"
    INTERFACE_INCLUDE_DIRECTORIES "${ConcurrentQueue_INCLUDE_DIR}")
endif()
