//! The kernel inside an image: where it is, and the modules boot needs.
