//! Base images made from distribution packages, for offline builds.
