//! The seam between the VMware source and the hypervisor: one `get` per guestinfo key.
//! The real implementation speaks the backdoor RPC (`info-get guestinfo.KEY`) through
//! `vmw_backdoor`, so no open-vm-tools are needed in the image; tests use a map.

use std::cell::RefCell;

/// Guestinfo as the VMX holds it: an unset key is `None`, a key set to "" is `Some("")`,
/// and key names are case-insensitive (the VMX config is; vSphere sets
/// `guestinfo.ovfEnv`, Ignition asks for `guestinfo.ovfenv`).
pub trait GuestInfo {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
}

/// The VMware backdoor, opened once with raised I/O privilege (`iopl`, needs
/// CAP_SYS_RAWIO: the agent runs as root at boot). Only for a machine that is VMware:
/// on anything else the backdoor port is not there.
#[derive(Debug)]
pub struct Backdoor {
    guard: RefCell<vmw_backdoor::BackdoorGuard>,
}

impl Backdoor {
    pub fn open() -> Result<Backdoor, String> {
        if !vmw_backdoor::is_vmware_cpu() {
            return Err("the CPU does not report the VMware hypervisor".into());
        }
        let guard = vmw_backdoor::probe_backdoor_privileged()
            .map_err(|e| format!("opening the VMware backdoor: {e}"))?;
        Ok(Backdoor {
            guard: RefCell::new(guard),
        })
    }
}

impl GuestInfo for Backdoor {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let mut guard = self.guard.borrow_mut();
        let mut chan = guard
            .open_enhanced_chan()
            .map_err(|e| format!("opening the backdoor RPC channel: {e}"))?;
        chan.get_guestinfo(key.as_bytes())
            .map_err(|e| format!("info-get {key}: {e}"))
    }
}
