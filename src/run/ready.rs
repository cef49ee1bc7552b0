//! The scheduler's queue of ready nodes.

/// Nodes ready to start, taken shallowest first and, at one depth, in plan order
/// (lowest node index first): the order of a min-heap on `(depth, index)`.
///
/// Each depth is a bitset over node indices. Pushing sets a bit, taking clears the
/// lowest one; a cursor per depth skips the words already emptied. A binary heap of
/// 10,000 ready calls spent about a tenth of the scheduler's time in `pop` while a
/// flat fan-out started; a node index is queued at most once, so a set loses nothing.
#[derive(Debug, Default)]
pub(super) struct ReadyQueue {
    depths: Vec<Level>,
    /// The lowest depth that may still hold a node.
    shallowest: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct Level {
    words: Vec<u64>,
    /// Nodes queued at this depth: an emptied level is skipped without a scan.
    queued: usize,
    /// The lowest word that may still have a bit set.
    scan_from: usize,
}

impl ReadyQueue {
    /// Queues node `index` at `depth`. Queuing a node already queued changes nothing.
    pub fn push(&mut self, depth: usize, index: usize) {
        if self.depths.len() <= depth {
            self.depths.resize_with(depth + 1, Level::default);
        }
        let Some(level) = self.depths.get_mut(depth) else {
            return;
        };
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if level.words.len() <= word {
            level.words.resize(word + 1, 0);
        }
        if let Some(slot) = level.words.get_mut(word) {
            if *slot & bit == 0 {
                *slot |= bit;
                self.len += 1;
                level.queued += 1;
                level.scan_from = level.scan_from.min(word);
                self.shallowest = self.shallowest.min(depth);
            }
        }
    }

    /// Takes the shallowest ready node with the lowest index.
    pub fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        while let Some(level) = self.depths.get_mut(self.shallowest) {
            if level.queued > 0 {
                let words = level.words.get(level.scan_from..).unwrap_or_default();
                if let Some(offset) = words.iter().position(|w| *w != 0) {
                    let word = level.scan_from + offset;
                    level.scan_from = word;
                    let slot = level.words.get_mut(word)?;
                    let bit = slot.trailing_zeros() as usize;
                    *slot &= *slot - 1;
                    level.queued -= 1;
                    self.len -= 1;
                    return Some(word * 64 + bit);
                }
            }
            // Empty: nothing below its end until a push moves the cursor back.
            level.scan_from = level.words.len();
            self.shallowest += 1;
        }
        None
    }

    /// Whether no node is ready.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::ReadyQueue;
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashSet};

    #[test]
    fn nodes_come_out_shallowest_first_then_in_index_order() {
        let mut ready = ReadyQueue::default();
        for (depth, index) in [(2, 5), (1, 130), (1, 7), (0, 64), (2, 1), (1, 7)] {
            ready.push(depth, index);
        }
        let order: Vec<usize> = std::iter::from_fn(|| ready.pop()).collect();
        assert_eq!(order, [64, 7, 130, 1, 5]);
        assert!(ready.is_empty());
        // Emptied, it takes nodes again, at any depth.
        ready.push(3, 2);
        ready.push(0, 200);
        assert_eq!(ready.pop(), Some(200));
        assert_eq!(ready.pop(), Some(2));
        assert_eq!(ready.pop(), None);
    }

    /// Pushes and pops interleaved at random give the order a min-heap on
    /// `(depth, index)` gives, which is what the scheduler used before.
    #[test]
    fn interleaved_pushes_and_pops_match_a_heap() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for _ in 0..50 {
            let mut ready = ReadyQueue::default();
            let mut heap = BinaryHeap::new();
            let mut queued = HashSet::new();
            for _ in 0..2_000 {
                if next(3) < 2 {
                    let (depth, index) = (next(6) as usize, next(1_000) as usize);
                    // The scheduler queues a node once.
                    if queued.insert(index) {
                        ready.push(depth, index);
                        heap.push(Reverse((depth, index)));
                    }
                } else {
                    assert_eq!(ready.pop(), heap.pop().map(|Reverse((_, i))| i));
                }
                assert_eq!(ready.is_empty(), heap.is_empty());
            }
            while let Some(Reverse((_, index))) = heap.pop() {
                assert_eq!(ready.pop(), Some(index));
            }
            assert_eq!(ready.pop(), None);
        }
    }
}
