// Picks the frame-pointer walker for this platform, in the manner of
// absl/debugging/internal/stacktrace_config.h: one -inl.inc per platform,
// and an "unimplemented" fallback that makes every walk defer to libunwind.
#ifndef STRATEGIES_STACK_TAG_INTERNAL_FRAME_WALK_CONFIG_H_
#define STRATEGIES_STACK_TAG_INTERNAL_FRAME_WALK_CONFIG_H_

#if defined(__x86_64__) && defined(__linux__) && !defined(GLS_STACK_TAG_NO_FRAME_WALK)
#define GLS_STACK_TAG_FRAME_WALK_INC \
  "strategies/stack_tag/internal/frame_walk_x86_64-inl.inc"
#else
#define GLS_STACK_TAG_FRAME_WALK_INC \
  "strategies/stack_tag/internal/frame_walk_unimplemented-inl.inc"
#endif

#endif  // STRATEGIES_STACK_TAG_INTERNAL_FRAME_WALK_CONFIG_H_
