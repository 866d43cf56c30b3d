//! [`AccountIds`]: account ids interned into one byte arena, addressed by dense `u32`
//! indices.
//!
//! The day close and the stateless replay keep one small record per account; an owned
//! `String` per account (24 bytes of header plus a heap block) would cost more than the
//! record itself at exchange scale (10 M accounts). Here an id costs its bytes in the
//! arena plus about 17 bytes (a length byte, a 4-byte offset, an 8-byte table slot).
//!
//! ```text
//!  "acct-1" "acct-2" …      arena: [6]acct-1[6]acct-2…     starts: [0, 7, …]
//!        │                         ▲ (length-prefixed)
//!        └── hash(id) ─▶ table of (index, start) ┘
//! ```
//!
//! A lookup touches the table and the arena only (the slot carries the arena offset), so
//! a miss in a table larger than the caches costs two memory loads, not three.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::error::{CoreError, Result};

/// Fixed seed: the same ids give the same table (the simulator replays from a seed).
const SEED: u64 = 0x736f_6674_7374_616b;

/// Interned account ids (byte strings of at most 65 535 bytes, `u32::MAX` bytes in all).
#[derive(Clone)]
pub struct AccountIds {
    /// Each id as a varint length (1 byte below 128, else 3: 0xFF, u16 LE) then its bytes.
    arena: Vec<u8>,
    /// Arena offset of each id's length prefix, by index.
    starts: Vec<u32>,
    /// `(index, arena offset)` per id.
    table: HashTable<(u32, u32)>,
    hasher: FixedState,
}

impl std::fmt::Debug for AccountIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountIds")
            .field("len", &self.starts.len())
            .field("arena_bytes", &self.arena.len())
            .finish()
    }
}

impl Default for AccountIds {
    fn default() -> Self {
        AccountIds::new()
    }
}

/// The id stored at arena offset `at`.
fn at(arena: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    let (len, skip) = match arena[at] {
        0xFF => (u16::from_le_bytes([arena[at + 1], arena[at + 2]]) as usize, 3),
        n => (n as usize, 1),
    };
    &arena[at + skip..at + skip + len]
}

impl AccountIds {
    /// An empty set.
    pub fn new() -> AccountIds {
        AccountIds {
            arena: Vec::new(),
            starts: Vec::new(),
            table: HashTable::new(),
            hasher: FixedState::with_seed(SEED),
        }
    }

    /// An empty set with room for `n` ids of about `bytes_per_id` bytes (no rehashing
    /// until then).
    pub fn with_capacity(n: usize, bytes_per_id: usize) -> AccountIds {
        AccountIds {
            arena: Vec::with_capacity(n.saturating_mul(bytes_per_id + 1)),
            starts: Vec::with_capacity(n),
            table: HashTable::with_capacity(n),
            hasher: FixedState::with_seed(SEED),
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The index of `id`, if interned.
    pub fn get(&self, id: &str) -> Option<u32> {
        let h = self.hasher.hash_one(id.as_bytes());
        let arena = &self.arena;
        self.table
            .find(h, |&(_, s)| at(arena, s) == id.as_bytes())
            .map(|&(i, _)| i)
    }

    /// The index of `id`, interning it when new.
    ///
    /// Errors with [`CoreError::InvalidInput`] for an id longer than 65 535 bytes, or when
    /// more than `u32::MAX` ids or arena bytes would be needed.
    pub fn intern(&mut self, id: &str) -> Result<u32> {
        let h = self.hasher.hash_one(id.as_bytes());
        let arena = &self.arena;
        if let Some(&(i, _)) = self.table.find(h, |&(_, s)| at(arena, s) == id.as_bytes()) {
            return Ok(i);
        }
        let too_many = || CoreError::InvalidInput("more account ids than one index can hold (4 GiB of ids)".into());
        let len = u16::try_from(id.len())
            .map_err(|_| CoreError::InvalidInput(format!("account id of {} bytes (at most 65 535)", id.len())))?;
        let idx = u32::try_from(self.starts.len()).map_err(|_| too_many())?;
        let start = u32::try_from(self.arena.len()).map_err(|_| too_many())?;
        u32::try_from(self.arena.len() + id.len() + 3).map_err(|_| too_many())?;
        if len < 0x80 {
            self.arena.push(len as u8);
        } else {
            self.arena.push(0xFF);
            self.arena.extend_from_slice(&len.to_le_bytes());
        }
        self.arena.extend_from_slice(id.as_bytes());
        self.starts.push(start);
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.table
            .insert_unique(h, (idx, start), |&(_, s)| hasher.hash_one(at(arena, s)));
        Ok(idx)
    }

    /// The id at `idx`. Panics when `idx` was not returned by this set (a bug).
    pub fn name(&self, idx: u32) -> &str {
        let bytes = at(&self.arena, self.starts[idx as usize]);
        // Only whole `&str`s are pushed, so each stored id is valid UTF-8.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Every index, sorted by its id in byte order (the order payouts are listed and
    /// leftover units are given in). Sorts `(16-byte prefix, index)` pairs (20 bytes an
    /// id, for the sort only) and compares whole ids only on equal prefixes.
    pub fn sorted(&self) -> Vec<u32> {
        let mut keys: Vec<([u8; 16], u32)> = self
            .starts
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let id = at(&self.arena, s);
                let mut p = [0u8; 16];
                let n = id.len().min(16);
                p[..n].copy_from_slice(&id[..n]);
                (p, i as u32)
            })
            .collect();
        keys.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let (x, y) = (self.name(a.1).as_bytes(), self.name(b.1).as_bytes());
                x.cmp(y)
            })
        });
        keys.into_iter().map(|(_, i)| i).collect()
    }

    /// Bytes held (arena, offsets and table), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.starts.capacity() * 4 + self.table.capacity() * 9
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

    #[test]
    fn success_long_ids_and_shared_prefixes_sort_by_bytes() {
        let mut ids = AccountIds::new();
        let long = "x".repeat(300);
        let names = [
            "account-0000000000-b",
            "account-0000000000-a",
            "account-0000000000",
            long.as_str(),
            "é",
            "",
        ];
        for n in names {
            ids.intern(n).unwrap();
        }
        let mut want: Vec<&str> = names.to_vec();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let got: Vec<&str> = ids.sorted().into_iter().map(|i| ids.name(i)).collect();
        assert_eq!(got, want);
        assert_eq!(ids.get(&long), Some(3));
    }

    #[test]
    fn fail_id_longer_than_65535_bytes() {
        let mut ids = AccountIds::new();
        assert!(ids.intern(&"x".repeat(70_000)).is_err());
    }
}
