//! zstd at mksquashfs's default level, kept only when it saves space (squashfs then
//! stores the block as is and says so in its size field).

use super::earlier::{digest, EarlierBlocks};
use crate::progress::{self, Unit};

/// 15 is mksquashfs's default for zstd: same ratio, comparable images.
pub const ZSTD_LEVEL: i32 = 15;

pub fn compress(data: &[u8]) -> Option<Vec<u8>> {
    // zstd's bulk API only fails on allocation or parameter errors; store raw then.
    let packed = zstd::bulk::compress(data, ZSTD_LEVEL).ok()?;
    (packed.len() < data.len()).then_some(packed)
}

/// One block ready to place: its compressed bytes (`None`: stored raw) and the sha256 of
/// its raw bytes.
pub struct Packed {
    pub bytes: Option<Vec<u8>>,
    pub sha: [u8; 32],
}

/// Compress every block, in parallel, taking blocks an earlier build compressed from
/// `earlier`; results in input order, so the image does not depend on the number of
/// threads. Blocks are dealt out in turn (thread t takes blocks t, t+n, …), so one large
/// file does not land on a single thread. Reported as the `squashfs` phase, in blocks.
pub fn compress_all(blocks: &[&[u8]], earlier: &EarlierBlocks) -> Vec<Packed> {
    let phase = progress::phase("squashfs", None, Some(blocks.len() as u64), Unit::Blocks);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blocks.len().max(1));
    let mut results: Vec<Option<Packed>> = Vec::new();
    results.resize_with(blocks.len(), || None);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let phase = phase.clone();
                scope.spawn(move || {
                    (t..blocks.len())
                        .step_by(threads)
                        .map(|i| {
                            let sha = digest(blocks[i]);
                            let bytes = match earlier.get(&sha) {
                                Some(stored) => stored.map(<[u8]>::to_vec),
                                None => compress(blocks[i]),
                            };
                            phase.inc(1);
                            (i, Packed { bytes, sha })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            let done = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, packed) in done {
                results[i] = Some(packed);
            }
        }
    });
    phase.finish();
    results.into_iter().flatten().collect()
}
