# Cross-compiling to aarch64 Linux with Debian's g++-aarch64-linux-gnu; tests run through
# qemu-user (CMAKE_CROSSCOMPILING_EMULATOR, so ctest and try_run use it too). Used by
# tests/aarch64/run_emulated.sh:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=tests/aarch64/toolchain-aarch64.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's multiarch cross sysroot: libc, libstdc++ and libgcc for aarch64 live here.
set(BLITZ_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "aarch64 runtime root for qemu -L")
set(CMAKE_FIND_ROOT_PATH ${BLITZ_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${BLITZ_AARCH64_SYSROOT})
