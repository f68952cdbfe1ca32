//! harmony-init's parts, as a library: main.rs is the PID 1 shim; the parsers of what
//! comes from outside (the kernel command line, a disk's GPT) are public for fuzz/.

pub mod block_probe;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod device_mapper;
pub mod disk_args;
pub mod disk_root;
pub mod gpt;
pub mod kernel_modules;
pub mod loop_device;
pub mod module_list;
pub mod mounts;
pub mod partitions;
pub mod root_tools;
pub mod state_disk;
pub mod switch_root;
pub mod var_volume;
