//! Shared copies of lists many nodes send alike (collectives, classes, agents, metric names): each
//! distinct list is held once and every node that sends it points at that copy.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Below this many lists the interner does not bother pruning.
const PRUNE_FLOOR: usize = 64;

/// Distinct lists, each held once. A list no holder uses any more is dropped at the next prune;
/// [`Interner::intern`] prunes whenever the set has doubled since the last one, so the set stays
/// within twice the lists in use (or [`PRUNE_FLOOR`]) however many nodes come and go.
pub(crate) struct Interner<T> {
    lists: HashSet<Arc<[T]>>,
    /// The set's size at which the next insert prunes first.
    prune_at: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner { lists: HashSet::new(), prune_at: PRUNE_FLOOR }
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `list`: the one already held, else `list` itself, now held.
    pub fn intern(&mut self, list: Vec<T>) -> Arc<[T]> {
        if let Some(shared) = self.lists.get(&list[..]) {
            return shared.clone();
        }
        if self.lists.len() >= self.prune_at {
            self.prune();
            self.prune_at = (self.lists.len() * 2).max(PRUNE_FLOOR);
        }
        let shared: Arc<[T]> = list.into();
        self.lists.insert(shared.clone());
        shared
    }

    /// Drops the lists only the interner still holds.
    pub fn prune(&mut self) {
        self.lists.retain(|l| Arc::strong_count(l) > 1);
    }

    /// Distinct lists held (some may be unused until the next prune).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<[T]>> {
        self.lists.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_lists_share_one_copy() {
        let mut interner = Interner::default();
        let a = interner.intern(names(&["base", "role::web"]));
        let b = interner.intern(names(&["base", "role::web"]));
        let c = interner.intern(names(&["base", "role::db"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&*c, &names(&["base", "role::db"])[..]);
        assert_eq!(interner.len(), 2);
        let empty = interner.intern(Vec::new());
        assert!(Arc::ptr_eq(&empty, &interner.intern(Vec::new())));
    }

    #[test]
    fn a_list_no_one_holds_is_pruned() {
        let mut interner = Interner::default();
        let kept = interner.intern(names(&["fleet"]));
        drop(interner.intern(names(&["gone"])));
        interner.prune();
        assert_eq!(interner.len(), 1);
        assert!(Arc::ptr_eq(&kept, &interner.intern(names(&["fleet"]))));
    }

    #[test]
    fn nodes_coming_and_going_with_lists_of_their_own_do_not_grow_it() {
        let mut interner = Interner::default();
        let held: Vec<_> = (0..10).map(|i| interner.intern(names(&[&format!("held-{i}")]))).collect();
        // 10,000 nodes each with a list no other node has, each gone before the next comes.
        for i in 0..10_000 {
            let list = interner.intern(names(&[&format!("node-{i}")]));
            drop(list);
            assert!(interner.len() <= 2 * (held.len() + 1) + PRUNE_FLOOR, "{} lists held after node {i}", interner.len());
        }
        // The lists in use survive every prune.
        for (i, list) in held.iter().enumerate() {
            assert!(Arc::ptr_eq(list, &interner.intern(names(&[&format!("held-{i}")]))));
        }
    }
}
