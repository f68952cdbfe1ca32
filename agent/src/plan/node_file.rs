//! A root-owned file the agent renders for the node from its settings (the node role's
//! files, the HA files): one type, so the planner writes them all one way.

/// One file to write: where, with which mode, and what; root-owned, replacing what is
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl NodeFile {
    pub fn new(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> NodeFile {
        NodeFile {
            path: path.to_string(),
            mode,
            contents: contents.into(),
        }
    }
}
