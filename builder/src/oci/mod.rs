//! OCI images: references, image layouts, archives, registries; every blob verified.
