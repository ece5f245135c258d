//! Shares long strings that repeat across rows.
//!
//! In a Neutron-made database, map keys and values such as `neutron:security_group_ids`,
//! `neutron:network_name` or a project id repeat in thousands of rows; storing each once saves a
//! fifth of the replica's memory. Entries that no row uses any more are dropped whenever the table
//! has doubled since the last sweep, so deleted rows do not leave strings behind for long.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

struct Interner {
    set: HashSet<Arc<str>>,
    sweep_at: usize,
}

static TABLE: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        set: HashSet::new(),
        sweep_at: 4096,
    })
});

/// The shared copy of `s`.
pub(crate) fn intern(s: &str) -> Arc<str> {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(a) = t.set.get(s) {
        return a.clone();
    }
    if t.set.len() >= t.sweep_at {
        t.set.retain(|a| Arc::strong_count(a) > 1);
        t.sweep_at = (t.set.len() * 2).max(4096);
    }
    let a: Arc<str> = Arc::from(s);
    t.set.insert(a.clone());
    a
}

/// Number of strings held (for tests).
#[cfg(test)]
pub(crate) fn len() -> usize {
    TABLE.lock().unwrap().set.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_sweeps() {
        let a = intern("a string long enough to be shared, 1");
        let b = intern("a string long enough to be shared, 1");
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        // Unused entries go at the next sweep.
        for i in 0..10_000 {
            let _ = intern(&format!("unused string number {i:08} ........"));
        }
        assert!(len() < 10_000, "{}", len());
    }
}
