//! [`AccountIds`]: account ids interned into one byte arena, addressed by dense `u32`
//! indices.
//!
//! The day close and the stateless replay keep one small record per account; an owned
//! `String` per account (24 bytes of header plus a heap block) would cost more than the
//! record itself at exchange scale (10 M accounts). Here an id costs its bytes in the arena,
//! 8 bytes of span and about 5 bytes of hash table.
//!
//! ```text
//!  "acct-1" "acct-2" …      arena: acct-1acct-2…      spans: [(0,6), (6,6), …]
//!        │                        ▲                         ▲
//!        └── hash(id) ─▶ table of u32 indices ───────────────┘
//! ```

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::error::{CoreError, Result};

/// Fixed seed: the same ids give the same table (the simulator replays from a seed).
const SEED: u64 = 0x736f_6674_7374_616b;

/// Interned account ids (byte strings of at most `u32::MAX` bytes in all).
#[derive(Clone)]
pub struct AccountIds {
    arena: String,
    spans: Vec<(u32, u32)>,
    table: HashTable<u32>,
    hasher: FixedState,
}

impl std::fmt::Debug for AccountIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountIds")
            .field("len", &self.spans.len())
            .field("arena_bytes", &self.arena.len())
            .finish()
    }
}

impl Default for AccountIds {
    fn default() -> Self {
        AccountIds::new()
    }
}

impl AccountIds {
    /// An empty set.
    pub fn new() -> AccountIds {
        AccountIds {
            arena: String::new(),
            spans: Vec::new(),
            table: HashTable::new(),
            hasher: FixedState::with_seed(SEED),
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The index of `id`, if interned.
    pub fn get(&self, id: &str) -> Option<u32> {
        let h = self.hasher.hash_one(id);
        self.table.find(h, |&i| self.name(i) == id).copied()
    }

    /// The index of `id`, interning it when new.
    ///
    /// Errors with [`CoreError::InvalidInput`] when more than `u32::MAX` ids or arena
    /// bytes would be needed.
    pub fn intern(&mut self, id: &str) -> Result<u32> {
        let h = self.hasher.hash_one(id);
        let (arena, spans) = (&self.arena, &self.spans);
        let name = |i: u32| {
            let (s, l) = spans[i as usize];
            &arena[s as usize..(s + l) as usize]
        };
        if let Some(&i) = self.table.find(h, |&i| name(i) == id) {
            return Ok(i);
        }
        let too_many = || CoreError::InvalidInput("more account ids than one index can hold (4 GiB of ids)".into());
        let idx = u32::try_from(self.spans.len()).map_err(|_| too_many())?;
        let start = u32::try_from(self.arena.len()).map_err(|_| too_many())?;
        let len = u32::try_from(id.len()).map_err(|_| too_many())?;
        start.checked_add(len).ok_or_else(too_many)?;
        self.arena.push_str(id);
        self.spans.push((start, len));
        let (arena, spans, hasher) = (&self.arena, &self.spans, &self.hasher);
        self.table.insert_unique(h, idx, |&i| {
            let (s, l) = spans[i as usize];
            hasher.hash_one(&arena[s as usize..(s + l) as usize])
        });
        Ok(idx)
    }

    /// The id at `idx`. Panics when `idx` was not returned by this set (a bug).
    pub fn name(&self, idx: u32) -> &str {
        let (s, l) = self.spans[idx as usize];
        &self.arena[s as usize..(s + l) as usize]
    }

    /// Every index, sorted by its id in byte order (the order payouts are listed and
    /// leftover units are given in).
    pub fn sorted(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.spans.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.name(a).as_bytes().cmp(self.name(b).as_bytes()));
        order
    }

    /// Bytes held (arena, spans and table), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * 8 + self.table.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_interns_once_and_sorts_by_bytes() {
        let mut ids = AccountIds::new();
        let b = ids.intern("b").unwrap();
        let a = ids.intern("a").unwrap();
        let upper = ids.intern("B").unwrap();
        assert_eq!(ids.intern("b").unwrap(), b);
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.get("a"), Some(a));
        assert_eq!(ids.get("zz"), None);
        let names: Vec<&str> = ids.sorted().into_iter().map(|i| ids.name(i)).collect();
        assert_eq!(names, vec!["B", "a", "b"]);
        assert_eq!(ids.name(upper), "B");
    }

    #[test]
    fn success_many_ids_survive_rehashing() {
        let mut ids = AccountIds::new();
        for i in 0..10_000 {
            assert_eq!(ids.intern(&format!("acct-{i}")).unwrap(), i);
        }
        for i in 0..10_000u32 {
            assert_eq!(ids.get(&format!("acct-{i}")), Some(i));
        }
    }
}
