//! `boot.ipxe`: the script iPXE runs to boot the PXE artifacts.

/// The script for `vmlinuz` + `initramfs.img` + `rootfs.img` beside it. `initrd=NAME` on
/// the kernel line is needed: without it Debian's iPXE boots a kernel that finds no initrd.
pub fn ipxe_script(cmdline: &str) -> String {
    format!(
        "#!ipxe\nkernel vmlinuz initrd=initramfs.img initrd=rootfs.img {}\ninitrd initramfs.img\ninitrd rootfs.img\nboot\n",
        cmdline.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_loads_both_initrds_and_names_them_on_the_kernel_line() {
        let s = ipxe_script("console=ttyS0,115200 quiet harmony.root=/harmony/root.squashfs ");
        assert_eq!(
            s,
            "#!ipxe\n\
             kernel vmlinuz initrd=initramfs.img initrd=rootfs.img console=ttyS0,115200 quiet harmony.root=/harmony/root.squashfs\n\
             initrd initramfs.img\n\
             initrd rootfs.img\n\
             boot\n"
        );
    }
}
