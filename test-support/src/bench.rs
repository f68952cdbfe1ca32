//! One line per benchmark figure, beside its reference measured in the same run, in a
//! form `scripts/bench.sh` collects into one table:
//! `BENCH<TAB>figure<TAB>ours<TAB>reference<TAB>theirs<TAB>unit`.

/// Print a figure and its reference (`theirs` is NaN when the figure has none).
pub fn figure(figure: &str, ours: f64, reference: &str, theirs: f64, unit: &str) {
    println!("BENCH\t{figure}\t{ours:.3}\t{reference}\t{theirs:.3}\t{unit}");
}
