//! The default image's userland (everything but kernel, modules and components), agent
//! included, fits the 10 MB compressed budget. A size, not a time: fine to assert.
//! `cargo bench -p harmony-vm-tests --bench footprint` prints the breakdown.

use harmony::footprint::{measure, USERLAND_BUDGET};
use harmony::verify::image_tree;
use harmony_vm_tests::default_image;

#[test]
fn the_default_userland_fits_the_budget() {
    let tree = image_tree(default_image()).unwrap();
    let f = measure(&tree).unwrap();
    println!("{}", f.text());
    assert!(f.agent.is_some(), "the agent is part of the userland");
    assert!(
        f.compressed <= USERLAND_BUDGET,
        "userland is {} bytes compressed, over the {USERLAND_BUDGET}-byte budget:\n{}",
        f.compressed,
        f.text()
    );
}
