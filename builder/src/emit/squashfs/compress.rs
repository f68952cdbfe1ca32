//! zstd at mksquashfs's default level, kept only when it saves space (squashfs then
//! stores the block as is and says so in its size field).

/// 15 is mksquashfs's default for zstd: same ratio, comparable images.
pub const ZSTD_LEVEL: i32 = 15;

pub fn compress(data: &[u8]) -> Option<Vec<u8>> {
    // zstd's bulk API only fails on allocation or parameter errors; store raw then.
    let packed = zstd::bulk::compress(data, ZSTD_LEVEL).ok()?;
    (packed.len() < data.len()).then_some(packed)
}

/// Compress every block, in parallel; results in input order, so the image does not
/// depend on the number of threads. Blocks are dealt out in turn (thread t takes blocks
/// t, t+n, …), so one large file does not land on a single thread.
pub fn compress_all(blocks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blocks.len().max(1));
    let mut results: Vec<Option<Vec<u8>>> = vec![None; blocks.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..blocks.len())
                        .step_by(threads)
                        .map(|i| (i, compress(blocks[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            let done = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, packed) in done {
                results[i] = packed;
            }
        }
    });
    results
}
