//! Apply an OCI layer (a tar stream) onto a Tree: whiteouts, opaque directories, hard links.
