// Intra-core synchronisation (docs/zh/api/SIMD-API/基础API/同步控制/核内同步/SetFlag-WaitFlag.md,
// SetFlag-WaitFlag(ISASI).md; event list impl/basic_api/kernel_event.h). SetFlag<SRC_DST>(id)
// is issued on SRC and does not block; WaitFlag<SRC_DST>(id) blocks DST until that flag is set
// and clears it. On one core a WaitFlag with no pending SetFlag never returns (a hang: a
// violation here), a second SetFlag before the Wait is undefined (a violation), ids are 0..7.
#pragma once

#include <cstdint>

#include "blitz_sim/core.h"

// event_t (EVENT_ID0..7), a global type in CANN.
enum event_t : int32_t {
  EVENT_ID0 = 0, EVENT_ID1, EVENT_ID2, EVENT_ID3, EVENT_ID4, EVENT_ID5, EVENT_ID6, EVENT_ID7
};

namespace AscendC {

using TEventID = int8_t;

// The AIV events (kernel_event.h); values index the model's flag table.
enum class HardEvent : uint8_t {
  MTE2_V = 0, V_MTE2, MTE3_V, V_MTE3, V_V, MTE3_MTE2, MTE2_MTE3, S_V, V_S, S_MTE2, MTE2_S, S_MTE3, MTE3_S
};

}  // namespace AscendC

namespace blitz_sim {

static_assert(static_cast<int>(AscendC::HardEvent::MTE3_S) + 1 == kHardEventCount, "event table size");

inline const char *EventName(int e)
{
  static const char *const names[] = {"MTE2_V", "V_MTE2", "MTE3_V", "V_MTE3", "V_V",   "MTE3_MTE2", "MTE2_MTE3",
                                      "S_V",    "V_S",    "S_MTE2", "MTE2_S", "S_MTE3", "MTE3_S"};
  return names[e];
}
// Source and destination pipe of an event.
inline int EventSrc(int e)
{
  static const int src[] = {kPipeMTE2, kPipeV, kPipeMTE3, kPipeV, kPipeV, kPipeMTE3, kPipeMTE2,
                            kPipeS,    kPipeV, kPipeS,    kPipeMTE2, kPipeS, kPipeMTE3};
  return src[e];
}
inline int EventDst(int e)
{
  static const int dst[] = {kPipeV, kPipeMTE2, kPipeV, kPipeMTE3, kPipeV, kPipeMTE2, kPipeMTE3,
                            kPipeV, kPipeS,    kPipeMTE2, kPipeS, kPipeMTE3, kPipeS};
  return dst[e];
}

}  // namespace blitz_sim

namespace AscendC {

template <HardEvent evt>
inline void SetFlag(int32_t eventID)
{
  blitz_sim::flag_set(static_cast<int>(evt), eventID, "SetFlag");
}

template <HardEvent evt>
inline void WaitFlag(int32_t eventID)
{
  blitz_sim::flag_wait(static_cast<int>(evt), eventID, "WaitFlag");
}

}  // namespace AscendC
