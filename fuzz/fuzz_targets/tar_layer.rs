//! Any bytes as a layer tar applied to an image tree (whiteouts, links, sizes, paths):
//! a changed tree or an error, never a panic or an allocation the header alone asks for.
#![no_main]

use harmony::tree::unpack::apply_layer;
use harmony::tree::Tree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tree = Tree::new();
    let _ = apply_layer(&mut tree, data);
    // A second layer over the first: whiteouts and replacements of what it made.
    let _ = apply_layer(&mut tree, data);
});
