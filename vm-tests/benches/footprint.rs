//! The minimal image's footprint: the userland (everything but kernel, modules and
//! platform components), agent included, by directory — squashfs (zstd) and raw — the
//! agent binary's size, and the total against the 10 MB budget. Sizes only.
//!
//!     cargo bench -p harmony-vm-tests --bench footprint

use harmony::footprint::measure;
use harmony::verify::image_tree;
use harmony_vm_tests::default_image;

fn main() -> anyhow::Result<()> {
    let out = default_image();
    let tree = image_tree(out)?;
    let f = measure(&tree)?;
    println!("default image ({}), userland footprint:", out.display());
    print!("{}", f.text());
    Ok(())
}
