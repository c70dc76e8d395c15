//! Lists of named entries in first-seen order: the fields a bucket's
//! increments go to, a connector's sample messages, a connector's buckets.
//! They are usually short (totals and a couple of error groups; one or two
//! hours) and searched one by one; once a list is long its positions go
//! into a hash index shared by all the lists of a batch, so a batch with
//! thousands of distinct groups or hours costs linear time, not quadratic.

use std::collections::HashMap;

use crate::batch::{BucketWrite, Name};

/// The second number of the slot of a connector's samples list.
pub const SAMPLES: usize = usize::MAX;
/// The second number of the slot of a connector's buckets list.
pub const BUCKETS: usize = usize::MAX - 1;

/// An entry of a list, found by its name.
pub trait Named {
    /// The name the entry is found by.
    fn name(&self) -> &Name;
}

impl<T> Named for (Name, T) {
    fn name(&self) -> &Name {
        &self.0
    }
}

impl Named for BucketWrite {
    fn name(&self) -> &Name {
        &self.bucket
    }
}

/// Entries searched one by one before a list is indexed.
const LINEAR: usize = 16;

/// Where each entry of the long lists is: keyed by the list's slot (two
/// numbers the caller chooses, unique per list: a connector part's index
/// and its bucket's, [`SAMPLES`] or [`BUCKETS`]) and the name.
pub type Index = HashMap<(usize, usize, Name), usize, foldhash::fast::RandomState>;

/// Where `name` is in `list` (the list in `slot`).
pub fn position<E: Named>(
    list: &[E],
    name: &Name,
    slot: (usize, usize),
    index: &Index,
) -> Option<usize> {
    if list.len() < LINEAR {
        list.iter().position(|entry| entry.name() == name)
    } else {
        index.get(&(slot.0, slot.1, Name::clone(name))).copied()
    }
}

/// Keeps the index of `list` (the list in `slot`) up to date after a push.
pub fn pushed<E: Named>(list: &[E], slot: (usize, usize), index: &mut Index) {
    match list.len() {
        len if len < LINEAR => {}
        LINEAR => index_all(list, slot, index),
        len => {
            index.insert((slot.0, slot.1, Name::clone(list[len - 1].name())), len - 1);
        }
    }
}

/// Indexes `list` (the list in `slot`) if it is long: for a list built
/// elsewhere, before it is searched or grown here.
pub fn index_all<E: Named>(list: &[E], slot: (usize, usize), index: &mut Index) {
    if list.len() >= LINEAR {
        for (at, entry) in list.iter().enumerate() {
            index.insert((slot.0, slot.1, Name::clone(entry.name())), at);
        }
    }
}

/// Adds `by` to `field` in `fields`, the list in `slot`. Sums saturate.
pub fn add(
    fields: &mut Vec<(Name, i64)>,
    field: &Name,
    by: i64,
    slot: (usize, usize),
    index: &mut Index,
) {
    match position(fields, field, slot, index) {
        Some(at) => fields[at].1 = fields[at].1.saturating_add(by),
        None => {
            fields.push((Name::clone(field), by));
            pushed(fields, slot, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_in_first_seen_order_short_and_long() {
        let mut index = Index::default();
        let names: Vec<Name> = (0..40).map(|i| Name::from(format!("f{i}"))).collect();
        let mut fields = Vec::new();
        for round in 1..=3 {
            for name in &names {
                add(&mut fields, name, round, (0, 0), &mut index);
            }
        }
        // Another list with the same names does not mix with the first.
        let mut other = Vec::new();
        add(&mut other, &names[39], 5, (0, 1), &mut index);
        assert_eq!(fields.len(), 40);
        assert!(
            fields
                .iter()
                .zip(&names)
                .all(|((a, sum), b)| a == b && *sum == 6)
        );
        assert_eq!(other, [(Name::clone(&names[39]), 5)]);
        // Equal names from another allocation find the same field.
        add(&mut fields, &Name::from("f30"), 1, (0, 0), &mut index);
        assert_eq!(fields[30].1, 7);
        add(&mut fields, &Name::from("f3"), i64::MAX, (0, 0), &mut index);
        assert_eq!(fields[3].1, i64::MAX, "saturates");
    }

    #[test]
    fn a_long_list_built_elsewhere_is_found_once_indexed() {
        let mut index = Index::default();
        let mut fields: Vec<(Name, i64)> =
            (0..20).map(|i| (Name::from(format!("f{i}")), 1)).collect();
        index_all(&fields, (2, 0), &mut index);
        add(&mut fields, &Name::from("f19"), 1, (2, 0), &mut index);
        add(&mut fields, &Name::from("new"), 1, (2, 0), &mut index);
        add(&mut fields, &Name::from("new"), 1, (2, 0), &mut index);
        assert_eq!(fields.len(), 21);
        assert_eq!(fields[19].1, 2);
        assert_eq!(fields[20].1, 2);
    }
}
