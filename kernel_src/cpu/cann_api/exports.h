// The library builds with -fvisibility=hidden; only functions marked BLITZ_EXPORT (the CANN
// subset, the aclnn entry points and blitz* extras declared in the public header) are exported.
#pragma once

#define BLITZ_EXPORT extern "C" __attribute__((visibility("default")))
