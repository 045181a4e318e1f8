//! Containers that remember what was changed through them, so that `--state-dir` (persist.rs)
//! writes only what a request changed instead of comparing the whole state after each request.
//!
//! Reading goes through `Deref`; changing goes only through the methods that record the change
//! ([`Keyed`] and [`Rows`] have no `DerefMut`, so a change that bypasses the record does not
//! compile). [`Area`] records "changed" on any mutable access.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};

/// A map by reference number whose changed keys are recorded.
pub(crate) struct Keyed<V> {
    map: HashMap<String, V>,
    changed: HashSet<String>,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed {
            map: HashMap::new(),
            changed: HashSet::new(),
        }
    }
}

impl<V> Deref for Keyed<V> {
    type Target = HashMap<String, V>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'a, V> IntoIterator for &'a Keyed<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::collections::hash_map::Iter<'a, String, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<V> Keyed<V> {
    /// The value for `key`, to change (recorded as changed).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let v = self.map.get_mut(key)?;
        if !self.changed.contains(key) {
            self.changed.insert(key.to_owned());
        }
        Some(v)
    }

    /// Inserts or replaces (recorded as changed).
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    /// Keeps the entries `keep` accepts (pruning what expired). Removals are not recorded:
    /// `--state-dir` keeps the rows of removed entries.
    pub fn retain(&mut self, keep: impl FnMut(&String, &mut V) -> bool) {
        self.map.retain(keep);
    }

    /// The keys changed since the last call (persist.rs).
    pub fn take_changed(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.changed)
    }

    /// The value for `key`, to change without recording it (persist.rs, taking the changes of
    /// a value already being written).
    pub fn get_mut_unrecorded(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key)
    }
}

/// A list (a session's invoices) whose changed positions are recorded.
#[derive(Debug, Clone)]
pub(crate) struct Rows<T> {
    rows: Vec<T>,
    changed: Vec<usize>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: Vec::new(),
            changed: Vec::new(),
        }
    }
}

impl<T> Deref for Rows<T> {
    type Target = Vec<T>;

    fn deref(&self) -> &Self::Target {
        &self.rows
    }
}

impl<'a, T> IntoIterator for &'a Rows<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

impl<T> Rows<T> {
    /// Appends (recorded as changed).
    pub fn push(&mut self, row: T) {
        self.changed.push(self.rows.len());
        self.rows.push(row);
    }

    /// The row at `idx`, to change (recorded as changed).
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut T> {
        let row = self.rows.get_mut(idx)?;
        if self.changed.last() != Some(&idx) {
            self.changed.push(idx);
        }
        Some(row)
    }

    /// The positions changed since the last call, ascending and without repeats (persist.rs).
    pub fn take_changed(&mut self) -> Vec<usize> {
        let mut c = std::mem::take(&mut self.changed);
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// One area of the state (persons, grants, certificates…), recorded as changed on any mutable
/// access; persisted as one document.
#[derive(Default)]
pub(crate) struct Area<T> {
    value: T,
    changed: bool,
}

impl<T> Area<T> {
    /// A value recorded as changed (not yet written).
    pub fn new(value: T) -> Self {
        Area {
            value,
            changed: true,
        }
    }

    /// Whether it was changed since the last call (persist.rs).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

impl<'a, T> IntoIterator for &'a Area<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (&self.value).into_iter()
    }
}

impl<T> Deref for Area<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Area<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_recorded_once_and_taken() {
        let mut k: Keyed<u32> = Keyed::default();
        k.insert("a".into(), 1);
        k.insert("b".into(), 2);
        assert_eq!(k.take_changed().len(), 2);
        assert!(k.take_changed().is_empty());
        assert_eq!(k.get("a"), Some(&1), "reading records nothing");
        assert!(k.take_changed().is_empty());
        *k.get_mut("b").unwrap() = 3;
        assert!(k.get_mut("missing").is_none());
        assert_eq!(k.take_changed(), HashSet::from(["b".to_owned()]));
        *k.get_mut_unrecorded("a").unwrap() = 5;
        assert!(k.take_changed().is_empty());
        assert_eq!(k["a"], 5);

        let mut r: Rows<u32> = Rows::default();
        r.push(1);
        r.push(2);
        *r.get_mut(0).unwrap() = 7;
        *r.get_mut(0).unwrap() = 8;
        assert_eq!(r.take_changed(), vec![0, 1]);
        assert_eq!(r.len(), 2);
        assert!(r.take_changed().is_empty());

        let mut a = Area::new(Vec::<u32>::new());
        assert!(a.take_changed());
        assert!(a.is_empty());
        assert!(!a.take_changed());
        a.push(1);
        assert!(a.take_changed());
    }
}
