//! A list of shared values (the store's shards and what sits beside them)
//! kept in shared pages, so that a new generation is cheap to start.
//!
//! A generation clones its predecessor's lists and then copies what it
//! changes. With a plain `Vec<Arc<T>>` that clone touches every element's
//! reference count: at a million members that is 16,384 shards times three
//! lists, a cache miss each, and the same again when the old generation is
//! dropped: most of what a ten-row change cost. Here a clone copies one
//! pointer per page of [`PAGE`] elements, and writing to an element copies
//! its page first if another generation shares it (`IndexMut`), so a change
//! costs the pages it touches.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Elements per page.
const PAGE: usize = 128;

/// A fixed-length list of `Arc<T>` in copy-on-write pages.
pub(crate) struct Paged<T> {
    pages: Vec<Arc<Vec<Arc<T>>>>,
    len: usize,
}

impl<T> Clone for Paged<T> {
    fn clone(&self) -> Self {
        Paged {
            pages: self.pages.clone(),
            len: self.len,
        }
    }
}

impl<T> Paged<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.pages.iter().flat_map(|p| p.iter())
    }

    /// The indices whose elements are not the same `Arc` as `before`'s
    /// (all of them when the lengths differ); pages both share are skipped
    /// whole.
    pub(crate) fn changed_since(&self, before: &Paged<T>) -> Vec<usize> {
        if self.len != before.len {
            return (0..self.len).collect();
        }
        let mut out = Vec::new();
        for (p, (page, old)) in self.pages.iter().zip(&before.pages).enumerate() {
            if Arc::ptr_eq(page, old) {
                continue;
            }
            out.extend(
                page.iter()
                    .zip(old.iter())
                    .enumerate()
                    .filter(|(_, (a, b))| !Arc::ptr_eq(a, b))
                    .map(|(i, _)| p * PAGE + i),
            );
        }
        out
    }

    /// The pages, for splitting the list between workers: each holds the
    /// elements `k * page_len()..` of its position `k`.
    pub(crate) fn pages_mut(&mut self) -> &mut [Arc<Vec<Arc<T>>>] {
        &mut self.pages
    }

    pub(crate) fn page_len() -> usize {
        PAGE
    }
}

impl<T> FromIterator<Arc<T>> for Paged<T> {
    fn from_iter<I: IntoIterator<Item = Arc<T>>>(items: I) -> Self {
        let mut pages = Vec::new();
        let mut page = Vec::with_capacity(PAGE);
        let mut len = 0;
        for item in items {
            page.push(item);
            len += 1;
            if page.len() == PAGE {
                pages.push(Arc::new(std::mem::replace(
                    &mut page,
                    Vec::with_capacity(PAGE),
                )));
            }
        }
        if !page.is_empty() {
            pages.push(Arc::new(page));
        }
        Paged { pages, len }
    }
}

impl<T> Index<usize> for Paged<T> {
    type Output = Arc<T>;

    fn index(&self, i: usize) -> &Arc<T> {
        &self.pages[i / PAGE][i % PAGE]
    }
}

/// Copies the element's page first when another generation shares it.
impl<T> IndexMut<usize> for Paged<T> {
    fn index_mut(&mut self, i: usize) -> &mut Arc<T> {
        &mut Arc::make_mut(&mut self.pages[i / PAGE])[i % PAGE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_copies_one_page_and_shares_the_rest() {
        let before: Paged<u32> = (0..1000).map(Arc::new).collect();
        assert_eq!(before.len(), 1000);
        assert_eq!(*before[999], 999);
        let mut next = before.clone();
        next[300] = Arc::new(7);
        assert_eq!((*before[300], *next[300]), (300, 7));
        assert_eq!(next.changed_since(&before), [300]);
        let shared = next
            .pages
            .iter()
            .zip(&before.pages)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, before.pages.len() - 1);
        assert_eq!(
            next.iter().map(|v| **v).sum::<u32>(),
            (0..1000).sum::<u32>() - 300 + 7
        );
    }
}
